"""Reading the JSON trajectory files (UJI, Chars74K, NumberPad): {char: [sample, ...]}, each
sample a list of strokes, each stroke a list of [x, y] points with y downwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from handwritten.errors import DataError
from handwritten.sources._core import parsing


def read_classes(path: Path, source: str, key: str | None = None) -> dict[str, list[Any]]:
    """The {char: samples} mapping, under `key` when the file nests it (NumberPad's rawData)."""
    with parsing(path, source):
        document = json.loads(path.read_text(encoding="utf-8"))
        classes = document[key] if key is not None else document
        if not isinstance(classes, dict):
            raise TypeError(f"expected an object of characters, found {type(classes).__name__}")
    return classes


def strokes_of(sample: Any, path: Path, source: str, where: str) -> tuple[np.ndarray, ...]:
    """A sample's strokes as (n, 2) float arrays; a sample without points is an error."""
    with parsing(path, source):
        strokes = tuple(np.array(stroke, dtype=np.float64).reshape(-1, 2) for stroke in sample)
    strokes = tuple(stroke for stroke in strokes if len(stroke))
    if not strokes:
        raise DataError(
            f"{path}: {where} has no points; replace the file with the original "
            "(`handwritten sources` says where it comes from)"
        )
    return strokes
