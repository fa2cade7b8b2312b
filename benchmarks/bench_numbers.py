"""Reading numbers on paper: the development sets' scores and the time for a 12 MP photo.

The photo is composed here (paper lit from one side, darker corners, five pen digits a
fiftieth of the photo tall, saved as a phone would, JPEG at 4032x3024) and read in a fresh
process after start-up, several times: the figure is the median of the reads after the
first, decode included, the way `predict --number` and the server read a photo.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from common import BENCHMARKS, PYTHON, ROOT, checked, run, summary
from PIL import Image, ImageDraw

SHARED = ROOT.parent / "shared"
PHOTO_SIZE = (4032, 3024)
READS = 5

_TIMED = """
import json, sys, time
from handwritten import api
classifier = api.load()
seconds = []
for _ in range({reads}):
    started = time.perf_counter()
    (reading,) = api.read_numbers([sys.argv[1]], classifier)
    seconds.append(time.perf_counter() - started)
print(json.dumps({{"seconds": seconds[1:], "number": reading.number}}))
"""


def numbers(repeats: int) -> dict:
    """The development scores (when ../shared is there) and the 12 MP reading time."""
    figures: dict = {"twelve_megapixel": _twelve_megapixel(repeats)}
    if (SHARED / "numbers").is_dir():
        done = checked(run([PYTHON, BENCHMARKS / "read_numbers.py"]), "read_numbers.py")
        figures["development"] = [line for _, line in done.lines]
    return figures


def _twelve_megapixel(repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        photo = Path(scratch) / "photo.jpg"
        _photo(photo, "40715")
        runs = [
            json.loads(
                checked(
                    run([PYTHON, "-c", _TIMED.format(reads=READS), photo]), "reading a 12 MP photo"
                ).lines[-1][1]
            )
            for _ in range(repeats)
        ]
    return {
        "seconds": summary([s for r in runs for s in r["seconds"]]),
        "read": sorted({r["number"] for r in runs}, key=str),
        "written": "40715",
    }


def _photo(path: Path, text: str) -> None:
    width, height = PHOTO_SIZE
    y, x = np.mgrid[0:height:8, 0:width:8].astype(np.float32)
    light = (1.0 - 0.2 * x / width) * (
        1.0 - 0.4 * ((x / width - 0.5) ** 2 + (y / height - 0.5) ** 2)
    )
    paper = np.uint8(np.clip(np.array([228, 222, 210]) * light[..., None], 0, 255))
    image = Image.fromarray(paper).resize(PHOTO_SIZE, Image.Resampling.BILINEAR)
    pen = ImageDraw.Draw(image)
    digit_height, left, top = height // 50, int(0.4 * width), int(0.48 * height)
    strokes = {
        "4": [(0.7, 1.0), (0.7, 0.0), (0.0, 0.65), (1.0, 0.65)],
        "0": None,
        "7": [(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)],
        "1": [(0.55, 0.0), (0.55, 1.0)],
        "5": [(1.0, 0.0), (0.1, 0.0), (0.05, 0.45), (0.9, 0.5), (1.0, 0.95), (0.0, 1.0)],
    }
    digit_width = int(0.6 * digit_height)
    for digit in text:
        box = (left, top, left + digit_width, top + digit_height)
        if strokes[digit] is None:
            pen.ellipse(box, outline=(30, 30, 70), width=7)
        else:
            points = [(left + u * digit_width, top + v * digit_height) for u, v in strokes[digit]]
            pen.line(points, fill=(30, 30, 70), width=7, joint="curve")
        left += int(1.3 * digit_width)
    image.save(path, quality=90)
