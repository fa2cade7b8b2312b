"""The networks, and loading model files without running their code.

Every network starts with a `Rescaling` layer, so a model file takes the 28x28 image that
preprocessing makes (0-255, white ink on black) as it is: nothing outside the file has to know
how its pixels were scaled in training, not even a copy of the .onnx on another machine.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from handwritten.errors import ModelError

if TYPE_CHECKING:  # Keras loads TensorFlow (seconds): imported only where a model is built.
    import keras

INPUT_SHAPE = (28, 28)
NUM_CLASSES = 10
NOT_A_DIGIT = 10
"""A network with 11 outputs gives the probability of "not a digit" last, after the digits."""
OUTPUT_SIZES = (NUM_CLASSES, NUM_CLASSES + 1)
BATCH_SIZE = 1024
PIXEL_SCALE = 1 / 255
"""The first layer of every network maps 0-255 pixels to the 0-1 range it is trained on."""
MAX_MODEL_BYTES = 512 * 2**20
"""Uncompressed size a .keras archive may declare: digit models are a few MB, and Keras reads
members into memory, so a zip bomb is refused from its directory before anything is read."""
MAX_CONFIG_BYTES = 4 * 2**20
"""config.json is parsed whole; a real one is a few KB."""
MAX_DETAIL = 300

logger = logging.getLogger(__name__)


def model_input(images: np.ndarray) -> np.ndarray:
    """Preprocessed uint8 images as the float32 tensor a network takes (scaling is inside it)."""
    return np.asarray(images, dtype=np.float32)


def _pixels_in(shape: tuple[int, ...]):
    """The input and the scaling layer every network starts with."""
    import keras

    inputs = keras.Input(shape=shape)
    return inputs, keras.layers.Rescaling(PIXEL_SCALE, name="pixels")(inputs)


def build_seed() -> keras.Model:
    """The network of the original tutorial, unchanged: it is the baseline everything beats."""
    import keras

    inputs, x = _pixels_in(INPUT_SHAPE)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="seed")


def _conv_block(x, filters: int, kernel_size: int = 3):
    import keras

    x = keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def build_cnn(width: int = 24) -> keras.Model:
    """A compact convolutional network sized for training on two CPU cores.

    One 5x5 layer at full resolution, then two 3x3 blocks at 14x14 and at 7x7, batch
    normalisation throughout and global average pooling: about 160k parameters, most of
    the accuracy of networks ten times larger, at a cost a laptop can train in minutes.
    """
    import keras

    inputs, x = _pixels_in(INPUT_SHAPE)
    x = keras.layers.Reshape((*INPUT_SHAPE, 1))(x)
    x = _conv_block(x, width, kernel_size=5)
    x = keras.layers.MaxPooling2D()(x)
    x = _conv_block(x, 2 * width)
    x = _conv_block(x, 2 * width)
    x = keras.layers.MaxPooling2D()(x)
    x = _conv_block(x, 4 * width)
    x = _conv_block(x, 4 * width)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="cnn")


def build_lean() -> keras.Model:
    """The default network: the cnn's plan at a quarter of its cost, and an 11th output.

    The same 5x5 layer at full resolution, then depthwise-separable 3x3 blocks (a 3x3 filter
    per channel, then a 1x1 mix) at 14x14 and at 7x7: under 4 million multiply-adds an image
    against the cnn's 12.7 million. Its 11th output is "not a digit", trained on generated
    letters, symbols, doodles, scribbles and runs of several digits (`negatives.py`). The
    softmax is its own layer after the `logits`, so training can put a fitted temperature
    between them (`with_temperature`).

    Residual connections around the blocks of equal width, which cost no multiply-adds, were
    tried (seed 42, 7 Dec) and left out: the best guess was as accurate on the validation
    writers (MNIST 99.12% against 99.16%, pendigits 98.8% against 99.2%, UNIPEN and USPS the
    same), and at the thresholds chosen for it fewer of them were read.
    """
    import keras

    inputs, x = _pixels_in(INPUT_SHAPE)
    x = keras.layers.Reshape((*INPUT_SHAPE, 1))(x)
    x = _conv_block(x, 24, kernel_size=5)
    x = keras.layers.MaxPooling2D()(x)
    for filters in (64, 64):
        x = _separable_block(x, filters)
    x = keras.layers.MaxPooling2D()(x)
    for filters in (128, 128, 128):
        x = _separable_block(x, filters)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.1)(x)
    logits = keras.layers.Dense(NUM_CLASSES + 1, name="logits")(x)
    outputs = keras.layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="lean")


def _separable_block(x, filters: int):
    import keras

    x = keras.layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """The same network with its logits divided by `temperature` before the softmax.

    A plain Rescaling layer, so the calibrated model is still a file Keras loads in safe mode
    and ONNX exports as it is: every runtime gives calibrated probabilities, nothing outside
    the file has to know the temperature.
    """
    import keras

    logits = model.get_layer("logits").output
    scaled = keras.layers.Rescaling(1 / temperature, name="temperature")(logits)
    outputs = keras.layers.Softmax(name="probabilities")(scaled)
    # One input tensor, not a list of one: a list makes Keras warn on every call with an array.
    return keras.Model(model.inputs[0], outputs, name=model.name)


def logits_of(model: keras.Model) -> keras.Model | None:
    """The network up to its `logits` layer, untempered, or None if it has none (seed, cnn)."""
    import keras

    names = {layer.name for layer in model.layers}
    if "logits" not in names:
        return None
    return keras.Model(model.inputs[0], model.get_layer("logits").output)


SPLITS = {
    "validation": "5,000 MNIST training images held out, and every image of about a tenth of "
    "each other source's writers; watched during training. The recipe, augmentations and "
    "thresholds are chosen on it and on the development drawings.",
    "development": "people's drawings and photos (../shared); chosen on with validation.",
    "held_out": "whole sources never trained on (the recipe's held_out): populations never "
    "seen, scored after training; never chosen on.",
    "test": "MNIST's 10,000 test images, and USPS's test file for a model that learned from "
    "USPS, scored once after training; never chosen on.",
}
"""Which data chose what: every model card says it."""


def card_path(model_path: Path) -> Path:
    """The model card sits beside the model: `handwritten.keras` -> `handwritten.card.json`."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}.card.json")


