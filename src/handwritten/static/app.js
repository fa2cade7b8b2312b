// The drawing page: pointer strokes on a canvas, sent as PNG to the same JSON API a script
// would use. Digit mode reads one digit (POST /api/predict) on a square canvas; Number mode
// reads a row of digits (POST /api/predict-number) on a wide one, and photos: a photo is
// scaled down here first, then shown with a box around each digit found. Files go up as the
// multipart field `file`.
"use strict";

const PEN_WIDTH = 12; // on the 280-px-high canvas: a paint program's medium brush
const DEBOUNCE_MS = 150; // wait for a pause in the stroke before asking the model
const MAX_PHOTO_SIDE = 1600; // a phone photo is scaled down to this before it is sent
const DIGITS = [...Array(10).keys()];

const MODES = {
  digit: {
    width: 280,
    height: 280,
    title: "Draw a digit",
    intro: "Draw one digit, 0 to 9, with a mouse, pen or finger, or drop a picture of one.",
    canvasLabel: "Drawing area: draw one digit here",
    idle: "Draw a digit to see what the model reads.",
    hint: "or drop an image file on the page",
  },
  number: {
    width: 840,
    height: 280,
    title: "Write a number",
    intro:
      "Write a number on one line with a mouse, pen or finger, or take a photo of one " +
      "written on paper.",
    canvasLabel: "Drawing area: write a number on one line here",
    idle: "Write a number, or take a photo of one, to see what the model reads.",
    hint: "or drop an image file on the page; a photo is read as a number",
  },
};

const main = document.getElementById("main");
const canvas = document.getElementById("canvas");
const pen = canvas.getContext("2d");
const pad = document.getElementById("pad");
const fileInput = document.getElementById("file");
const cameraInput = document.getElementById("camera");
const statusLine = document.getElementById("status");
const digitResult = document.getElementById("digit-result");
const digitOut = document.getElementById("digit");
const confidenceOut = document.getElementById("confidence");
const seen = document.getElementById("seen");
const bars = makeBars(document.getElementById("bars"));
const numberResult = document.getElementById("number-result");
const numberOut = document.getElementById("number");
const canvasBoxes = document.getElementById("canvas-boxes");
const photo = document.getElementById("photo");
const photoImage = document.getElementById("photo-image");
const photoBoxes = document.getElementById("photo-boxes");
const photoCaption = document.getElementById("photo-caption");
const digitList = document.getElementById("digits");

let mode = "digit";
let drawingPointer = null;
let lastPoint = null;
let debounceTimer = null;
let latestRequest = 0;
let photoUrl = null;

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

function percent(fraction, digits = 1) {
  return `${(fraction * 100).toFixed(digits)}%`;
}

// --- Modes -------------------------------------------------------------------------------

function setMode(next) {
  document.getElementById(`mode-${next}`).checked = true;
  if (next === mode) return;
  mode = next;
  const texts = MODES[mode];
  main.classList.toggle("number-mode", mode === "number");
  main.classList.toggle("digit-mode", mode === "digit");
  document.getElementById("title").textContent = texts.title;
  document.getElementById("intro").textContent = texts.intro;
  document.getElementById("hint").textContent = texts.hint;
  document.title = `handwritten: ${texts.title.toLowerCase()}`;
  canvas.setAttribute("aria-label", texts.canvasLabel);
  canvas.width = texts.width; // resizing a canvas also empties it
  canvas.height = texts.height;
  digitResult.hidden = mode !== "digit";
  numberResult.hidden = mode !== "number";
  startAgain();
}

function startAgain() {
  clearTimeout(debounceTimer);
  latestRequest++; // an answer still on its way is for a drawing that is gone
  drawingPointer = null;
  clearCanvas();
  resetResult();
}

// --- Drawing -----------------------------------------------------------------------------

function clearCanvas() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  pen.strokeStyle = "#000";
  pen.fillStyle = "#000";
  pen.lineWidth = PEN_WIDTH;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  showBoxes(canvasBoxes, null);
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
  showBoxes(canvasBoxes, null); // the boxes of the last answer no longer fit the drawing
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
    canvas.toBlob((png) => {
      if (mode === "digit") sendDigit(png, { "Content-Type": "image/png" }, "your drawing");
      else sendDrawnNumber(png);
    }, "image/png");
  }, DEBOUNCE_MS);
}

