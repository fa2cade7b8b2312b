"""The networks, where the shipped ones live, and loading model files without running their code."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from handwritten.errors import ModelError
from handwritten.preprocess import scale_pixels

if TYPE_CHECKING:  # Keras loads TensorFlow (seconds): imported only where a model is built.
    import keras

SHIPPED_MODELS = {"cnn": "handwritten-cnn.keras", "seed": "handwritten.keras"}
DEFAULT_MODEL = "cnn"
INPUT_SHAPE = (28, 28)
NUM_CLASSES = 10
BATCH_SIZE = 1024
MAX_MODEL_BYTES = 512 * 2**20
"""Uncompressed size a .keras archive may declare: digit models are a few MB, and Keras reads
members into memory, so a zip bomb is refused from its directory before anything is read."""
MAX_CONFIG_BYTES = 4 * 2**20
"""config.json is parsed whole; a real one is a few KB."""
MAX_DETAIL = 300


def build_seed() -> keras.Model:
    """The network of the original tutorial, unchanged: it is the baseline everything beats."""
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="seed",
    )


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

    inputs = keras.Input(shape=INPUT_SHAPE)
    x = keras.layers.Reshape((*INPUT_SHAPE, 1))(inputs)
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


ARCHITECTURES = {"seed": build_seed, "cnn": build_cnn}


def models_dir() -> Path:
    """Where the shipped models are: inside an installed wheel, or `models/` in a checkout."""
    override = os.environ.get("HANDWRITTEN_MODELS_DIR")
    if override:
        return Path(override)
    packaged = Path(__file__).parent / "models"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "models"


def resolve_model(name_or_file: str | os.PathLike | None = None) -> Path:
    """Map a shipped model's name (`seed`) or a path to the model file to load."""
    choice = str(name_or_file) if name_or_file is not None else DEFAULT_MODEL
    if choice in SHIPPED_MODELS:
        return models_dir() / SHIPPED_MODELS[choice]
    return Path(choice)


def load_model(name_or_file: str | os.PathLike | None = None) -> keras.Model:
    """Load a model with Keras safe mode, so a file from a stranger cannot run code here.

    A model that loads but does not map a 28x28 image to 10 classes is refused too: it would
    only fail later with an obscure shape error.
    """
    path = resolve_model(name_or_file)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not a model file; pass a .keras file.")
    if not path.is_file():
        names = ", ".join(SHIPPED_MODELS)
        raise ModelError(
            f"{path}: no such model file; pass a .keras file or a shipped model ({names})."
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
            "model takes one 28x28 image and gives one set of 10 class probabilities."
        )
    input_shape = tuple(model.inputs[0].shape[1:]) if model.inputs else None
    output_shape = tuple(model.outputs[0].shape[1:]) if model.outputs else None
    if input_shape not in (INPUT_SHAPE, (*INPUT_SHAPE, 1)):
        raise ModelError(
            f"{path}: takes input {input_shape}, not a 28x28 image; not a digit model."
        )
    if output_shape != (NUM_CLASSES,):
        raise ModelError(
            f"{path}: outputs {output_shape}, not 10 digit classes; not a digit model."
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

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities for uint8 28x28 images, scaled exactly as in training."""
        import keras

        batches = [
            keras.ops.convert_to_numpy(self.model(scale_pixels(images[i : i + BATCH_SIZE])))
            for i in range(0, len(images), BATCH_SIZE)
        ]
        return np.concatenate(batches) if batches else np.zeros((0, NUM_CLASSES), np.float32)


def load_classifier(name_or_file: str | os.PathLike | None = None) -> KerasClassifier:
    """Load a shipped model by name, or a model file, ready to classify images."""
    return KerasClassifier(load_model(name_or_file), resolve_model(name_or_file))