def read_card(model_path: Path) -> dict[str, Any] | None:
    """The card beside a .keras file, or None when there is none or it is not a card."""
    try:
        card = json.loads(card_path(model_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def check_preprocessing(card: dict[str, Any] | None, path: Path) -> None:
    """Warn when a model was trained on images normalised otherwise than they are here.

    It still runs (the shapes fit), but its figures were measured on other 28x28 images.
    """
    from handwritten.preprocess import PREPROCESSING_VERSION

    recorded = ((card or {}).get("preprocessing") or {}).get("version")
    if recorded is not None and recorded != PREPROCESSING_VERSION:
        logger.warning(
            "handwritten: warning: %s was made with preprocessing version %s; this installation "
            "has version %s, so it may read drawings less well than its card says.",
            path,
            recorded,
            PREPROCESSING_VERSION,
        )


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds to read one image, from the convolutions and dense layers: the cost that
    bounds a network's speed on a CPU (batch norm, pooling and activations are small beside)."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.SeparableConv2D):
            _, height, width, channels = layer.output.shape
            depthwise = int(np.prod(layer.depthwise_kernel.shape))
            total += height * width * (depthwise + int(np.prod(layer.pointwise_kernel.shape)))
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels = layer.output.shape
            total += height * width * channels * int(np.prod(layer.kernel.shape[:-1]))
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return int(total)


def load_model(path: Path) -> keras.Model:
    """Load a .keras file with Keras safe mode, so a file from a stranger cannot run code here.

    A model that loads but does not map a 28x28 image to 10 classes, or that does not scale
    its own pixels, is refused too: it would only fail later, or silently read every image
    wrong.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not a model file; pass a .keras file.")
    if not path.is_file():
        raise ModelError(
            f"{path}: no such model file; pass a .keras file or a shipped model's name "
            "(`handwritten models` lists them)."
        )
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelError(
            f"{path}: not a Keras model file; expected a .keras file saved by Keras 3."
        )
    _check_archive_sizes(path)
    import keras

    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        raise ModelError(f"{path}: cannot be loaded safely ({_first_line(exc)}).") from None
    _check_shapes(model, path)
    _check_scales_pixels(model, path)
    return model


def _check_archive_sizes(path: Path) -> None:
    """Refuse an archive that would unpack to more than any digit model, before Keras reads it.

    The sizes come from the zip's directory; zipfile never returns more than a member declares.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{path}: not a readable .keras archive ({exc}).") from None
    total = sum(member.file_size for member in members)
    config = sum(m.file_size for m in members if m.filename == "config.json")
    if total > MAX_MODEL_BYTES or config > MAX_CONFIG_BYTES:
        raise ModelError(
            f"{path}: unpacks to {total:,} bytes (config.json {config:,}), more than a digit "
            f"model needs (at most {MAX_MODEL_BYTES:,}, config {MAX_CONFIG_BYTES:,}); "
            "it is not a model this program made."
        )


def _check_shapes(model: keras.Model, path: Path) -> None:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(
            f"{path}: has {len(model.inputs)} inputs and {len(model.outputs)} outputs; a digit "
            "model takes one 28x28 image and gives one set of class probabilities."
        )
    input_shape = tuple(model.inputs[0].shape[1:]) if model.inputs else None
    output_shape = tuple(model.outputs[0].shape[1:]) if model.outputs else None
    if input_shape not in (INPUT_SHAPE, (*INPUT_SHAPE, 1)):
        raise ModelError(
            f"{path}: takes input {input_shape}, not a 28x28 image; not a digit model."
        )
    if output_shape not in [(size,) for size in OUTPUT_SIZES]:
        raise ModelError(
            f"{path}: outputs {output_shape}, not 10 digit classes (and, optionally, "
            '"not a digit"); not a digit model.'
        )


def _check_scales_pixels(model: keras.Model, path: Path) -> None:
    """A network from before pixel scaling moved inside it would read 0-255 input as 255x ink."""
    import keras

    rescaling = [layer for layer in model.layers if isinstance(layer, keras.layers.Rescaling)]
    if not any(np.isclose(float(layer.scale), PIXEL_SCALE) for layer in rescaling):
        raise ModelError(
            f"{path}: does not scale its own pixels (no Rescaling(1/255) layer): it was made by "
            "an older handwritten; retrain it with `handwritten train`."
        )


def _first_line(exc: Exception) -> str:
    """Keras's reason, cut short: it can quote a whole hostile config on one line."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= MAX_DETAIL else f"{line[: MAX_DETAIL - 3]}..."


@dataclass
class KerasClassifier:
    """A Keras model behind the interface prediction, evaluation and the server share."""

    model: keras.Model
    path: Path | None = None
    card: dict[str, Any] | None = None

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities for uint8 28x28 images (the network scales them itself)."""
        import keras

        batches = [
            keras.ops.convert_to_numpy(self.model(model_input(images[i : i + BATCH_SIZE])))
            for i in range(0, len(images), BATCH_SIZE)
        ]
        if batches:
            return np.concatenate(batches)
        return np.zeros((0, self.model.outputs[0].shape[-1]), np.float32)
