"""Read digits from image files: find the images, normalise each like MNIST, ask the model.

A drawing on a plain canvas goes straight to the one normaliser (`preprocess.to_mnist`). A
photo or a scan is a page: `page` finds the digit (or the digits of a number) on it first,
cleaning away lighting, lines, edges and specks, and each digit found ends in the same
normaliser (`preprocess.ink_to_mnist`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image

from handwritten import page, trust
from handwritten.errors import ImageError
from handwritten.preprocess import (
    ImageSource,
    gray_on_white,
    ink_to_mnist,
    open_image,
    to_mnist,
)

if TYPE_CHECKING:
    from handwritten.numbers import NumberRead
    from handwritten.reader import Reader

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


class Classifier(Protocol):
    """Anything that maps uint8 28x28 images (n, 28, 28) to probabilities (n, 10), or (n, 11)
    with "not a digit" last; `card`, when it has one, holds the thresholds of `trust`."""

    def probabilities(self, images: np.ndarray) -> np.ndarray: ...


@dataclass
class Prediction:
    """One input's result, with its `status` (see `trust`): "digit", "unsure" (`digit` is the
    best guess, `alternatives` the other digits it could be), "not-a-digit", "no-ink" or
    "error". `digit` is None for the last three.

    `probabilities` are the ten digits'; `not_a_digit` is the network's probability that the
    image is no digit at all (None for a network without that output). `box` (left, top,
    right, bottom, in the image's pixels) is where a digit of a number was found.
    """

    path: str
    digit: int | None = None
    confidence: float | None = None
    probabilities: list[float] | None = None
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    box: tuple[int, int, int, int] | None = None
    status: str = "no-ink"
    alternatives: list[int] = field(default_factory=list)
    not_a_digit: float | None = None

    def __post_init__(self) -> None:
        if self.error is not None:
            self.status = "error"

    def to_json(self) -> dict[str, Any]:
        answer = {
            "path": self.path,
            "status": self.status,
            "digit": self.digit,
            "confidence": self.confidence,
            "alternatives": self.alternatives,
            "probabilities": self.probabilities,
            "not_a_digit": self.not_a_digit,
            "error": self.error,
        }
        if self.box is not None:
            answer["box"] = list(self.box)
        return answer

    def describe(self) -> str:
        return f"{self.path}: {self.answer()}"

    def answer(self) -> str:
        """The answer in words, as the CLI says it: "7 (98.2%)", "6 or 5? (unsure: ...)"."""
        if self.status == "error":
            return f"error: {self.error}"
        if self.status == "no-ink":
            return "no digit found"
        if self.status == "not-a-digit":
            doubt = self.not_a_digit if self.not_a_digit is not None else 1 - self.confidence
            return f"not a digit ({doubt:.0%} sure)"
        if self.status == "unsure":
            return f"{self.brief()} (unsure: {self.digit} at {self.confidence:.1%})"
        return f"{self.digit} ({self.confidence:.1%})"

    def brief(self) -> str:
        """The answer in a few characters: "7", "6 or 5?", "not a digit", "no ink"."""
        if self.status == "unsure":
            return " or ".join(str(d) for d in [self.digit, *self.alternatives]) + "?"
        if self.status == "digit":
            return str(self.digit)
        return self.status.replace("-", " ")


def find_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders into the images they hold (sorted); files are kept as given."""
    return list(iter_images(paths))


def iter_images(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """`find_images` one folder at a time, in the same order, for inputs too many to list."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield path


def predict_files(paths: Iterable[str | os.PathLike], classifier: Classifier) -> list[Prediction]:
    """Predict every image; a file that cannot be read gets an error, the rest still run."""
    predictions = [preprocess_file(path) for path in find_images(paths)]
    classify_predictions(predictions, classifier)
    return predictions


def preprocess_file(source: ImageSource, label: str | None = None) -> Prediction:
    """One input's prediction before the model sees it (its 28x28 image, or its error): the
    part of `predict_files` that a process pool can run, as it needs no model."""
    label = label or str(source)
    try:
        return Prediction(path=label, image=load_digit(source, label))
    except ImageError as exc:
        return Prediction(path=label, error=str(exc))


def classify_predictions(predictions: list[Prediction], classifier: Classifier) -> None:
    """The other part: classify, in one batch, every prediction that has an image."""
    _classify([p for p in predictions if p.image is not None], classifier)


def predict_image(
    source: ImageSource, classifier: Classifier, name: str | None = None
) -> Prediction:
    """Read the digit in one image file or encoded bytes (the server's unit of work)."""
    prediction = preprocess_file(source, name)
    classify_predictions([prediction], classifier)
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


def _classify(predictions: list[Prediction], classifier: Classifier) -> None:
    """Fill in the status, digit, confidence and probabilities, in one batch for speed."""
    if not predictions:
        return
    thresholds = trust.thresholds_of(getattr(classifier, "card", None))
    probabilities = classifier.probabilities(np.stack([p.image for p in predictions]))
    for prediction, row in zip(predictions, probabilities, strict=True):
        judgement = trust.judge(row, thresholds)
        digits = trust.digit_probabilities(row)
        prediction.status = judgement.status
        prediction.digit = judgement.digit
        prediction.alternatives = judgement.alternatives
        prediction.confidence = float(digits.max())
        prediction.probabilities = [float(p) for p in digits]
        if len(row) > trust.NUM_DIGITS:
            prediction.not_a_digit = float(row[trust.NUM_DIGITS])


NUMBER_STATUSES = ("sure", "unsure", "no-number", "error")


@dataclass
class NumberReading:
    """Several digits side by side in one image, read left to right.

    Every position found gets an answer: its best digit, with a status of its own
    ("digit" when sure, else "unsure" with `alternatives`). A piece the classifier calls
    "not a digit" is still a position of the number (a broken stroke, a digit half cut, a
    round zero), so it too is answered "unsure" with its best digit, keeping the network's
    `not_a_digit` probability, rather than a "?" that makes a nearly right reading wrong.
    `status` sums the number up: "sure" (every position sure), "unsure", "no-number" (no
    ink found) or "error" (the file could not be read).
    """

    path: str
    digits: list[Prediction] = field(default_factory=list)
    error: str | None = None
    size: tuple[int, int] | None = None
    proposal: str | None = "digits"
    """What read it: "digits" (each digit found and classified), or the sequence reader on
    a proposal of `numbers`: "found", "whole" or "ink"."""

    def positions(self) -> list[Prediction]:
        """Each position's answer, as the number reports it (see the class docstring)."""
        return [_position(p) for p in self.digits]

    @property
    def number(self) -> str | None:
        """The best reading of every position as a string (a number may start with 0, as in
        a postcode), or None when nothing was read."""
        if not self.digits:
            return None
        return "".join(str(p.digit) for p in self.positions())

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        if not self.digits:
            return "no-number"
        return "sure" if all(p.status == "digit" for p in self.positions()) else "unsure"

    def to_json(self) -> dict[str, Any]:
        digits = [{k: v for k, v in p.to_json().items() if k != "path"} for p in self.positions()]
        return {
            "path": self.path,
            "status": self.status,
            "number": self.number,
            "digits": digits,
            "error": self.error,
            "size": list(self.size) if self.size else None,
            "read_by": self.proposal,
        }

    def describe(self) -> str:
        if self.error:
            return f"{self.path}: error: {self.error}"
        if not self.digits:
            return f"{self.path}: no digits found"
        positions = self.positions()
        least = min(p.confidence for p in positions)
        doubts = [f"{i + 1}: {p.answer()}" for i, p in enumerate(positions) if p.status != "digit"]
        doubt = f"; unsure of {', '.join(doubts)}" if doubts else ""
        return f"{self.path}: {self.number} ({self.status}, least sure digit {least:.1%}{doubt})"


def _position(prediction: Prediction) -> Prediction:
    """A digit of a number as the number reports it: "not a digit" becomes "unsure" with
    the best digit and the runners-up; a sure or unsure digit is kept as it is."""
    if prediction.status != "not-a-digit" or prediction.probabilities is None:
        return prediction
    digits = np.asarray(prediction.probabilities)
    best = int(digits.argmax())
    return replace(
        prediction, status="unsure", digit=best, alternatives=trust.alternatives(digits, best)
    )


def read_number(
    source: ImageSource,
    classifier: Classifier | None,
    name: str | None = None,
    reader: Reader | None = None,
) -> NumberReading:
    """Read every digit of the number in one image (a photo, a scan, a drawing), in reading
    order, each with its box in the image: by the sequence `reader` when given (see
    `numbers`), else by finding each digit and asking the classifier."""
    reading = (
        find_number(source, name) if reader is None else read_number_whole(source, reader, name)
    )
    if reading.proposal == "digits":
        _classify(reading.digits, classifier)
    return reading


def read_number_whole(
    source: ImageSource, reader: Reader, name: str | None = None
) -> NumberReading:
    """The number read whole by the sequence reader: each digit sure when the reader's
    confidence in it reaches the sure threshold its card records. An image where no ink is
    found has no number (`numbers.proposals`), as digit by digit. A drawing on a plain canvas
    may be found digit by digit instead (`_cut_digits_win`), not yet classified (`proposal`
    "digits")."""
    from handwritten import numbers

    label = name or str(source)
    try:
        image = open_image(source, label)
    except ImageError as exc:
        return NumberReading(path=label, error=str(exc))
    on_canvas = page.find_digits(image) if page.is_plain_canvas(image) else None
    found = numbers.read_number(image, reader, on_canvas)
    if on_canvas is not None:
        drawn = _found_digits(image, label, on_canvas)
        if _cut_digits_win(drawn, found):
            return drawn
    if found is None:
        return NumberReading(path=label, size=image.size, proposal=None)
    sure = trust.reader_sure(reader.card)
    digits = []
    width, height = image.size
    _, top, _, bottom = found.proposal.box
    top, bottom = max(0, top), min(height, bottom)
    spans = _digit_columns(found.proposal.box, [d.span for d in found.reading.digits])
    for digit, columns in zip(found.reading.digits, spans, strict=True):
        start, end = _within(columns, width)
        box = _ink_box(image, (start, top, end, bottom))
        digits.append(
            Prediction(
                label,
                digit=digit.digit,
                confidence=digit.confidence,
                probabilities=digit.probabilities,
                alternatives=digit.alternatives,
                status="digit" if digit.confidence >= sure else "unsure",
                box=box,
                image=_thumbnail(image, box),
            )
        )
    return NumberReading(path=label, digits=digits, size=image.size, proposal=found.proposal.kind)


def _cut_digits_win(drawn: NumberReading, found: NumberRead | None) -> bool:
    """Whether a drawing on a plain canvas is read by cutting its digits apart for the digit
    network rather than by the reader: when page finding cuts more digits than the reader
    reads, or each sees one. Nothing on a plain canvas is a rule, but the reader learnt that
    a lone upright stroke beside a number is a cell's rule, and drops a 1 drawn a little
    apart ("170" on the page's wide canvas read "70"); and a lone digit is what the digit
    networks learnt. Otherwise the reader reads it: it learnt touching and overlapping digits
    that page finding cannot cut apart.

    Chosen on the generator's validation images on a plain canvas (drawings, and crops of
    clean paper such as a binarised scan) and on the development sets. Right, of 1,000
    images of seed 46: 714 this way, 669 all digit by digit as before, 726 when only a lone
    digit went digit by digit (which read that "170" as "70"); of the 47 development numbers
    45, 44 and 44; of people's 355 single drawings read as numbers 343, 344 and 348."""
    read = len(found.reading.digits) if found is not None else 0
    cut = len(drawn.digits)
    return cut > read or cut == read == 1


DIGIT_ASPECT = 0.7
"""A lone digit's width, as a share of its line's height, for the box around a number of one."""


def _digit_columns(
    proposal: tuple[int, int, int, int], spans: list[tuple[float, float]]
) -> list[tuple[int, int]]:
    """Each digit's columns in the image. CTC marks a digit at one or two frames, not across
    its width, so each digit reaches halfway to its neighbours' marks, and the first and
    last as far out as half the usual spacing."""
    left, top, right, bottom = proposal
    width = right - left
    centres = [left + width * (a + b) / 2 for a, b in spans]
    spacing = (
        float(np.median(np.diff(centres))) if len(centres) > 1 else DIGIT_ASPECT * (bottom - top)
    )
    cuts = [max(left, centres[0] - spacing / 2)]
    cuts += [(a + b) / 2 for a, b in itertools.pairwise(centres)]
    cuts.append(min(right, centres[-1] + spacing / 2))
    return [(int(a), max(int(a) + 1, int(np.ceil(b)))) for a, b in itertools.pairwise(cuts)]


def _within(columns: tuple[int, int], width: int) -> tuple[int, int]:
    """Columns inside an image `width` wide, at least one: a proposal may reach beyond the
    image onto added paper (`numbers.PAPER_AT_EDGE`)."""
    start = min(max(columns[0], 0), width - 1)
    return start, max(start + 1, min(columns[1], width))


INK_CONTRAST = 0.25
"""A pixel this much darker (or, on a dark page, lighter) than the paper is ink."""


def _ink_box(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The box shrunk to the ink inside it (the reader gives columns, not rows); the box as
    it is when it holds no ink."""
    grey = gray_on_white(image.crop(box))
    paper = float(np.median(grey))
    ink = grey < paper - INK_CONTRAST if paper >= 0.5 else grey > paper + INK_CONTRAST
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not len(rows):
        return box
    left, top = box[0], box[1]
    return (
        left + int(columns[0]),
        top + int(rows[0]),
        left + int(columns[-1]) + 1,
        top + int(rows[-1]) + 1,
    )


def _thumbnail(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    """The digit's part of the image through the one normaliser, as a 28x28 picture of what
    was read (the reader itself saw the whole proposal); black where it finds no ink."""
    normalised = to_mnist(image.crop(box))
    return normalised if normalised is not None else np.zeros((28, 28), np.uint8)


def find_number(source: ImageSource, name: str | None = None) -> NumberReading:
    """The digits of a number found and normalised, not yet classified: the part of
    `read_number` that a process pool can run, as it needs no model."""
    label = name or str(source)
    try:
        image = open_image(source, label)
    except ImageError as exc:
        return NumberReading(path=label, error=str(exc))
    return _found_digits(image, label, page.find_digits(image))


def _found_digits(image: Image.Image, label: str, found: list[page.DigitBox]) -> NumberReading:
    """The digits page finding `found` in the image, not yet classified."""
    digits = [Prediction(label, image=ink_to_mnist(digit.ink), box=digit.box) for digit in found]
    return NumberReading(path=label, digits=digits, size=image.size)


def read_numbers(
    paths: Iterable[str | os.PathLike], classifier: Classifier | None, reader: Reader | None = None
) -> list[NumberReading]:
    """`read_number` for each image file, folders expanded."""
    return [read_number(path, classifier, str(path), reader) for path in find_images(paths)]
