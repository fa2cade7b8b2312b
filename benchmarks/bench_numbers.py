"""Reading numbers on paper: the development sets' scores and the time for a 12 MP photo and
for a crop of one line.

The photo is composed here (paper lit from one side, darker corners, the grain of a phone's
sensor, five pen digits a fiftieth of the photo tall, saved as a phone would, JPEG at
4032x3024) and read in a fresh
process after start-up, several times: the figure is the median of the reads after the
first, decode included, the way `predict --number` and the server read a photo (with the
shipped number reader). The line crop is the number cut from that photo with some paper
around it, as a user cuts a cell or a line from a scan, read the same way.
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
GRAIN = 4.0
"""The sensor noise of a phone photo, in 8-bit levels: without it a crop's paper is as even as
a paint program's canvas, and the crop would be read as a drawing (digit by digit)."""

_TIMED = """
import json, sys, time
from handwritten import api
classifier = api.load()
reader = api.load_reader()
seconds = []
for _ in range({reads}):
    started = time.perf_counter()
    (reading,) = api.read_numbers([sys.argv[1]], classifier, reader)
    seconds.append(time.perf_counter() - started)
print(json.dumps({{"seconds": seconds[1:], "number": reading.number}}))
"""


def numbers(repeats: int) -> dict:
    """The development scores (when ../shared is there) and the 12 MP reading time."""
    figures: dict = _timed_reads(repeats)
    if (SHARED / "numbers").is_dir():
        done = checked(run([PYTHON, BENCHMARKS / "read_numbers.py"]), "read_numbers.py")
        figures["development"] = [line for _, line in done.lines]
    return figures


WRITTEN = "40715"


def _timed_reads(repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        photo, crop = Path(scratch) / "photo.jpg", Path(scratch) / "line.png"
        box = _photo(photo, WRITTEN)
        with Image.open(photo) as image:
            image.crop(box).save(crop)
        return {
            "twelve_megapixel": _reads(photo, repeats, "reading a 12 MP photo"),
            "line_crop": {
                **_reads(crop, repeats, "reading a line crop"),
                "size": list(crop_size(box)),
            },
        }


def crop_size(box: tuple[int, int, int, int]) -> tuple[int, int]:
    return box[2] - box[0], box[3] - box[1]


def _reads(path: Path, repeats: int, what: str) -> dict:
    runs = [
        json.loads(
            checked(run([PYTHON, "-c", _TIMED.format(reads=READS), path]), what).lines[-1][1]
        )
        for _ in range(repeats)
    ]
    return {
        "seconds": summary([s for r in runs for s in r["seconds"]]),
        "read": sorted({r["number"] for r in runs}, key=str),
        "written": WRITTEN,
    }


def _photo(path: Path, text: str) -> tuple[int, int, int, int]:
    """Write the photo; the number's box with half a digit's height of paper around it."""
    width, height = PHOTO_SIZE
    y, x = np.mgrid[0:height:8, 0:width:8].astype(np.float32)
    light = (1.0 - 0.2 * x / width) * (
        1.0 - 0.4 * ((x / width - 0.5) ** 2 + (y / height - 0.5) ** 2)
    )
    paper = np.uint8(np.clip(np.array([228, 222, 210]) * light[..., None], 0, 255))
    paper = Image.fromarray(paper).resize(PHOTO_SIZE, Image.Resampling.BILINEAR)
    grain = GRAIN * np.random.default_rng(0).standard_normal((height, width, 1), np.float32)
    image = Image.fromarray(np.uint8(np.clip(np.asarray(paper) + grain, 0, 255)))
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
    start, margin = int(0.4 * width), digit_height // 2
    return (start - margin, top - margin, left + margin, top + digit_height + margin)