// --- Asking the server -------------------------------------------------------------------

function sendFile(file) {
  if (!file) return;
  if (mode === "number") {
    sendPhoto(file);
    return;
  }
  clearTimeout(debounceTimer);
  clearCanvas();
  const form = new FormData();
  form.append("file", file);
  sendDigit(form, {}, file.name);
}

function reading(source) {
  statusLine.classList.remove("error");
  statusLine.textContent = `Reading ${source}\u2026`;
  return ++latestRequest;
}

// Only the newest request's answer is shown: a slow reply to an older stroke is dropped.
// Resolves to {response, answer}, or to null when there is nothing (more) to show.
async function post(url, body, headers, request) {
  let response;
  try {
    response = await fetch(url, { method: "POST", headers, body });
  } catch (error) {
    if (request === latestRequest) {
      showError(`No answer from the server (${error.message}); is handwritten serve running?`);
    }
    return null;
  }
  const answer = await response.json().catch(() => ({}));
  if (request !== latestRequest) return null;
  if (!response.ok) {
    const detail = typeof answer.detail === "string" ? answer.detail : "";
    return { response, answer, detail: detail || `The server answered ${response.status}.` };
  }
  return { response, answer };
}

async function sendDigit(body, headers, source) {
  const request = reading(source);
  withdrawCorrection();
  const reply = await post("/api/predict", body, headers, request);
  if (!reply) return;
  if (reply.response.ok) {
    showPrediction(reply.answer, source);
    offerCorrection(body instanceof FormData ? body.get("file") : body, reply.answer);
  } else showError(reply.detail);
}

async function sendDrawnNumber(png) {
  const request = reading("your drawing");
  const reply = await post("/api/predict-number", png, { "Content-Type": "image/png" }, request);
  if (!reply) return;
  if (reply.response.ok) showNumber(reply.answer, "your drawing", canvasBoxes);
  else showNumberError(reply, "your drawing");
}

// A photo: the old answer goes at once, the photo is scaled down and shown, then read.
async function sendPhoto(file) {
  if (!file) return;
  setMode("number");
  clearTimeout(debounceTimer);
  clearCanvas();
  clearAnswer();
  showPhoto(null);
  const request = reading(file.name);
  const scaled = await scaleDown(file);
  if (request !== latestRequest) {
    if (scaled.url) URL.revokeObjectURL(scaled.url);
    return;
  }
  showPhoto(scaled);
  const form = new FormData();
  form.append("file", scaled.blob, file.name);
  const reply = await post("/api/predict-number", form, {}, request);
  if (!reply) return;
  if (reply.response.ok) showNumber(reply.answer, file.name, photoBoxes);
  else showNumberError(reply, "that photo");
}

// The photo at most MAX_PHOTO_SIDE pixels on its longer side, as a JPEG: {blob, url, width,
// height}. Chromium applies the EXIF orientation when it draws a photo, so the copy is the
// right way up and the server's boxes fit what the page shows. A file the browser cannot
// decode goes up as it is, for the server to say what is wrong with it.
async function scaleDown(file) {
  const url = URL.createObjectURL(file);
  const image = new Image();
  image.src = url;
  try {
    await image.decode();
  } catch {
    URL.revokeObjectURL(url);
    return { blob: file, url: null };
  }
  const { naturalWidth: width, naturalHeight: height } = image;
  const scale = MAX_PHOTO_SIDE / Math.max(width, height);
  if (scale >= 1) return { blob: file, url, width, height };
  const copy = document.createElement("canvas");
  copy.width = Math.round(width * scale);
  copy.height = Math.round(height * scale);
  const context = copy.getContext("2d");
  context.fillStyle = "#fff"; // a JPEG has no transparency: see-through is paper
  context.fillRect(0, 0, copy.width, copy.height);
  context.imageSmoothingQuality = "high";
  context.drawImage(image, 0, 0, copy.width, copy.height);
  URL.revokeObjectURL(url);
  const blob = await new Promise((resolve) => copy.toBlob(resolve, "image/jpeg", 0.9));
  if (!blob) return { blob: file, url: null };
  return { blob, url: URL.createObjectURL(blob), width: copy.width, height: copy.height };
}

// --- Showing answers ---------------------------------------------------------------------

