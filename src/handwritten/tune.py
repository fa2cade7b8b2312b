"""Fine-tune a model on one person's drawings in under a minute, without forgetting MNIST.

`train --extra-data` retrains from scratch (many minutes) to learn one hand. Here the model
keeps its layers and head and takes a few small steps from where it is: each batch mixes the
person's drawings, varied by the training recipe's augmentations, with MNIST training images
(and, for a network with a "not a digit" output, a few generated non-digits), so what it
knew stays. Batch-norm statistics are frozen: a few mixed batches would otherwise pull the
running means a whole training set made towards a handful of drawings. The drawings are read
exactly as `train --extra-data` reads them (`data.load_digit_folders`, through the one
normaliser `predict.load_digit`), and the result is scored on the MNIST validation split
before and after, both figures in its card.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from handwritten import data, files, models, negatives, registry, runtime
from handwritten.errors import DataError, HandwrittenError
from handwritten.predict import IMAGE_SUFFIXES
from handwritten.train import (
    DEFAULT_SEED,
    augment_batches,
    command_line,
    network_facts,
    provenance,
    save_atomically,
    source_commit,
)

DEFAULT_STEPS = 100
"""10-15 s of training for the default network on two cores; each drawing is seen, in a
different augmented form, about 30 times when there are 50 of them."""
LEARNING_RATE = 1e-4
"""A tenth of what training starts from, decayed to zero: steps small enough to keep MNIST."""
DRAWINGS_PER_BATCH = 16
MNIST_PER_BATCH = 48
NEGATIVES_PER_BATCH = 4
NEGATIVES_POOL = 128
"""Non-digits are made once (a few ms each) and then augmented like the drawings."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drawings:
    """One person's labelled drawings, preprocessed, and the files that could not be used."""

    folder: Path
    images: np.ndarray
    labels: np.ndarray
    skipped: list[str]

    def sha256(self) -> str:
        """A checksum of exactly what the model learned from (images after preprocessing)."""
        digest = hashlib.sha256(np.ascontiguousarray(self.images))
        digest.update(np.ascontiguousarray(self.labels))
        return digest.hexdigest()

    def per_digit(self) -> dict[str, int]:
        return {
            str(d): int(n) for d, n in zip(*np.unique(self.labels, return_counts=True), strict=True)
        }


def read_drawings(folder: str | Path) -> Drawings:
    """Read a folder-per-digit tree, `DIR/0/*.png` ... `DIR/9/*.png`.

    A tree that is not one, or has no images, is an error; anything else that cannot be
    learned from (an unreadable or blank file, a folder or file not named for a digit) is
    named in `skipped`, as `train --extra-data` does, and left out.
    """
    folder = Path(folder)
    misplaced = _check_tree(folder)
    try:
        (images, labels), problems = data.load_digit_folders(folder)
    except DataError:
        raise DataError(
            f"{folder}: none of the images in the digit folders 0 to 9 can be used (each is "
            f"unreadable or blank); `handwritten predict {folder}/*/` says what is wrong with "
            "each."
        ) from None
    return Drawings(folder, images, labels, misplaced + problems)


def _check_tree(folder: Path) -> list[str]:
    """Refuse what is not a folder-per-digit tree; name what sits beside the digit folders.

    Hidden entries are left alone: `serve --collect` keeps its lock file there.
    """
    if not folder.is_dir():
        raise DataError(
            f"{folder}: not a folder; give a folder of your drawings with one subfolder per "
            f"digit, for example {folder}/7/my-seven.png."
        )
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    digits = [p for p in entries if p.is_dir() and p.name in {str(d) for d in range(10)}]
    if not digits:
        found = ", ".join(p.name for p in entries) or "nothing"
        raise DataError(
            f"{folder}: not a folder-per-digit tree (found {found}); put each drawing in the "
            f"subfolder named for its digit, for example {folder}/7/my-seven.png."
        )
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for d in digits for p in d.iterdir()):
        raise DataError(
            f"{folder}: the digit folders hold no images (.png, .jpg, ...); put your "
            f"drawings in them, for example {folder}/7/my-seven.png."
        )
    return [
        f"{p}: not in a digit folder; move it into {folder}/<digit>/ (0 to 9)"
        if p.is_file()
        else f"{p}: not a digit folder; name it 0 to 9"
        for p in entries
        if p not in digits
    ]


