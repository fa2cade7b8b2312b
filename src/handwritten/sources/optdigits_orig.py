"""UCI Optical Recognition of Handwritten Digits, the original 32x32 bitmaps: digits written
on paper forms at Bogazici University, Istanbul, by 43 people.

Each sample is 32 lines of 32 `0`/`1` characters (1 = ink, top row first) and a line with the
label; the files start with a header (skipped: the first bitmap line starts the data) and
`.windep` ends with `EOF`. Writers 1-30 wrote `.tra` and `.tes` (UCI's `.cv` under another
name); 13 others wrote `.windep`, the writer-independent test set: "test" here, the others
"train". No per-sample writer ids are published.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from handwritten.sources._core import Source, Written, malformed, parsing
from handwritten.sources._render import scan_image

_FILES = {
    "optdigits-orig.tra": (
        "train",
        "b0649058daf39b41da11827b6f9d784333e85e7362539fe7afd26fef517b4a3f",
        "https://raw.githubusercontent.com/rosalin00/assignment3/"
        "b0b56ab95905d4b3c414617e489fd0be6d0e055a/optdigits-orig.tra",
    ),
    "optdigits-orig.tes": (
        "train",
        "29b0ea16767a56815aa39b608520aa18d4acc087b9db85847f4c79addb7d09d3",
        "https://raw.githubusercontent.com/vladimirbelinski/"
        "Character_Recognition_Using_Neural_Networks-T3_IA/"
        "1a9bbaf4fa3b90a7e38824fafa6d29b22592edec/optdigits-orig.tes",
    ),
    "optdigits-orig.windep": (
        "test",
        "c09ab8735d588fdf980724f10a5072c0b757037dc80b448b2f6a10392751c9d6",
        "https://raw.githubusercontent.com/sukeshsangam/pattern-recognition-neural-networks/"
        "3b06ae726302dfcf384c1eec5ac6f2b71ae7ff53/optdigits-orig.windep",
    ),
}
_SIDE = 32
_BITMAP_ROW = re.compile(r"^[01]{32}$")
_LABEL = re.compile(r"^\s*\d\s*$")

SOURCE = Source(
    name="optdigits-orig",
    title="UCI Optical Recognition of Handwritten Digits (original 32x32 bitmaps)",
    creators="E. Alpaydin and C. Kaynak, Bogazici University, Istanbul (UCI, 1998)",
    licence="CC BY 4.0",
    licence_note="as UCI lists it (dataset 80); cite Alpaydin & Kaynak and UCI",
    homepage="https://archive.ics.uci.edu/dataset/80",
    how_written="paper forms: 32x32 binary scans",
    writers_note="43 writers, Istanbul (30 in train, 13 others in test; no per-sample ids)",
    files={name: sha for name, (_, sha, _) in _FILES.items()},
    kind="scans",
    digits=4677,
    downloads={name: url for name, (_, _, url) in _FILES.items()},
)


def parse(folder: Path) -> list[Written]:
    """Every bitmap of the three files, in file order."""
    written: list[Written] = []
    for name, (split, _, _) in _FILES.items():
        written += parse_file(folder / name, split)
    return written


def parse_file(path: Path, split: str) -> list[Written]:
    with parsing(path, "optdigits"):
        lines = path.read_text(encoding="ascii").splitlines()
    start = next((i for i, line in enumerate(lines) if _BITMAP_ROW.match(line)), None)
    if start is None:
        raise malformed(path, None, "no 32x32 bitmap of 0s and 1s found")
    samples = []
    position = start
    while position < len(lines) and lines[position].strip() not in ("", "EOF"):
        rows, label = lines[position : position + _SIDE], lines[position + _SIDE : position + 33]
        if len(rows) < _SIDE or not all(_BITMAP_ROW.match(row) for row in rows):
            raise malformed(path, position + 1, "expected 32 rows of 32 0s and 1s")
        if len(label) != 1 or not _LABEL.match(label[0]):
            raise malformed(path, position + _SIDE + 1, "expected a digit label after the bitmap")
        ink = np.array([[int(bit) for bit in row] for row in rows], dtype=np.float32)
        samples.append(Written(label[0].strip(), "", split, picture=scan_image(ink)))
        position += _SIDE + 1
    return samples
