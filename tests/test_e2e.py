"""The page in a real browser: Debian's Chromium, driven by Playwright, draws on a real server.

The server is the console script `handwritten serve`, started as a user would, with the default
model given as a file. Photos are made here with Pillow (paper, uneven light, dark ink) and go
in through the file chooser, as a phone's camera would. Screenshots land in out/e2e/ for a
person to look at.
"""

from __future__ import annotations

import math
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import numpy as np
import pytest
from conftest import ROOT
from drawings import SEVEN, draw
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, expect, sync_playwright

from handwritten.registry import resolve_model

HANDWRITTEN = Path(sys.executable).with_name("handwritten")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = ROOT / "out" / "e2e"
ONE = [(0.55, 0.12), (0.47, 0.88)]
# A five-pointed star in one stroke: a doodle, not a digit.
STAR = [(0.5, 0.15), (0.71, 0.78), (0.17, 0.39), (0.83, 0.39), (0.29, 0.78), (0.5, 0.15)]
# A number on the wide canvas, as fractions of it: a one, a seven and a zero.
NUMBER_170 = [
    [(0.17, 0.12), (0.14, 0.88)],
    [(0.33, 0.14), (0.50, 0.14), (0.40, 0.88)],
    [
        (0.72 + 0.075 * math.sin(t / 16 * math.tau), 0.5 - 0.38 * math.cos(t / 16 * math.tau))
        for t in range(17)
    ],
]
# Digits in a photo, as fractions of each digit's box; a zero is an ellipse.
PHOTO_STROKES = {
    "1": [[(0.55, 0.04), (0.45, 0.96)]],
    "7": [[(0.08, 0.06), (0.92, 0.06), (0.42, 0.96)]],
    "4": [[(0.68, 0.96), (0.68, 0.04), (0.06, 0.66), (0.96, 0.66)]],
}
START_SECONDS = 90
CANVAS_IS_WHITE = """() => {
  const canvas = document.getElementById("canvas");
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  return pixels.every((value) => value === 255);
}"""


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real `handwritten serve` on a free loopback port: its URL and its log file."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [HANDWRITTEN, "serve", "--port", str(port), "--model", str(resolve_model())]
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log)
        yield url, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"handwritten serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx2.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"handwritten serve not healthy after {START_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs it (apt-get install chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def open_page(browser: Browser, server: str, width: int, height: int, path: str = "/") -> Page:
    """A page as on a machine without internet: any request off the server is refused."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.route(lambda address: not address.startswith(f"{server}/"), lambda route: route.abort())
    page.goto(f"{server}{path}")
    return page


def draw_stroke(page: Page, stroke: list[tuple[float, float]]) -> None:
    """Draw one mouse stroke through points given as fractions of the canvas."""
    box = page.locator("#canvas").bounding_box()
    points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point, steps=20)
    page.mouse.up()


def paper_photo(
    path: Path, digits: str, size: tuple[int, int] = (2000, 1500)
) -> list[tuple[float, float, float, float]]:
    """Save a JPEG "photo" of `digits` in thick dark ink on grey paper lit unevenly (brighter
    at the top left), centred on one line; return each digit's box in its pixels."""
    width, height = size
    light = 238 - 40 * np.linspace(0, 1, width)[None, :] - 30 * np.linspace(0, 1, height)[:, None]
    image = Image.fromarray(light.astype(np.uint8)).convert("RGB")
    pen = ImageDraw.Draw(image)
    ink = (45, 45, 50)
    digit_height = 0.26 * height
    digit_width = 0.6 * digit_height
    step = 1.5 * digit_width
    left = (width - len(digits) * step + 0.5 * digit_width) / 2
    top = (height - digit_height) / 2
    line = round(0.08 * digit_height)
    boxes = []
    for index, digit in enumerate(digits):
        box = (left + index * step, top, left + index * step + digit_width, top + digit_height)
        x, y = box[0], box[1]
        if digit == "0":
            pen.ellipse(
                [x + 0.05 * digit_width, y, x + 0.95 * digit_width, box[3]], None, ink, line
            )
        for stroke in PHOTO_STROKES.get(digit, []):
            points = [(x + a * digit_width, y + b * digit_height) for a, b in stroke]
            pen.line(points, fill=ink, width=line, joint="curve")
        boxes.append(box)
    image.save(path, quality=90)
    return boxes


def take_photo(page: Page, path: Path) -> None:
    """Tap "Take photo" and choose `path`, as the camera would hand over a picture."""
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Take photo").click()
    chooser.value.set_files(path)


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page where a person can look at it after the run."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=path, full_page=True)
    return path


def test_drawing_a_seven_shows_the_prediction(browser: Browser, server: tuple[str, Path]) -> None:
    url, log = server
    page = open_page(browser, url, 1000, 760)
    draw_stroke(page, SEVEN)

    expect(page.locator("#digit")).to_have_text("7")
    expect(page.locator("#digit-result")).to_have_attribute("data-status", "digit")
    expect(page.locator("#confidence")).to_contain_text("% sure")
    expect(page.locator("#bars li.top")).to_have_count(1)
    expect(page.locator("#bars li.top .label")).to_have_text("7")
    top_bar = page.locator("#bars li.top")
    filled = top_bar.locator(".fill").bounding_box()["width"]
    assert filled > 0.9 * top_bar.locator(".track").bounding_box()["width"]
    seen = page.locator("#seen")
    expect(seen).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    assert seen.evaluate("image => [image.naturalWidth, image.naturalHeight]") == [28, 28]
    print(f"screenshot: {screenshot(page, 'draw.png')}")

    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#digit")).to_have_text("?")
    assert seen.get_attribute("src") is None
    assert page.evaluate(CANVAS_IS_WHITE)
    assert '"POST /api/predict" 200' in log.read_text()


def test_a_doodle_is_answered_not_a_digit(browser: Browser, server: tuple[str, Path]) -> None:
    page = open_page(browser, server[0], 1000, 760)
    draw_stroke(page, STAR)

    expect(page.locator("#digit-result")).to_have_attribute("data-status", "not-a-digit")
    expect(page.locator("#status")).to_contain_text("no digit at all")
    expect(page.locator("#confidence")).to_have_text("That doesn't look like a digit")
    screenshot(page, "not-a-digit.png")


def test_a_phone_sized_screen_draws_a_one(browser: Browser, server: tuple[str, Path]) -> None:
    page = open_page(browser, server[0], 390, 844)
    draw_stroke(page, ONE)

    expect(page.locator("#digit")).to_have_text("1")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "phone.png")


def test_an_opened_file_is_read_and_a_blank_one_explained(
    browser: Browser, server: tuple[str, Path], tmp_path: Path
) -> None:
    page = open_page(browser, server[0], 1000, 760)
    draw(size=200).save(tmp_path / "seven.png")
    Image.new("L", (200, 200), 255).save(tmp_path / "blank.png")

    page.set_input_files("#file", tmp_path / "seven.png")
    expect(page.locator("#digit")).to_have_text("7")
    expect(page.locator("#status")).to_contain_text("seven.png")

    page.set_input_files("#file", tmp_path / "blank.png")
    expect(page.locator("#status")).to_contain_text("no digit found: blank.png has no ink")
    expect(page.locator("#digit")).to_have_text("?")
    screenshot(page, "blank-file.png")


def test_the_api_docs_render_without_internet(browser: Browser, server: tuple[str, Path]) -> None:
    page = open_page(browser, server[0], 1000, 760, "/docs")
    operation = page.locator('.opblock-summary-path[data-path="/api/predict"]')
    expect(operation).to_be_visible()


def test_number_mode_reads_a_number_drawn_on_the_wide_canvas(
    browser: Browser, server: tuple[str, Path]
) -> None:
    url, log = server
    page = open_page(browser, url, 1000, 760)
    page.get_by_role("radio", name="Digit").focus()
    page.keyboard.press("ArrowRight")  # the mode switch works from the keyboard
    expect(page.get_by_role("radio", name="Number")).to_be_checked()
    expect(page.locator("h1")).to_have_text("Write a number")
    canvas = page.locator("#canvas").bounding_box()
    assert 2.8 < canvas["width"] / canvas["height"] < 3.2
    for stroke in NUMBER_170:
        draw_stroke(page, stroke)

    expect(page.locator("#number")).to_have_text("170", timeout=15_000)
    expect(page.locator("#digits li")).to_have_count(3)
    expect(page.locator("#digits .read")).to_have_text(["1", "7", "0"])
    expect(page.locator("#digits .sure").first).to_contain_text("% sure")
    sizes = page.locator("#digits img").evaluate_all(
        "images => images.map((image) => [image.naturalWidth, image.naturalHeight])"
    )
    assert sizes == [[28, 28]] * 3
    expect(page.locator("#canvas-boxes .box")).to_have_count(3)
    expect(page.locator("#digit-result")).to_be_hidden()
    assert '"POST /api/predict-number" 200' in log.read_text()
    screenshot(page, "number.png")

    page.get_by_role("radio", name="Digit").check()
    expect(page.locator("#number-result")).to_be_hidden()
    canvas = page.locator("#canvas").bounding_box()
    assert abs(canvas["width"] - canvas["height"]) < 2
    assert page.evaluate(CANVAS_IS_WHITE)


def test_a_photo_is_scaled_down_read_and_boxed(
    browser: Browser, server: tuple[str, Path], tmp_path: Path
) -> None:
    url, log = server
    page = open_page(browser, url, 390, 844)
    path = tmp_path / "photo.jpg"
    drawn = paper_photo(path, "1740", (2000, 1500))

    take_photo(page, path)
    expect(page.locator("#number")).to_have_text("1740", timeout=15_000)
    expect(page.get_by_role("radio", name="Number")).to_be_checked()
    expect(page.locator("#status")).to_contain_text("photo.jpg")
    boxes = page.locator("#photo-boxes .box")
    expect(boxes).to_have_count(4)
    expect(boxes.locator(".tag")).to_have_text(["1", "7", "4", "0"])
    expect(page.locator("#digits li")).to_have_count(4)
    # The page sent a 1600 x 1200 copy, and the server's boxes were placed on what is shown.
    expect(page.locator("#photo-boxes")).to_have_attribute("data-width", "1600")
    expect(page.locator("#photo-boxes")).to_have_attribute("data-height", "1200")
    shown = page.locator("#photo-image").bounding_box()
    scale = shown["width"] / 2000
    for box, (left, top, right, bottom) in zip(
        boxes.evaluate_all("boxes => boxes.map((box) => box.getBoundingClientRect().toJSON())"),
        drawn,
        strict=True,
    ):
        centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expected = (
            shown["x"] + scale * (left + right) / 2,
            shown["y"] + scale * (top + bottom) / 2,
        )
        assert math.dist(centre, expected) < 0.1 * scale * (bottom - top), (box, expected)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert '"POST /api/predict-number" 200' in log.read_text()
    print(f"screenshot: {screenshot(page, 'photo.png')}")


def test_a_bad_photo_gets_the_servers_message_and_no_number(
    browser: Browser, server: tuple[str, Path], tmp_path: Path
) -> None:
    page = open_page(browser, server[0], 390, 844)
    paper_photo(tmp_path / "good.jpg", "47", (800, 600))
    paper_photo(tmp_path / "blank.jpg", "", (2000, 1500))
    (tmp_path / "notes.jpg").write_text("not a picture at all\n")
    status = page.locator("#status")
    number = page.locator("#number")
    boxes = page.locator("#photo-boxes .box")

    take_photo(page, tmp_path / "good.jpg")
    expect(number).to_have_text("47", timeout=15_000)
    expect(boxes).to_have_count(2)

    page.set_input_files("#file", tmp_path / "blank.jpg")  # Open image, in number mode
    expect(status).to_contain_text("No digits found in that photo: blank.jpg has no ink")
    expect(status).to_have_class("error")
    expect(number).to_have_text("?")
    expect(boxes).to_have_count(0)
    expect(page.locator("#digits li")).to_have_count(0)
    expect(page.locator("#photo-image")).to_be_visible()  # the photo the message is about
    screenshot(page, "blank-photo.png")

    take_photo(page, tmp_path / "notes.jpg")
    expect(status).to_contain_text("notes.jpg: not a readable image")
    expect(number).to_have_text("?")
    expect(page.locator("#photo")).to_be_hidden()


@pytest.fixture(scope="module")
def collecting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`handwritten serve --collect DIR`, as `server` but keeping corrections: URL and DIR."""
    folder = tmp_path_factory.mktemp("collect") / "corrections"
    port = free_port()
    log = folder.with_name("serve.log")
    command = [HANDWRITTEN, "serve", "--port", str(port), "--model", str(resolve_model())]
    with open(log, "w") as output:
        process = subprocess.Popen(
            [*command, "--collect", str(folder)], stdout=output, stderr=subprocess.STDOUT, cwd=ROOT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log)
        yield url, folder
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_wrong_answer_is_corrected_and_the_drawing_kept(
    browser: Browser, collecting_server: tuple[str, Path]
) -> None:
    url, folder = collecting_server
    page = open_page(browser, url, 1000, 900)
    page.clock.install()  # the page's timers wait for run_for: one answer for the whole stroke
    draw_stroke(page, SEVEN)
    page.clock.run_for(1000)
    expect(page.locator("#digit")).to_have_text("7")
    correcting = page.locator("#correct")
    expect(correcting).to_be_visible()
    expect(page.get_by_role("button", name="It is a 7")).to_be_disabled()  # the model's answer

    page.get_by_role("button", name="It is a 1").click()  # they meant a 1 with a flag

    expect(page.locator("#correct-status")).to_have_text("Saved as a 1: thank you.")
    expect(page.get_by_role("button", name="It is a 2")).to_be_disabled()  # saved once only
    (drawing,) = (folder / "1").glob("*.png")
    (seen,) = (folder / "1" / "seen").glob("*.png")
    assert Image.open(drawing).size == (280, 280)  # the canvas as drawn
    assert Image.open(seen).size == (28, 28)  # what the model saw
    print(f"screenshot: {screenshot(page, 'correct.png')}")

    page.get_by_role("button", name="Clear").click()
    expect(correcting).to_be_hidden()


def test_without_collect_there_is_nothing_to_correct(
    browser: Browser, server: tuple[str, Path]
) -> None:
    url, log = server
    page = open_page(browser, url, 1000, 900)
    draw_stroke(page, SEVEN)
    expect(page.locator("#digit")).to_have_text("7")
    expect(page.locator("#correct")).to_be_hidden()
    expect(page.get_by_role("button", name="It is a 1")).to_be_hidden()
    assert '"GET /api/config" 200' in log.read_text()
