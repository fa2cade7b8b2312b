"""The networks, where the shipped ones live, and loading model files without running their code."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from handwritten.errors import ModelError
from handwritten.preprocess import scale_pixels

SHIPPED_MODELS = {"seed": "handwritten.keras"}
DEFAULT_MODEL = "seed"
INPUT_SHAPE = (28, 28)
NUM_CLASSES = 10
BATCH_SIZE = 1024


def build_seed() -> keras.Model:
    """The network of the original tutorial, unchanged: it is the baseline everything beats."""
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


ARCHITECTURES = {"seed": build_seed}


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
    if not path.is_file():
        names = ", ".join(SHIPPED_MODELS)
        raise ModelError(
            f"{path}: no such model file; pass a .keras file or a shipped model ({names})."
        )
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelError(
            f"{path}: not a Keras model file; expected a .keras file saved by Keras 3."
        )
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        raise ModelError(f"{path}: cannot be loaded safely ({_first_line(exc)}).") from None
    _check_shapes(model, path)
    return model


def _check_shapes(model: keras.Model, path: Path) -> None:
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
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass
class KerasClassifier:
    """A Keras model behind the interface prediction, evaluation and the server share."""

    model: keras.Model
    path: Path | None = None

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities for uint8 28x28 images, scaled exactly as in training."""
        batches = [
            keras.ops.convert_to_numpy(self.model(scale_pixels(images[i : i + BATCH_SIZE])))
            for i in range(0, len(images), BATCH_SIZE)
        ]
        return np.concatenate(batches) if batches else np.zeros((0, NUM_CLASSES), np.float32)


def load_classifier(name_or_file: str | os.PathLike | None = None) -> KerasClassifier:
    """Load a shipped model by name, or a model file, ready to classify images."""
    return KerasClassifier(load_model(name_or_file), resolve_model(name_or_file))