def tune(
    folder: str | Path,
    output: str | Path,
    *,
    source: str | Path | None = None,
    data_dir: str | Path | None = None,
    steps: int = DEFAULT_STEPS,
    seed: int = DEFAULT_SEED,
    augmentations: list[str] | None = None,
    force: bool = False,
    verbose: int = 0,
) -> dict[str, Any]:
    """Fine-tune `source` (a registered name or a .keras file; default the default model) on
    the drawings in `folder`, save it to `output` with its card, and return the card.

    Skipped files are logged as they are found, then recorded in the card. Everything random
    is seeded, so the same command gives the same weights.
    """
    started = time.perf_counter()
    output = _check_output(Path(output), force)
    drawings = read_drawings(folder)
    for problem in drawings.skipped:
        logger.warning("handwritten: skipped %s", problem)
    source_path = registry.resolve_model(source)
    model = models.load_model(source_path)
    split = data.split_mnist(data.load_mnist(data_dir))
    chosen = list(registry.get(registry.DEFAULT_MODEL).recipe.augmentations)
    chosen = chosen if augmentations is None else augmentations
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    before = validation_accuracy(model, split)
    fit_started = time.perf_counter()
    smoothing = _label_smoothing(models.read_card(source_path))
    _fit(model, _batches(model, drawings, split, steps, chosen, seed), steps, smoothing, verbose)
    fit_seconds = time.perf_counter() - fit_started
    after = validation_accuracy(model, split)
    _save(model, output)
    card = _card(
        model,
        source=(source, source_path),
        drawings=drawings,
        split=split,
        settings={"steps": steps, "augmentations": chosen, "label_smoothing": smoothing},
        accuracy=(before, after),
        seconds=(fit_seconds, time.perf_counter() - started),
        seed=seed,
    )
    files.write_json(models.card_path(output), card)
    return card


def _check_output(output: Path, force: bool) -> Path:
    if output.suffix != ".keras":
        raise HandwrittenError(f"--output {output}: must end in .keras (the Keras 3 format).")
    if output.exists() and not force:
        raise HandwrittenError(f"--output {output}: exists; pass --force to overwrite it.")
    return output


def validation_accuracy(model: keras.Model, split: data.Split) -> float:
    """Accuracy on the MNIST validation split, counting "not a digit" as a miss."""
    probabilities = models.KerasClassifier(model).probabilities(split.x_val)
    return float((probabilities.argmax(axis=1) == split.y_val).mean())


def _label_smoothing(card: dict[str, Any] | None) -> float:
    """The source's own label smoothing, so tuning does not shift how sure it is."""
    return float(((card or {}).get("recipe") or {}).get("label_smoothing") or 0.0)


def _has_not_a_digit(model: keras.Model) -> bool:
    return int(model.outputs[0].shape[-1]) > models.NUM_CLASSES


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[labels]


def _batches(
    model: keras.Model,
    drawings: Drawings,
    split: data.Split,
    steps: int,
    augmentations: list[str],
    seed: int,
) -> tf.data.Dataset:
    """`steps` batches, each the person's drawings (augmented), fresh MNIST training images
    (plain: they anchor what the model knew) and, with 11 outputs, a few non-digits."""
    classes = int(model.outputs[0].shape[-1])
    own = [(drawings.images, drawings.labels, DRAWINGS_PER_BATCH)]
    if _has_not_a_digit(model):
        made = negatives.make_negatives(
            NEGATIVES_POOL, negatives.kind_seed("tune", seed), split.x_train
        )
        own.append((made, np.full(len(made), models.NOT_A_DIGIT), NEGATIVES_PER_BATCH))
    parts = [
        _repeating(images, _one_hot(labels, classes), size, seed, augmentations)
        for images, labels, size in own
    ]
    picked = np.random.default_rng(seed).choice(len(split.x_train), steps * MNIST_PER_BATCH)
    anchors = tf.data.Dataset.from_tensor_slices(
        (models.model_input(split.x_train[picked]), _one_hot(split.y_train[picked], classes))
    ).batch(MNIST_PER_BATCH)
    return (
        tf.data.Dataset.zip((*parts, anchors))
        .map(lambda *batches: tuple(tf.concat(part, axis=0) for part in zip(*batches, strict=True)))
        .prefetch(tf.data.AUTOTUNE)
    )


