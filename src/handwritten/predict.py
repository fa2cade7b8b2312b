"""Read digits from image files: find the images, normalise each like MNIST, ask the model.

A drawing on a plain canvas goes straight to the one normaliser (`preprocess.to_mnist`). A
photo or a scan is a page: `page` finds the digit (or the digits of a number) on it first,
cleaning away lighting, lines, edges and specks, and each digit found ends in the same
normaliser (`preprocess.ink_to_mnist`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from handwritten import page
from handwritten.errors import ImageError
from handwritten.preprocess import ImageSource, ink_to_mnist, open_image, to_mnist

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


class Classifier(Protocol):
    """Anything that maps uint8 28x28 images (n, 28, 28) to probabilities (n, 10)."""

    def probabilities(self, images: np.ndarray) -> np.ndarray: ...


@dataclass
class Prediction:
    """One input's result; `digit` is None when the image holds no ink or could not be read.

    `box` (left, top, right, bottom, in the image's pixels) is where a digit of a number was
    found.
    """

    path: str
    digit: int | None = None
    confidence: float | None = None
    probabilities: list[float] | None = None
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    box: tuple[int, int, int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        answer = {
            "path": self.path,
            "digit": self.digit,
            "confidence": self.confidence,
            "probabilities": self.probabilities,
            "error": self.error,
        }
        if self.box is not None:
            answer["box"] = list(self.box)
        return answer

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
    _classify([p for p in predictions if p.image is not None], classifier)
    return predictions


def predict_image(
    source: ImageSource, classifier: Classifier, name: str | None = None
) -> Prediction:
    """Read the digit in one image file or encoded bytes (the server's unit of work)."""
    prediction = _preprocess(source, name or str(source))
    if prediction.image is not None:
        _classify([prediction], classifier)
    return prediction


def digit_image(image: Image.Image) -> np.ndarray | None:
    """The 28x28 image of the one digit in a drawing or photo; None when there is no ink."""
    if page.is_plain_canvas(image):
        return to_mnist(image)
    found = page.find_digit(image)
    return None if found is None else ink_to_mnist(found.ink)


def load_digit(source: ImageSource, name: str | None = None) -> np.ndarray | None:
    """Open an image file or encoded bytes and make the 28x28 image of its digit: the one
    entry point of the CLI, the server and training on a user's own drawings.

    ImageError says why an input cannot be read; None means it holds no ink.
    """
    return digit_image(open_image(source, name))


def _preprocess(source: ImageSource, label: str | None = None) -> Prediction:
    label = label or str(source)
    try:
        return Prediction(path=label, image=load_digit(source, label))
    except ImageError as exc:
        return Prediction(path=label, error=str(exc))


def _classify(predictions: list[Prediction], classifier: Classifier) -> None:
    """Fill in digit, confidence and probabilities, in one batch for speed."""
    if not predictions:
        return
    probabilities = classifier.probabilities(np.stack([p.image for p in predictions]))
    for prediction, row in zip(predictions, probabilities, strict=True):
        prediction.digit = int(row.argmax())
        prediction.confidence = float(row.max())
        prediction.probabilities = [float(p) for p in row]


@dataclass
class NumberReading:
    """Several digits side by side in one image, read left to right."""

    path: str
    digits: list[Prediction] = field(default_factory=list)
    error: str | None = None
    size: tuple[int, int] | None = None

    @property
    def number(self) -> str | None:
        """The digits as a string (a number may start with 0, as in a postcode), or None."""
        return "".join(str(p.digit) for p in self.digits) if self.digits else None

    def to_json(self) -> dict[str, Any]:
        digits = [{k: v for k, v in p.to_json().items() if k != "path"} for p in self.digits]
        return {
            "path": self.path,
            "number": self.number,
            "digits": digits,
            "error": self.error,
            "size": list(self.size) if self.size else None,
        }

    def describe(self) -> str:
        if self.error:
            return f"{self.path}: error: {self.error}"
        if not self.digits:
            return f"{self.path}: no digits found"
        least = min(p.confidence for p in self.digits)
        return f"{self.path}: {self.number} (least sure digit {least:.1%})"


def read_number(
    source: ImageSource, classifier: Classifier, name: str | None = None
) -> NumberReading:
    """Read every digit of the number in one image (a photo, a scan, a drawing), in reading
    order, each with its box in the image."""
    label = name or str(source)
    try:
        image = open_image(source, label)
    except ImageError as exc:
        return NumberReading(path=label, error=str(exc))
    digits = [
        Prediction(label, image=ink_to_mnist(found.ink), box=found.box)
        for found in page.find_digits(image)
    ]
    reading = NumberReading(path=label, digits=digits, size=image.size)
    _classify(reading.digits, classifier)
    return reading


def read_numbers(paths: Iterable[str | os.PathLike], classifier: Classifier) -> list[NumberReading]:
    """`read_number` for each image file, folders expanded."""
    return [read_number(path, classifier, str(path)) for path in find_images(paths)]
