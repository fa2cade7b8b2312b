"""The page in a real browser: Debian's Chromium, driven by Playwright, draws on a real server.

The server is the console script `handwritten serve`, started as a user would, with the model
given as a file. Screenshots land in out/e2e/ for a person to look at.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from conftest import ROOT
from drawings import SEVEN, draw
from PIL import Image
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
    command = [HANDWRITTEN, "serve", "--port", str(port), "--model", str(resolve_model("seed"))]
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