// The answer in words, by its status: the model's thresholds decide, not the page.
function answerText(answer) {
  if (answer.status === "not-a-digit") return "That doesn't look like a digit";
  if (answer.status === "unsure") return `${[answer.digit, ...answer.alternatives].join(" or ")}?`;
  return String(answer.digit);
}

function showPrediction(answer, source) {
  const words = answerText(answer);
  const sayings = {
    digit: `The model reads ${source} as ${answer.digit}.`,
    unsure: `The model is not sure: it reads ${source} as ${words}`,
    "not-a-digit": `The model reads ${source} as no digit at all.`,
  };
  const notes = {
    digit: `${percent(answer.confidence)} sure`,
    unsure: `not sure: ${percent(answer.confidence)} a ${answer.digit}`,
    "not-a-digit": words,
  };
  statusLine.textContent = sayings[answer.status];
  digitOut.textContent = answer.status === "not-a-digit" ? "\u2013" : words;
  digitResult.dataset.status = answer.status;
  confidenceOut.textContent = notes[answer.status];
  seen.src = `data:image/png;base64,${answer.image}`;
  answer.probabilities.forEach((probability, digit) => {
    bars[digit].querySelector(".fill").style.width = percent(probability);
    bars[digit].querySelector(".percent").textContent = percent(probability);
    bars[digit].classList.toggle("top", digit === answer.digit);
  });
}

function showNumber(answer, source, boxes) {
  // Every digit is the model's best reading; when the number is "unsure", the doubted
  // digits are marked (each says what else it could be).
  const doubts = answer.digits.filter((digit) => digit.status !== "digit").length;
  const count = answer.digits.length === 1 ? "1 digit" : `${answer.digits.length} digits`;
  statusLine.textContent =
    `The model reads ${source} as ${answer.number} (${count}).` +
    (answer.status === "unsure"
      ? ` It is unsure of ${doubts === 1 ? "the digit" : "the digits"} marked.`
      : "");
  numberOut.textContent = answer.number;
  showBoxes(boxes, answer);
  digitList.replaceChildren(
    ...answer.digits.map((digit, index) => {
      const item = document.createElement("li");
      item.classList.toggle("unsure", digit.status !== "digit");
      const image = document.createElement("img");
      image.src = `data:image/png;base64,${digit.image}`;
      image.width = 56;
      image.height = 56;
      image.alt = `digit ${index + 1} as the model saw it (28 by 28)`;
      const read = document.createElement("span");
      read.className = "read";
      read.textContent = digit.status === "digit" ? String(digit.digit) : answerText(digit);
      const sure = document.createElement("span");
      sure.className = "sure";
      sure.textContent =
        digit.status === "not-a-digit" ? "not a digit" : `${percent(digit.confidence, 0)} sure`;
      item.append(image, read, sure);
      return item;
    }),
  );
}

function showNumberError(reply, what) {
  if (reply.response.status !== 422) showError(reply.detail);
  else showError(`No digits found in ${what}: ${reply.detail.replace(/^no digits? found: /i, "")}`);
}

// A box around each digit found, with the digit read beside it, placed in percentages of
// the image's pixel size (as the server saw it), so they follow the image however it is shown.
function showBoxes(container, answer) {
  const digits = answer ? answer.digits : [];
  container.replaceChildren(
    ...digits.map((digit) => {
      const [left, top, right, bottom] = digit.box;
      const box = document.createElement("span");
      box.className = "box";
      box.classList.toggle("unsure", digit.status !== "digit");
      box.dataset.digit = String(digit.digit);
      box.style.left = percent(left / answer.width, 3);
      box.style.top = percent(top / answer.height, 3);
      box.style.width = percent((right - left) / answer.width, 3);
      box.style.height = percent((bottom - top) / answer.height, 3);
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = String(digit.digit);
      box.append(tag);
      return box;
    }),
  );
  container.dataset.count = String(digits.length);
  if (answer) {
    container.dataset.width = String(answer.width);
    container.dataset.height = String(answer.height);
  } else {
    delete container.dataset.width;
    delete container.dataset.height;
  }
}

function showPhoto(scaled) {
  if (photoUrl) URL.revokeObjectURL(photoUrl);
  photoUrl = scaled ? scaled.url : null;
  photo.hidden = !photoUrl;
  if (photoUrl) {
    photoImage.src = photoUrl;
    photoCaption.textContent = `the photo sent (${scaled.width}\u00d7${scaled.height} pixels)`;
  } else {
    photoImage.removeAttribute("src");
  }
}

