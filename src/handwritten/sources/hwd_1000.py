"""HwD-1000: 1,000 digits drawn digitally in black on white 28x28 PNGs, listed with their
labels in dataset.csv. Read as any user's image file is (`preprocess.open_image`), then
normalised as a scan. Probably one writer, the author; no writer ids."""

from __future__ import annotations

import csv
from pathlib import Path

from handwritten.errors import DataError, ImageError
from handwritten.preprocess import open_image
from handwritten.sources._core import Source, Written, checksum_list, malformed, parsing

_REPO = (
    "https://raw.githubusercontent.com/niklashenning/hwd-1000-dataset/"
    "93b3ba9e45624ee557360229a42298eaa6b3a106/"
)
_FILES = checksum_list("hwd-1000")
_TABLE = "dataset.csv"

SOURCE = Source(
    name="hwd-1000",
    title="HwD-1000 handwritten digits",
    creators="Niklas Henning (2024)",
    licence="MIT",
    licence_note="copyright 2024 Niklas Henning; keep the notice with copies",
    homepage="https://github.com/niklashenning/hwd-1000-dataset",
    how_written="drawn digitally: 28x28 PNG",
    writers_note="1 writer, or a few (no ids)",
    files=_FILES,
    kind="scans",
    digits=1000,
    downloads={name: _REPO + name for name in _FILES},
)


def parse(folder: Path) -> list[Written]:
    """Every image dataset.csv lists, in its order."""
    table = folder / _TABLE
    with parsing(table, "HwD-1000 dataset.csv"):
        rows = list(csv.DictReader(table.read_text(encoding="utf-8").splitlines()))
    samples = []
    for number, row in enumerate(rows, 2):
        image, label = row.get("image"), (row.get("label") or "").strip()
        if not image or len(label) != 1 or label not in "0123456789":
            raise malformed(table, number, "expected a row `img/<file>.png,<digit>`")
        try:
            picture = open_image(folder / image)
        except ImageError as error:
            raise DataError(f"{error} (listed in {table}, line {number})") from None
        samples.append(Written(label, "", "train", picture=picture))
    return samples
