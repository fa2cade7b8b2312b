"""Read a whole number the way docTR reads text: finding proposes where the number may be,
the sequence reader (`reader.py`) reads each proposal whole, and the reading the reader is
surest of is the answer.

The proposals (`proposals`): the line of digits that `page.find_digits` finds, with some
paper around it (for photos and drawings of a number); the whole image (a crop of a line or a
cell); and horizontal bands of the image at a few heights (a small number in a large cell,
where page finding takes the cell's rules or the scanner's margin for the writing). The reader
learned from generated crops with rules, margins, words and paper around the number, so a
band that holds the number reads well and one that cuts through it or holds none reads with
little confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from handwritten import page
from handwritten.preprocess import gray_on_white
from handwritten.reader import Reader, Reading

WORK_SIDE = 1600
"""Proposals are cut from the image reduced to this longest side: the reader sees 32 pixels
of height, so more detail only costs time (a 12-megapixel photo is 4000 pixels wide)."""
AROUND_FOUND = (0.5, 0.3)
"""Paper kept around the found digits, as a share of their height: sideways (room for a
digit that finding missed at either end) and up and down."""
BAND_SHARES = (1 / 2, 1 / 3, 1 / 5)
"""Band heights, as shares of the image's height; each band overlaps the next by half."""


Box = tuple[int, int, int, int]
"""(left, top, right, bottom) in pixels."""


@dataclass(frozen=True)
class Proposal:
    """Where the number may be, and what proposed it: "found" (page finding), "whole" (the
    whole image) or "band"."""

    kind: str
    box: Box


@dataclass(frozen=True)
class NumberRead:
    """The reader's reading of the best proposal, and that proposal in the image's pixels."""

    reading: Reading
    proposal: Proposal


def read_number(
    image: Image.Image, reader: Reader, found: list[page.DigitBox] | None = None
) -> NumberRead | None:
    """The number in the image as the reader reads its best proposal; None with no reading.
    `found` is what `page.find_digits` found in the image, when the caller has it already."""
    grey, scale = _working_grey(image)
    found = proposals(image, grey, scale, found)
    readings = reader.read([_cut(grey, proposal.box) for proposal in found])
    scored = [(_sureness(r), i) for i, r in enumerate(readings) if r.digits]
    if not scored:
        return None
    _, best = max(scored)
    box = tuple(round(v / scale) for v in found[best].box)
    return NumberRead(readings[best], Proposal(found[best].kind, box))


def _sureness(reading: Reading) -> float:
    """How sure the reader is of a reading, to choose between proposals: its mean confidence
    over the proposal's frames times its least sure digit's. Chosen on validation (the
    generator's seed-43 images and the register cells) over either factor alone and their
    product of digits: a band cutting through the number reads some digits surely and one
    not at all, which the mean alone misses."""
    return reading.confidence * min(digit.confidence for digit in reading.digits)


def _cut(grey: np.ndarray, box: Box) -> np.ndarray:
    left, top, right, bottom = box
    return grey[top:bottom, left:right]


def proposals(
    image: Image.Image,
    grey: np.ndarray,
    scale: float,
    found: list[page.DigitBox] | None = None,
) -> list[Proposal]:
    """Where the number may be, in `grey`'s pixels (`image` reduced by `scale`)."""
    height, width = grey.shape
    boxes = [Proposal("whole", (0, 0, width, height))]
    found = page.find_digits(image) if found is None else found
    if found:
        corners = np.array([digit.box for digit in found], np.float64) * scale
        left, top = corners[:, 0].min(), corners[:, 1].min()
        right, bottom = corners[:, 2].max(), corners[:, 3].max()
        side, up = np.array(AROUND_FOUND) * (bottom - top)
        box = (
            max(0, int(left - side)),
            max(0, int(top - up)),
            min(width, int(right + side) + 1),
            min(height, int(bottom + up) + 1),
        )
        boxes.append(Proposal("found", box))
    for share in BAND_SHARES:
        band = max(8, int(height * share))
        for top in range(0, max(1, height - band // 2), max(1, band // 2)):
            boxes.append(Proposal("band", (0, top, width, min(height, top + band))))
    return [p for p in boxes if p.box[2] > p.box[0] and p.box[3] > p.box[1]]


def _working_grey(image: Image.Image) -> tuple[np.ndarray, float]:
    """The image as grey uint8 (transparency on white), at most WORK_SIDE on its longer side,
    and the scale from the original's pixels to these."""
    scale = min(1.0, WORK_SIDE / max(image.size))
    if scale < 1.0:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.BOX,
        )
    return np.round(gray_on_white(image) * 255).astype(np.uint8), scale
