"""Checks shared by the picture tests: a PNG of the promised size that shows something."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def picture(path: Path, size: tuple[int, int], min_ink: float = 0.02) -> np.ndarray:
    """Open a PNG, check its size and that at least `min_ink` of it is not white; return RGB."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size
        pixels = np.asarray(image.convert("RGB"))
    ink = (pixels.min(axis=2) < 200).mean()
    assert ink >= min_ink, f"{path} is nearly blank ({ink:.1%} ink)"
    return pixels
