"""Read digits from image files: find the images, normalise each like MNIST, ask the model."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from handwritten.errors import ImageError
from handwritten.preprocess import preprocess_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


class Classifier(Protocol):
    """Anything that maps uint8 28x28 images (n, 28, 28) to probabilities (n, 10)."""

    def probabilities(self, images: np.ndarray) -> np.ndarray: ...


@dataclass
class Prediction:
    """One input's result; `digit` is None when the image holds no ink or could not be read."""

    path: str
    digit: int | None = None
    confidence: float | None = None
    probabilities: list[float] | None = None
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "digit": self.digit,
            "confidence": self.confidence,
            "probabilities": self.probabilities,
            "error": self.error,
        }

    def describe(self) -> str:
        if self.error:
            return f"{self.path}: error: {self.error}"
        if self.digit is None:
            return f"{self.path}: no digit found"
        return f"{self.path}: {self.digit} ({self.confidence:.1%})"


def find_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders into the images they hold (sorted); files are kept as given."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    return found


def predict_files(paths: Iterable[str | os.PathLike], classifier: Classifier) -> list[Prediction]:
    """Predict every image; a file that cannot be read gets an error, the rest still run."""
    predictions = [_preprocess(path) for path in find_images(paths)]
    readable = [p for p in predictions if p.image is not None]
    if readable:
        probabilities = classifier.probabilities(np.stack([p.image for p in readable]))
        for prediction, row in zip(readable, probabilities, strict=True):
            prediction.digit = int(row.argmax())
            prediction.confidence = float(row.max())
            prediction.probabilities = [float(p) for p in row]
    return predictions


def _preprocess(path: Path) -> Prediction:
    try:
        return Prediction(path=str(path), image=preprocess_image(path))
    except ImageError as exc:
        return Prediction(path=str(path), error=str(exc))