function showError(message) {
  clearAnswer();
  statusLine.classList.add("error");
  statusLine.textContent = message;
}

// Forget the last answer, keeping the photo it was about (if any) on show.
function clearAnswer() {
  withdrawCorrection();
  digitOut.textContent = "?";
  confidenceOut.textContent = "";
  seen.removeAttribute("src");
  bars.forEach((bar) => {
    bar.querySelector(".fill").style.width = "0";
    bar.querySelector(".percent").textContent = "0%";
    bar.classList.remove("top");
  });
  numberOut.textContent = "?";
  digitList.replaceChildren();
  showBoxes(canvasBoxes, null);
  showBoxes(photoBoxes, null);
}

function resetResult() {
  clearAnswer();
  showPhoto(null);
  statusLine.classList.remove("error");
  statusLine.textContent = MODES[mode].idle;
}

// --- Correcting a wrong answer (only under `handwritten serve --collect DIR`) --------------
// After a digit is read, a row of 0-9 buttons lets the person say which digit it really is;
// the drawing, as it was sent, goes to POST /api/corrections with that digit. The page asks
// /api/config first: a server that does not collect gets no buttons at all.

const correctBox = document.getElementById("correct");
const correctStatus = document.getElementById("correct-status");
const correctButtons = makeCorrectButtons(document.getElementById("correct-digits"));
const correction = { collecting: false, drawing: null, read: null };

function makeCorrectButtons(row) {
  return DIGITS.map((digit) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(digit);
    button.setAttribute("aria-label", `It is a ${digit}`);
    button.addEventListener("click", () => sendCorrection(digit));
    row.append(button);
    return button;
  });
}

async function learnWhetherCollecting() {
  try {
    const response = await fetch("/api/config");
    correction.collecting = response.ok && (await response.json()).collecting === true;
  } catch {
    correction.collecting = false;
  }
}

// `drawing` is the Blob or File just read; the model's own answer is not offered.
function offerCorrection(drawing, answer) {
  if (!correction.collecting) return;
  correction.drawing = drawing;
  correction.read = answer.digit;
  enableCorrectButtons(true);
  showCorrectionStatus("", false);
  correctBox.hidden = false;
}

function withdrawCorrection() {
  correction.drawing = null;
  correctBox.hidden = true;
}

function enableCorrectButtons(enabled) {
  correctButtons.forEach((button, digit) => {
    button.disabled = !enabled || digit === correction.read;
  });
}

function showCorrectionStatus(message, isError) {
  correctStatus.textContent = message;
  correctStatus.classList.toggle("error", isError);
}

async function sendCorrection(digit) {
  const drawing = correction.drawing;
  if (!drawing) return;
  enableCorrectButtons(false);
  const form = new FormData();
  form.append("file", drawing, drawing.name || "drawing.png");
  form.append("digit", String(digit));
  let response;
  let answer;
  try {
    response = await fetch("/api/corrections", { method: "POST", body: form });
    answer = await response.json().catch(() => ({}));
  } catch (error) {
    answer = { detail: `No answer from the server (${error.message}); nothing was saved.` };
  }
  if (drawing !== correction.drawing) return; // a newer drawing took its place meanwhile
  if (response?.ok) {
    correction.drawing = null;
    showCorrectionStatus(`Saved as a ${answer.digit}: thank you.`, false);
    return;
  }
  const detail = typeof answer.detail === "string" ? answer.detail : "";
  showCorrectionStatus(detail || `The server answered ${response.status}.`, true);
  enableCorrectButtons(true);
}

// --- Wiring ------------------------------------------------------------------------------

learnWhetherCollecting();

canvas.addEventListener("pointerdown", startStroke);
canvas.addEventListener("pointermove", continueStroke);
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

for (const radio of document.querySelectorAll('input[name="mode"]')) {
  radio.addEventListener("change", () => radio.checked && setMode(radio.value));
}

document.getElementById("clear").addEventListener("click", startAgain);

fileInput.addEventListener("change", () => {
  sendFile(fileInput.files[0]);
  fileInput.value = "";
});

cameraInput.addEventListener("change", () => {
  sendPhoto(cameraInput.files[0]);
  cameraInput.value = "";
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

// A reloaded page may come back with Number still ticked.
setMode(document.querySelector('input[name="mode"]:checked')?.value || "digit");
clearCanvas();
