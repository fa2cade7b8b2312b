"""USPS handwritten digits: ZIP codes scanned from envelopes by the US Postal Service, as The
Elements of Statistical Learning ships them.

Each line of the gzipped text is a label (written as a float) and 256 grey values in [-1, 1],
a 16x16 deslanted, size-normalised image, -1 the background. zip.test.gz is a test set:
scored once per shipped model, never chosen on.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from handwritten.errors import DataError
from handwritten.sources._core import Source, Written, parsing
from handwritten.sources._render import scan_image

_REPO = (
    "https://raw.githubusercontent.com/dgkim5360/the-elements-of-statistical-learning-notebooks/"
    "2c13a4818379451bcce802bcd7917f4878e12977/data/zipcode/"
)
_FILES = {"zip.train.gz": "train", "zip.test.gz": "test"}
_SIDE = 16

SOURCE = Source(
    name="usps",
    title="USPS handwritten digits (ZIP codes from envelopes)",
    creators="US Postal Service and CEDAR, SUNY Buffalo (J. J. Hull, 1994); AT&T (Le Cun et al.); "
    "distributed by Hastie, Tibshirani & Friedman with The Elements of Statistical Learning",
    licence="none stated",
    licence_note="research data from the ESL website, credited to AT&T and the USPS",
    homepage="https://hastie.su.domains/ElemStatLearn/data.html",
    how_written="mail envelopes: 16x16 grey scans",
    writers_note="members of the US public (no writer ids)",
    files={
        "zip.train.gz": "66ebf231ab51f2cf6ac1a892d0f98ccffee1079d7a5db638c1f11f366046ca16",
        "zip.test.gz": "8dacc3c6e136af6c3488de9e5113a7daf140c8c2f1f0b61c54ee02f03f1a962f",
    },
    kind="scans",
    digits=9298,
    downloads={name: _REPO + name for name in _FILES},
)


def parse(folder: Path) -> list[Written]:
    """Every scan of both files, in file order: zip.train.gz is "train", zip.test.gz "test"."""
    written: list[Written] = []
    for name, split in _FILES.items():
        written += parse_file(folder / name, split)
    return written


def parse_file(path: Path, split: str) -> list[Written]:
    with parsing(path, "USPS"), gzip.open(path, "rt", encoding="ascii") as text:
        rows = np.loadtxt(text, ndmin=2)
    labels = rows[:, 0] if rows.shape[1] == 1 + _SIDE * _SIDE else None
    if labels is None or not np.isin(labels, np.arange(10)).all():
        raise DataError(
            f"{path} is not USPS data: each line must hold a digit 0-9 and 256 grey values; "
            "replace it with the original (`handwritten sources` says where it comes from)"
        )
    inks = (rows[:, 1:].reshape(-1, _SIDE, _SIDE) + 1.0) / 2.0
    return [
        Written(str(int(label)), "", split, picture=scan_image(ink))
        for label, ink in zip(labels, inks, strict=True)
    ]
