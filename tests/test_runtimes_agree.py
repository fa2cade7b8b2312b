"""One image, one answer, whatever runs the network: Keras and ONNX Runtime on every image of
the development sets and MNIST's validation split, for every shipped model, and on every
number of the development set and a twentieth of the register cells for the shipped reader.

The two runtimes (like one runtime on two CPUs' kernels) differ in the last bits of a
probability; the thresholds are placed mid-gap, at least `trust.RUNTIME_TOLERANCE` from every
score they were chosen on, so those bits never change a status or a digit there. The sets the
thresholds were not chosen on (the non-digits, the digits found in photos of numbers) may
hold a score within the tolerance of a threshold by chance: the test counts them and still
requires the same answer for every other image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_DIR, SHARED
from PIL import Image

from handwritten import data, numbers, predict, reader, registry, runtime, trust

pytestmark = pytest.mark.integration

CHOSEN_ON = ("validation", "user-digits", "photos")
"""The sets `make record-NAME` chooses the thresholds on."""


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    """The 28x28 images each set gives the network, made once: preprocessing is the same code
    whichever runtime classifies."""
    sets = {"validation": data.split_mnist(data.load_mnist(MNIST_DIR)).x_val}
    for name in ("user-digits", "photos", "nondigits"):
        found = [predict.preprocess_file(path) for path in _images_of(name)]
        sets[name] = np.stack([p.image for p in found if p.image is not None])
    numbers = [predict.find_number(path) for path in _images_of("numbers")]
    sets["numbers"] = np.stack([digit.image for reading in numbers for digit in reading.digits])
    return sets


def _images_of(name: str) -> list[Path]:
    return predict.find_images([SHARED / name / "images"])


@pytest.mark.parametrize("model", registry.names())
def test_keras_and_onnx_runtime_give_every_image_the_same_answer(
    model: str, images: dict[str, np.ndarray]
) -> None:
    keras_model = runtime.load_classifier(model, runtime="keras")
    onnx_model = runtime.load_classifier(model, runtime="onnx")
    thresholds = trust.thresholds_of(keras_model.card)
    assert min(keras_model.card["trust"]["margin"].values()) >= trust.RUNTIME_TOLERANCE
    near = {}
    for name, batch in images.items():
        ours, theirs = keras_model.probabilities(batch), onnx_model.probabilities(batch)
        difference = np.abs(np.float64(ours) - theirs).max()
        assert difference <= trust.RUNTIME_TOLERANCE, f"{name}: {difference:.2g}"
        answers = [_answers(probabilities, thresholds) for probabilities in (ours, theirs)]
        close = _near_a_threshold(ours, thresholds)
        near[name] = int(close.sum())
        assert ((answers[0] == answers[1]) | close).all(), f"{name}: an answer differs"
    print(f"{model}: images within {trust.RUNTIME_TOLERANCE:g} of a threshold: {near}")
    assert not any(near[name] for name in CHOSEN_ON), near


def _answers(probabilities: np.ndarray, thresholds: trust.Thresholds) -> np.ndarray:
    """What a user sees of each image: its status and, unless it is not a digit, the digit."""
    status = trust.statuses(probabilities, thresholds)
    digit = trust.digit_probabilities(probabilities).argmax(axis=1).astype(str)
    return np.char.add(status, np.where(status == "not-a-digit", "", digit))


def _near_a_threshold(probabilities: np.ndarray, thresholds: trust.Thresholds) -> np.ndarray:
    """Images whose answer the last bits may decide: a score within the tolerance of a
    threshold, or a digit shown whose runner-up is as close."""
    tolerance = trust.RUNTIME_TOLERANCE
    digits = np.sort(trust.digit_probabilities(probabilities), axis=1)
    refusal = trust.not_a_digit_scores(probabilities)
    shown = refusal < thresholds.reject
    return (
        (np.abs(refusal - thresholds.reject) <= tolerance)
        | (np.abs(digits[:, -1] - thresholds.sure) <= tolerance)
        | (shown & (digits[:, -1] - digits[:, -2] <= 2 * tolerance))
    )


def test_keras_and_onnx_runtime_read_every_number_alike() -> None:
    """The reader's two runtimes choose the same proposal and read the same digits, with
    confidences within the tolerance, so a number's status differs only where its least sure
    digit is that close to the sure threshold."""
    path = registry.shipped_reader_path()
    onnx_reader = reader.open_reader(path)
    assert onnx_reader.source_sha256 == runtime.sha256_of(path)
    keras_run = reader.keras_runner(reader.load_reader(path))
    keras_reader = reader.Reader(keras_run, onnx_reader.card, path)
    sure = onnx_reader.card["trust"]["sure"]
    files = _images_of("numbers") + sorted((SHARED / "registers" / "images").iterdir())[::20]
    near = 0
    for file in files:
        with Image.open(file) as opened:
            image = opened.convert("RGB")
        ours, theirs = (numbers.read_number(image, each) for each in (keras_reader, onnx_reader))
        assert (ours is None) == (theirs is None), file.name
        if ours is None:
            continue
        assert ours.proposal == theirs.proposal, file.name
        assert ours.reading.text == theirs.reading.text, file.name
        gaps = [
            abs(a.confidence - b.confidence)
            for a, b in zip(ours.reading.digits, theirs.reading.digits, strict=True)
        ]
        assert max(gaps) <= trust.RUNTIME_TOLERANCE, f"{file.name}: {max(gaps):.2g}"
        least = min(d.confidence for d in ours.reading.digits)
        near += abs(least - sure) <= trust.RUNTIME_TOLERANCE
    print(f"reader: {len(files)} images, {near} within {trust.RUNTIME_TOLERANCE:g} of sure")
    assert near <= len(files) // 100
