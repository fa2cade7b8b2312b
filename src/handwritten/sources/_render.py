"""Turn a pen trajectory or a scanned bitmap into a picture the way people's digits reach the
model, before the project's one normaliser (`handwritten.preprocess.to_mnist`) reads it.

The drawing page draws black on a white canvas 280 px high with a 12 px pen; people also
photograph and scan ink on paper. So each trajectory is drawn at a digit size and pen width
drawn from ranges around the page's, anti-aliased, as dark ink on a white canvas or on
paper-like grey with a little noise, each choice seeded per sample. Only pen-down strokes
are drawn: the parsers drop pen-up moves.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

DIGIT_SIDE = (150.0, 230.0)
"""The digit's longer side in pixels, as drawn on the page's 280-px canvas."""
PEN_WIDTH = (0.02, 0.12)
"""The pen's width as a share of the digit's longer side: 3 to 28 px."""
PAPER_SHARE = 0.5
PAPER_GREY = (150.0, 230.0)
INK_ON_PAPER = (10.0, 90.0)
PAPER_NOISE = 5.0
MARGIN = 24
SHIFT = 4
"""Fractional bits of the points handed to OpenCV: strokes keep sub-pixel positions."""
SCAN_MARGIN = 4


def trajectory_image(strokes: Sequence[np.ndarray], rng: np.random.Generator) -> Image.Image:
    """Draw strokes ((n, 2) arrays of x, y with y downwards) as a grey picture."""
    points = np.concatenate(strokes).astype(np.float64)
    low = points.min(axis=0)
    span = points.max(axis=0) - low
    side = rng.uniform(*DIGIT_SIDE)
    scale = side / max(float(span.max()), 1e-9)
    width = max(2, round(rng.uniform(*PEN_WIDTH) * side))
    margin = MARGIN + width
    columns, rows = (np.ceil(span * scale).astype(int) + 2 * margin).tolist()
    on_paper = rng.random() < PAPER_SHARE
    background, ink = (
        (rng.uniform(*PAPER_GREY), rng.uniform(*INK_ON_PAPER)) if on_paper else (255, 0)
    )
    canvas = np.full((rows, columns), round(background), dtype=np.uint8)
    for stroke in strokes:
        fixed = np.round(((stroke - low) * scale + margin) * (1 << SHIFT)).astype(np.int32)
        _draw_stroke(canvas, fixed, width, round(ink))
    if on_paper:
        noise = rng.normal(0.0, PAPER_NOISE, canvas.shape)
        canvas = np.uint8(np.clip(np.round(canvas + noise), 0, 255))
    return Image.fromarray(canvas, mode="L")


def _draw_stroke(canvas: np.ndarray, fixed: np.ndarray, width: int, ink: int) -> None:
    """One pen-down stroke; a stroke that never moves is a dot of the pen's width."""
    if (fixed == fixed[0]).all():
        centre = (int(fixed[0, 0]), int(fixed[0, 1]))
        cv2.circle(canvas, centre, (width << SHIFT) // 2, ink, -1, cv2.LINE_AA, SHIFT)
        return
    cv2.polylines(canvas, [fixed.reshape(-1, 1, 2)], False, ink, width, cv2.LINE_AA, SHIFT)


def scan_image(ink: np.ndarray) -> Image.Image:
    """A scanned bitmap (0-1, 1 = full ink) as dark ink on white paper with a margin: a
    size-normalised scan's strokes touch its edges, a user's scan has paper around them."""
    paper = np.uint8(np.round(255.0 * (1.0 - np.clip(ink, 0.0, 1.0))))
    bordered = cv2.copyMakeBorder(paper, *(SCAN_MARGIN,) * 4, cv2.BORDER_CONSTANT, value=255)
    return Image.fromarray(bordered, mode="L")