def _repeating(
    images: np.ndarray, labels: np.ndarray, size: int, seed: int, augmentations: list[str]
) -> tf.data.Dataset:
    """Endless shuffled, augmented batches of `size` from a few images."""
    dataset = (
        tf.data.Dataset.from_tensor_slices((models.model_input(images), labels))
        .repeat()
        .shuffle(len(images), seed=seed)
        .batch(size, drop_remainder=True)
    )
    return augment_batches(dataset, augmentations, seed)


def _fit(
    model: keras.Model, batches: tf.data.Dataset, steps: int, smoothing: float, verbose: int
) -> None:
    """A few small steps with batch-norm statistics frozen (and unfrozen again for saving,
    so the file is the same network as its source)."""
    frozen = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in frozen:
        layer.trainable = False
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)
        ),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
        metrics=["accuracy"],
    )
    model.fit(batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=verbose)
    for layer in frozen:
        layer.trainable = True


def _save(model: keras.Model, output: Path) -> None:
    save_atomically(model, output, "choose a writable place with room for it.")


def _card(
    model: keras.Model,
    *,
    source: tuple[str | Path | None, Path],
    drawings: Drawings,
    split: data.Split,
    settings: dict[str, Any],
    accuracy: tuple[float, float],
    seconds: tuple[float, float],
    seed: int,
) -> dict[str, Any]:
    """A card like `train` writes: how to use the model, and how it was made from which."""
    chosen, path = source
    original = models.read_card(path) or {}
    name = original.get("name") or path.stem
    validation = {"images": len(split.y_val)}
    return {
        "name": f"{name}-tuned",
        "summary": f"{name} fine-tuned on {len(drawings.labels)} drawings from {drawings.folder}",
        "command": command_line(),
        "seed": seed,
        "source": {
            "model": str(chosen or registry.DEFAULT_MODEL),
            "path": str(path),
            "sha256": runtime.sha256_of(path),
            "name": name,
            "created": original.get("created"),
        },
        "tuning": {
            "folder": str(drawings.folder),
            "drawings": len(drawings.labels),
            "per_digit": drawings.per_digit(),
            "sha256": drawings.sha256(),
            "skipped": drawings.skipped,
            **settings,
            "learning_rate": LEARNING_RATE,
            "schedule": "cosine decay to zero",
            "batch": {
                "drawings": DRAWINGS_PER_BATCH,
                "mnist": MNIST_PER_BATCH,
                "negatives": NEGATIVES_PER_BATCH * _has_not_a_digit(model),
            },
            "frozen": "batch-norm statistics",
        },
        **network_facts(model, original.get("outputs") or "probabilities of the 10 digits"),
        "data": {
            "name": "MNIST",
            "sha256": data.data_checksums(),
            "mnist_images": settings["steps"] * MNIST_PER_BATCH,
            "validation": split.describe(),
        },
        "splits": {
            **models.SPLITS,
            "tuning": "the person's drawings given to tune; its figures are MNIST validation's",
        },
        "validation_before": {"accuracy": accuracy[0], **validation},
        "validation": {"accuracy": accuracy[1], **validation},
        # The source's calibration and status thresholds, kept: a hundred small steps move
        # them little, and a tuned model without them would fall back to generic defaults.
        **{key: original[key] for key in ("calibration", "trust") if key in original},
        "training_seconds": round(seconds[0], 1),
        "total_seconds": round(seconds[1], 1),
        **provenance(source_commit()),
    }
