// The drawing page: pointer strokes on a canvas, sent as PNG to the same JSON API a script
// would use (POST /api/predict); files go up as the multipart field `file`.
"use strict";

const PEN_WIDTH = 12; // on the 280-px canvas: a paint program's medium brush
const DEBOUNCE_MS = 150; // wait for a pause in the stroke before asking the model
const DIGITS = [...Array(10).keys()];

const canvas = document.getElementById("canvas");
const pen = canvas.getContext("2d");
const pad = document.getElementById("pad");
const fileInput = document.getElementById("file");
const statusLine = document.getElementById("status");
const digitOut = document.getElementById("digit");
const confidenceOut = document.getElementById("confidence");
const seen = document.getElementById("seen");
const bars = makeBars(document.getElementById("bars"));

let drawingPointer = null;
let lastPoint = null;
let debounceTimer = null;
let latestRequest = 0;

function makeBars(list) {
  return DIGITS.map((digit) => {
    const item = document.createElement("li");
    item.innerHTML =
      `<span class="label">${digit}</span>` +
      '<span class="track"><span class="fill"></span></span>' +
      '<span class="percent">0%</span>';
    list.append(item);
    return item;
  });
}

function clearCanvas() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  pen.strokeStyle = "#000";
  pen.fillStyle = "#000";
  pen.lineWidth = PEN_WIDTH;
  pen.lineCap = "round";
  pen.lineJoin = "round";
}

function canvasPoint(event) {
  const box = canvas.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * canvas.width) / box.width,
    y: ((event.clientY - box.top) * canvas.height) / box.height,
  };
}

function dot(point) {
  pen.beginPath();
  pen.arc(point.x, point.y, PEN_WIDTH / 2, 0, 2 * Math.PI);
  pen.fill();
}

function line(from, to) {
  pen.beginPath();
  pen.moveTo(from.x, from.y);
  pen.lineTo(to.x, to.y);
  pen.stroke();
}

function startStroke(event) {
  if (event.button !== 0 || drawingPointer !== null) return;
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  drawingPointer = event.pointerId;
  lastPoint = canvasPoint(event);
  dot(lastPoint);
  schedulePrediction();
}

function continueStroke(event) {
  if (event.pointerId !== drawingPointer) return;
  const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const move of coalesced.length ? coalesced : [event]) {
    const point = canvasPoint(move);
    line(lastPoint, point);
    lastPoint = point;
  }
  schedulePrediction();
}

function endStroke(event) {
  if (event.pointerId !== drawingPointer) return;
  drawingPointer = null;
  schedulePrediction();
}

function schedulePrediction() {
  clearTimeout(debounceTimer);
  debounceTimer = setTimeout(() => {
    canvas.toBlob((png) => send(png, { "Content-Type": "image/png" }, "your drawing"), "image/png");
  }, DEBOUNCE_MS);
}

function sendFile(file) {
  if (!file) return;
  clearTimeout(debounceTimer);
  clearCanvas();
  const form = new FormData();
  form.append("file", file);
  send(form, {}, file.name);
}

// Only the newest request's answer is shown: a slow reply to an older stroke is dropped.
async function send(body, headers, source) {
  const request = ++latestRequest;
  statusLine.classList.remove("error");
  statusLine.textContent = `Reading ${source}\u2026`;
  let response;
  let answer;
  try {
    response = await fetch("/api/predict", { method: "POST", headers, body });
    answer = await response.json();
  } catch (error) {
    if (request === latestRequest) {
      showError(`No answer from the server (${error.message}); is handwritten serve running?`);
    }
    return;
  }
  if (request !== latestRequest) return;
  if (response.ok) showPrediction(answer, source);
  else showError(answer.detail || `The server answered ${response.status}.`);
}

function showPrediction(answer, source) {
  statusLine.textContent = `The model reads ${source} as ${answer.digit}.`;
  digitOut.textContent = String(answer.digit);
  confidenceOut.textContent = `${(answer.confidence * 100).toFixed(1)}% sure`;
  seen.src = `data:image/png;base64,${answer.image}`;
  answer.probabilities.forEach((probability, digit) => {
    const percent = `${(probability * 100).toFixed(1)}%`;
    bars[digit].querySelector(".fill").style.width = percent;
    bars[digit].querySelector(".percent").textContent = percent;
    bars[digit].classList.toggle("top", digit === answer.digit);
  });
}

function showError(message) {
  resetResult();
  statusLine.classList.add("error");
  statusLine.textContent = message;
}

function resetResult() {
  statusLine.classList.remove("error");
  statusLine.textContent = "Draw a digit to see what the model reads.";
  digitOut.textContent = "?";
  confidenceOut.textContent = "";
  seen.removeAttribute("src");
  bars.forEach((bar) => {
    bar.querySelector(".fill").style.width = "0";
    bar.querySelector(".percent").textContent = "0%";
    bar.classList.remove("top");
  });
}

canvas.addEventListener("pointerdown", startStroke);
canvas.addEventListener("pointermove", continueStroke);
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

document.getElementById("clear").addEventListener("click", () => {
  clearTimeout(debounceTimer);
  latestRequest++;
  clearCanvas();
  resetResult();
});

fileInput.addEventListener("change", () => {
  sendFile(fileInput.files[0]);
  fileInput.value = "";
});

// A file dropped anywhere on the page is read, rather than the browser navigating to it.
document.addEventListener("dragover", (event) => {
  event.preventDefault();
  pad.classList.add("dropping");
});
document.addEventListener("dragleave", () => pad.classList.remove("dropping"));
document.addEventListener("drop", (event) => {
  event.preventDefault();
  pad.classList.remove("dropping");
  sendFile(event.dataTransfer.files[0]);
});

clearCanvas();
