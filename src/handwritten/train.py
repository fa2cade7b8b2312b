"""Train a model on MNIST with a fixed seed, save it atomically, and record how in a model card."""

from __future__ import annotations

import platform
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from handwritten import data, evaluate, files, models
from handwritten.errors import HandwrittenError
from handwritten.preprocess import scale_pixels

DEFAULT_SEED = 42


@dataclass(frozen=True)
class Recipe:
    """How one architecture is trained: the numbers a model card has to record."""

    epochs: int
    batch_size: int
    optimizer: str
    loss: str = "sparse_categorical_crossentropy"


RECIPES = {"seed": Recipe(epochs=3, batch_size=32, optimizer="adam")}


def card_path(model_path: Path) -> Path:
    """The model card sits beside the model: `handwritten.keras` -> `handwritten.card.json`."""
    return model_path.with_name(f"{model_path.stem}.card.json")


def train(
    architecture: str,
    output: Path,
    *,
    data_dir: str | Path | None = None,
    epochs: int | None = None,
    seed: int = DEFAULT_SEED,
    limit: int | None = None,
    force: bool = False,
    verbose: int = 2,
) -> dict[str, Any]:
    """Train `architecture` on MNIST, save it to `output`, and return its model card.

    Everything random is seeded and TensorFlow runs deterministic kernels, so the same command
    gives the same weights. `limit` trains on the first N images, for a quick try.
    """
    if architecture not in RECIPES:
        raise HandwrittenError(f"--model {architecture}: unknown; choose one of {sorted(RECIPES)}.")
    output = Path(output)
    if output.suffix != ".keras":
        raise HandwrittenError(f"--output {output}: must end in .keras (the Keras 3 format).")
    if output.exists() and not force:
        raise HandwrittenError(f"--output {output}: exists; pass --force to overwrite it.")
    recipe = RECIPES[architecture]
    epochs = recipe.epochs if epochs is None else epochs
    mnist = data.load_mnist(data_dir)
    x_train, y_train = mnist.x_train[:limit], mnist.y_train[:limit]

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = models.ARCHITECTURES[architecture]()
    model.compile(optimizer=recipe.optimizer, loss=recipe.loss, metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(
        scale_pixels(x_train),
        y_train,
        epochs=epochs,
        batch_size=recipe.batch_size,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    result = evaluate.evaluate_model(models.KerasClassifier(model), mnist.x_test, mnist.y_test)

    with files.atomic_path(output) as temporary:
        model.save(temporary)
    card = _model_card(architecture, recipe, epochs, seed, len(x_train), model, result, seconds)
    files.write_json(card_path(output), card)
    return card


def _model_card(
    architecture: str,
    recipe: Recipe,
    epochs: int,
    seed: int,
    train_size: int,
    model: keras.Model,
    result: evaluate.Evaluation,
    seconds: float,
) -> dict[str, Any]:
    return {
        "architecture": architecture,
        "command": shlex.join(["handwritten", *sys.argv[1:]]),
        "seed": seed,
        "epochs": epochs,
        "batch_size": recipe.batch_size,
        "optimizer": recipe.optimizer,
        "loss": recipe.loss,
        "parameters": model.count_params(),
        "data": {
            "name": "MNIST",
            "train_images": train_size,
            "test_images": result.n,
            "sha256": data.data_checksums(),
        },
        "metrics": {"test_accuracy": result.accuracy, "test_loss": result.loss},
        "training_seconds": round(seconds, 1),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
        },
    }
