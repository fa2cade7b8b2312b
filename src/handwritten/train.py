"""Train a model on its recipe's sources with a fixed seed, save it atomically, and record
how in a model card."""

from __future__ import annotations

import contextlib
import json
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from handwritten import (
    __version__,
    augment,
    data,
    evaluate,
    files,
    mixture,
    models,
    negatives,
    registry,
    trust,
)
from handwritten.errors import HandwrittenError
from handwritten.models import card_path
from handwritten.preprocess import preprocessing_spec
from handwritten.registry import Recipe

DEFAULT_SEED = 42
NUM_CLASSES = models.NUM_CLASSES
VALIDATION_NEGATIVES = 1000
"""Generated non-digits beside the 5,000 validation digits: watched in training, and with
them the temperature is fitted."""


def make_optimizer(recipe: Recipe, total_steps: int) -> keras.optimizers.Optimizer:
    """The optimizer a recipe describes (see `registry.Recipe`)."""
    if recipe.schedule == "constant":
        rate: float | keras.optimizers.schedules.LearningRateSchedule = recipe.learning_rate
    else:
        warmup = max(1, round(total_steps * recipe.warmup_fraction))
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=recipe.learning_rate / 30,
            decay_steps=max(1, total_steps - warmup),
            warmup_target=recipe.learning_rate,
            warmup_steps=warmup,
        )
    if recipe.weight_decay:
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=recipe.weight_decay)
    return keras.optimizers.Adam(learning_rate=rate)


class DigitAccuracy(keras.metrics.Metric):
    """The share of digits read right, the best of the ten digit outputs against the label:
    what a model card reports. With generated non-digits among the validation images, Keras's
    plain accuracy also counts how many of them are refused, so it is no measure of reading
    digits; the race to 99% in `make bench` reads this one. The lean network is saved as a
    new, uncompiled model once its temperature is fitted, so the metric stays out of its
    file."""

    def __init__(self, name: str = "digit_accuracy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.right = self.add_variable(shape=(), initializer="zeros", name="right")
        self.digits = self.add_variable(shape=(), initializer="zeros", name="digits")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        ops = keras.ops
        truth, guess = y_true[:, :NUM_CLASSES], y_pred[:, :NUM_CLASSES]
        # A digit's target holds its whole weight in the first ten places (soft or not).
        is_digit = ops.cast(ops.sum(truth, axis=1) > 0.5, "float32")
        same = ops.cast(ops.argmax(truth, axis=1) == ops.argmax(guess, axis=1), "float32")
        self.right.assign_add(ops.sum(same * is_digit))
        self.digits.assign_add(ops.sum(is_digit))

    def result(self):
        return keras.ops.divide_no_nan(self.right, self.digits)


def digit_accuracy(classes: int) -> keras.metrics.Metric:
    """`DigitAccuracy` for a network with the "not a digit" output; for ten outputs it is
    Keras's own accuracy under that name, so the saved file, which keeps how it was compiled,
    still loads compiled in plain Keras, as the tutorial's `handwritten.keras` does."""
    if classes > NUM_CLASSES:
        return DigitAccuracy()
    return keras.metrics.CategoricalAccuracy(name="digit_accuracy")


def backup_dir(model_path: Path) -> Path:
    """Where an interrupted run keeps its last finished epoch, to resume from."""
    return model_path.with_name(f".{model_path.stem}.backup")


def train(
    architecture: str,
    output: Path,
    *,
    data_dir: str | Path | None = None,
    writers_dir: str | Path | None = None,
    sources: list[str] | None = None,
    epochs: int | None = None,
    seed: int = DEFAULT_SEED,
    limit: int | None = None,
    augmentations: list[str] | None = None,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    force: bool = False,
    verbose: int = 2,
) -> dict[str, Any]:
    """Train `architecture` on its recipe's sources, save it to `output`, and return its card.

    Everything random is seeded and TensorFlow runs deterministic kernels, so the same command
    gives the same weights. `sources` keeps only those of the recipe's sources (`--sources`);
    `limit` trains on the first N training images of each, for a quick try. `extra` is
    (images, labels) of the user's own digits, 5% of every epoch. Each epoch draws as many
    digits as MNIST alone gave, from the sources by weight (`mixture.draw_epochs`). Training
    watches every source's validation writers; the held-out sources and the test sets are
    scored once, after training, and never used to choose anything.
    """
    spec = _check_arguments(architecture, output, force)
    recipe = spec.recipe
    epochs = recipe.epochs if epochs is None else epochs
    chosen = list(recipe.augmentations) if augmentations is None else augmentations
    mix = mixture.load_mixture(
        mixture.choose_sources(recipe.sources, sources),
        recipe.held_out,
        not_a_digit=bool(recipe.negatives),
        data_dir=data_dir,
        writers_dir=writers_dir,
    )
    pools, weights, per_epoch_digits = _pools(mix, limit, extra)
    validation = mix.validation_pooled()
    if recipe.negatives:
        made = _negatives(round(recipe.negatives * per_epoch_digits), "training", seed, mix)
        pools["generated non-digits"] = made
        weights = {name: share / (1 + recipe.negatives) for name, share in weights.items()}
        weights["generated non-digits"] = recipe.negatives / (1 + recipe.negatives)
        validation = _with_negatives(*validation, VALIDATION_NEGATIVES, "validation", seed, None)
    per_epoch = round(per_epoch_digits * (1 + recipe.negatives))
    batch_size = min(recipe.batch_size, per_epoch)
    steps = per_epoch // batch_size
    draws = mixture.draw_epochs(
        {name: len(part) for name, part in pools.items()}, weights, steps * batch_size, epochs, seed
    )
    images = np.concatenate([part.images for part in pools.values()])
    labels = np.concatenate([part.labels for part in pools.values()])

    run = _run_identity(architecture, epochs, seed, chosen, [images, labels, draws])
    _claim_backup(backup_dir(output), run)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = spec.build()
    classes = int(model.outputs[0].shape[-1])
    model.compile(
        optimizer=make_optimizer(recipe, steps * epochs),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy", digit_accuracy(classes)],
    )
    commit = source_commit()
    stop = _StopWhenAsked()
    progress = _Progress(backup_dir(output))
    try:
        with _signals_to(stop.ask):
            model.fit(
                _training_data(images, labels, draws, batch_size, classes, chosen, seed)
                .map(_distilling(recipe, classes), num_parallel_calls=tf.data.AUTOTUNE)
                .prefetch(tf.data.AUTOTUNE),
                epochs=epochs,
                steps_per_epoch=steps,
                validation_data=(
                    models.model_input(validation[0]),
                    _one_hot(validation[1], classes),
                ),
                callbacks=[_Backup(backup_dir(output)), progress, stop],
                shuffle=False,
                verbose=verbose,
            )
    except KeyboardInterrupt:
        print(f"handwritten: {_RESUME.format(backup=backup_dir(output))}", file=sys.stderr)
        raise
    model, calibration = _calibrated(model, validation)
    classifier = models.KerasClassifier(model)
    split = mix.mnist_split
    scores = {
        "validation": evaluate.evaluate_model(classifier, split.x_val, split.y_val),
        "test": evaluate.evaluate_model(classifier, split.x_test, split.y_test),
    }
    calibration["ece"] = {
        "validation": trust.expected_calibration_error(
            classifier.probabilities(split.x_val), split.y_val
        ),
        "test": trust.expected_calibration_error(
            classifier.probabilities(split.x_test), split.y_test
        ),
    }
    if recipe.negatives:
        calibration["generated_non_digits_refused"] = _refused(classifier, validation)

    _save_model(model, output)
    shutil.rmtree(backup_dir(output), ignore_errors=True)
    card = _model_card(
        spec,
        epochs=epochs,
        seed=seed,
        augmentations=chosen,
        images={
            "train_images": sum(len(part.digits()) for part in mix.train.values()),
            "extra_images": 0 if extra is None else len(extra[0]),
            "generated_non_digits": len(pools.get("generated non-digits", ())),
            "epoch_images": steps * batch_size,
        },
        mix=mix,
        model=model,
        scores=scores,
        populations=mixture.score_populations(classifier.probabilities, mix, trust.Thresholds()),
        seconds=progress.seconds,
        commit=commit,
        calibration=calibration,
    )
    files.write_json(card_path(output), card)
    _save_history(progress.history, output)
    return card


def _pools(
    mix: mixture.Mixture, limit: int | None, extra: tuple[np.ndarray, np.ndarray] | None
) -> tuple[dict[str, mixture.Part], dict[str, float], int]:
    """What training draws from (each source's training images, the first `limit` of each
    with --limit, and the user's own digits), the share of each, and the digits an epoch
    draws: as many as MNIST alone gave, or `limit`."""
    pools = {
        name: mixture.Part(part.images[:limit], part.labels[:limit])
        for name, part in mix.train.items()
    }
    weights = dict(mix.weights)
    if extra is not None:
        weights = {name: share * (1 - EXTRA_SHARE) for name, share in weights.items()}
        pools["extra"] = mixture.Part(*extra)
        weights["extra"] = EXTRA_SHARE
    return pools, weights, min(limit or mixture.EPOCH_DIGITS, mixture.EPOCH_DIGITS)


EXTRA_SHARE = 0.05
"""The user's own digits (`--extra-data`) are this share of every epoch."""


def _negatives(count: int, purpose: str, seed: int, mix: mixture.Mixture) -> mixture.Part:
    """Generated non-digits for training; their runs of digits come from MNIST's training
    images, never from a validation digit."""
    made = negatives.make_negatives(
        count, negatives.kind_seed(purpose, seed), mix.mnist_split.x_train
    )
    return mixture.Part(made, np.full(len(made), models.NOT_A_DIGIT, np.int64))


_RESUME = "finished epochs are kept in {backup}; run the same command again to resume."


class _Progress(keras.callbacks.Callback):
    """The metrics of every finished epoch and the training time so far, kept in the backup
    folder beside the weights, so a run resumed after a kill still reports its whole history
    and its whole training time (the time of an epoch lost to a kill included), not only the
    last stretch."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.path = folder / "progress.json"
        self.history: dict[str, list[float]] = {}
        self.seconds = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        with contextlib.suppress(OSError, ValueError):
            kept = json.loads(self.path.read_text(encoding="utf-8"))
            self.history, self.seconds = kept["history"], float(kept["seconds"])
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Forget epochs the weights do not have (a torn backup falls back one epoch)."""
        self.history = {name: values[:epoch] for name, values in self.history.items()}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        self.seconds += time.perf_counter() - self.started
        self.started = time.perf_counter()
        files.write_json(self.path, {"history": self.history, "seconds": self.seconds})


class _Backup(keras.callbacks.BackupAndRestore):
    """Keras's backup of every finished epoch, made safe to kill at any moment.

    Two copies are kept, so a kill while one is written leaves the other to resume from. It
    outlives fit(): train() deletes it only once the model is saved, so a kill or a full disk
    during the save loses no training. A backup that cannot be restored is a clear error.
    """

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder), double_checkpoint=True, delete_checkpoint=False)

    def on_train_begin(self, logs: dict | None = None) -> None:
        try:
            super().on_train_begin(logs)
        except Exception as exc:
            raise HandwrittenError(
                f"{self.backup_dir}: the backup of an interrupted run cannot be restored "
                f"({_first_line(exc)}); delete that folder to start the training over."
            ) from None


class _StopWhenAsked(keras.callbacks.Callback):
    """Turn Ctrl-C or `kill` during training into a stop at the end of the current batch.

    Python raises KeyboardInterrupt wherever the interpreter is when a signal lands: inside a
    finaliser it is printed and lost. Without this, the tests saw a SIGINT go unnoticed (the
    run trained on to the end) and one abort the process amid TensorFlow (glibc heap
    corruption, exit -6). So the handler only notes the request and the next batch raises
    it from plain code, with every finished epoch backed up. A second signal stops at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.asked = False

    def ask(self, signum: int, frame: object) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._stop_if_asked()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._stop_if_asked()

    def _stop_if_asked(self) -> None:
        if self.asked:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_to(handler: Callable[[int, object], None]) -> Iterator[None]:
    """Route SIGINT and SIGTERM to `handler` for the block, then restore what was there.

    A signal already ignored (a run under nohup) stays ignored; off the main thread, where
    Python cannot set handlers, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        number: signal.signal(number, handler)
        for number in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(number) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for number, handler_before in previous.items():
            signal.signal(number, handler_before if handler_before is not None else signal.SIG_DFL)


def _run_identity(
    architecture: str,
    epochs: int,
    seed: int,
    augmentations: list[str],
    arrays: list[np.ndarray],
) -> dict[str, Any]:
    """What makes two commands the same training run, so a backup resumes only its own."""
    return {
        "architecture": architecture,
        "epochs": epochs,
        "seed": seed,
        "augmentations": augmentations,
        "data_sha256": mixture.data_digest(arrays),
    }


def _claim_backup(folder: Path, run: dict[str, Any]) -> None:
    """Resume only the command that was interrupted; refuse, not delete, another's backup.

    Weights of another architecture would crash the restore, and those of another seed, data
    or epoch count would quietly make a model no command describes. A folder holding only
    the record (stopped before its first epoch ended) has nothing to lose and is taken over.
    """
    record = folder / "run.json"
    if folder.is_dir() and any(path != record for path in folder.iterdir()):
        try:
            recorded = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        if recorded != run:
            raise HandwrittenError(
                f"{folder}: holds the backup of an interrupted run of a different command "
                "(another model, --epochs, --seed, --limit, --augment or data); run that "
                "command again to resume it, or delete the folder to start over."
            )
    files.write_json(record, run)


def _save_model(model: keras.Model, output: Path) -> None:
    """Save atomically; a failure keeps the backup, so the next run saves without retraining."""
    save_atomically(model, output, _RESUME.format(backup=backup_dir(output)))


def save_atomically(model: keras.Model, output: Path, advice: str) -> None:
    """Save a .keras file whole or not at all; a failure is one message ending in `advice`."""
    try:
        with files.atomic_path(output) as temporary:
            model.save(temporary)
    except OSError as exc:
        raise HandwrittenError(
            f"--output {output}: cannot save the model ({exc.strerror or exc}); {advice}"
        ) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_arguments(architecture: str, output: Path, force: bool) -> registry.ModelSpec:
    spec = registry.get(architecture)
    output = Path(output)
    if output.suffix != ".keras":
        raise HandwrittenError(f"--output {output}: must end in .keras (the Keras 3 format).")
    if output.exists() and not force:
        raise HandwrittenError(f"--output {output}: exists; pass --force to overwrite it.")
    return spec


def _one_hot(labels: np.ndarray, classes: int = NUM_CLASSES) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[labels]


def _with_negatives(
    images: np.ndarray,
    labels: np.ndarray,
    count: int,
    purpose: str,
    seed: int,
    digits: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Add `count` generated non-digits, labelled "not a digit"; training and validation
    draw theirs with different seeds, and only training's runs of digits come from MNIST
    training images (validation's never show a validation digit twice)."""
    made = negatives.make_negatives(count, negatives.kind_seed(purpose, seed), digits)
    return (
        np.concatenate([images, made]),
        np.concatenate([labels, np.full(len(made), models.NOT_A_DIGIT, labels.dtype)]),
    )


def _distilling(recipe: Recipe, classes: int) -> Callable:
    """Blend the teacher's probabilities into each augmented batch's digit targets (Hinton
    et al., 2015): the teacher has seen the same augmented image, so its soft answer says
    which digits this very image resembles. Non-digits keep their hard target."""
    if not recipe.teacher or not recipe.distillation:
        return lambda x, y: (x, y)
    teacher = models.load_model(registry.shipped_path(recipe.teacher))
    teacher.trainable = False
    weight = recipe.distillation

    def blend(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        soft = teacher(x, training=False)[:, :NUM_CLASSES]
        soft = tf.pad(soft, [[0, 0], [0, classes - NUM_CLASSES]])
        is_digit = tf.reduce_sum(y[:, :NUM_CLASSES], axis=1, keepdims=True)
        return x, y + is_digit * weight * (soft - y)

    return blend


def _calibrated(
    model: keras.Model, validation: tuple[np.ndarray, np.ndarray]
) -> tuple[keras.Model, dict[str, Any]]:
    """Fit the temperature on the validation images and put it inside the model; a network
    without a `logits` layer (seed, cnn) is kept as it is."""
    logits = models.logits_of(model)
    if logits is None:
        return model, {"method": None}
    images, labels = validation
    temperature = trust.fit_temperature(
        logits.predict(models.model_input(images), verbose=0), labels
    )
    return models.with_temperature(model, temperature), {
        "method": "temperature scaling (Guo et al., 2017), inside the model",
        "temperature": temperature,
        "fitted_on": f"the validation split: {len(labels):,} images, "
        f"{int((labels == models.NOT_A_DIGIT).sum()):,} of them non-digits (generated, and "
        "the letters and symbols of the validation writers)",
    }


def _refused(
    classifier: models.KerasClassifier, validation: tuple[np.ndarray, np.ndarray]
) -> float:
    """The share of the validation split's generated non-digits that the 11th output wins."""
    images, labels = validation
    made = images[labels == models.NOT_A_DIGIT]
    return float((classifier.probabilities(made).argmax(axis=1) == models.NOT_A_DIGIT).mean())


def _training_data(
    images: np.ndarray,
    labels: np.ndarray,
    draws: np.ndarray,
    batch_size: int,
    classes: int,
    augmentations: list[str],
    seed: int,
) -> tf.data.Dataset:
    """Every epoch's batches, in the order `mixture.draw_epochs` drew them: in the 0-255 range
    the networks take, one-hot, augmented on the fly. fit() runs with steps_per_epoch, so it
    reads on through this one dataset from epoch to epoch.

    Batches have a static size, so every augmentation is traced for the shape it runs on.
    """
    pixels = tf.constant(images)
    targets = tf.constant(_one_hot(labels, classes))
    dataset = (
        tf.data.Dataset.from_tensor_slices(draws)
        .batch(batch_size, drop_remainder=True)
        .map(
            lambda chosen: (
                tf.cast(tf.gather(pixels, chosen), tf.float32),
                tf.gather(targets, chosen),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    )
    return augment_batches(dataset, augmentations, seed).prefetch(tf.data.AUTOTUNE)


def augment_batches(
    dataset: tf.data.Dataset, augmentations: list[str], seed: int
) -> tf.data.Dataset:
    """Augment batches of (0-255 images, one-hot labels) on the fly; `tune` shares it, so a
    person's drawings are varied exactly as training varies MNIST.

    The augmentations work on ink from 0 to 1, so each batch is scaled down for them and back
    up for the network.
    """
    if not augmentations:
        return dataset
    augmenter = augment.build_augmenter(augmentations, seed)
    return dataset.map(
        lambda x, y: (255.0 * augmenter(x[..., None] / 255.0, y, training=True)[..., 0], y),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _save_history(history: dict[str, list[float]], output: Path) -> None:
    from handwritten import plots

    plots.save_training_history(history, output)


def _model_card(
    spec: registry.ModelSpec,
    *,
    epochs: int,
    seed: int,
    augmentations: list[str],
    images: dict[str, int],
    mix: mixture.Mixture,
    model: keras.Model,
    scores: dict[str, evaluate.Evaluation],
    populations: dict[str, Any],
    seconds: float,
    commit: str | None,
    calibration: dict[str, Any],
) -> dict[str, Any]:
    """Everything needed to use the model right and to make it again (see the README).

    `data` keeps MNIST's checksums and validation split, as before the mixture; `sources`
    lists every source with its licence, checksums and counts; `populations` scores each
    source's validation writers, the held-out sources and the test sets apart.
    """
    recipe = {
        **spec.recipe.to_json(),
        "epochs": epochs,
        "augmentations": augmentations,
        "sources": {name: weight for name, weight in mix.weights.items()},
    }
    return {
        "name": spec.name,
        "summary": spec.summary,
        "command": command_line(),
        "seed": seed,
        "recipe": {**recipe, "augmentation_strengths": augment.strengths(augmentations)},
        **network_facts(model, spec.outputs),
        "data": {
            "name": "MNIST" if list(mix.weights) == ["mnist"] else "MNIST and writer collections",
            "sha256": data.data_checksums(),
            **images,
            "validation": mix.mnist_split.describe(),
            "test_images": len(mix.mnist_split.y_test),
        },
        "sources": mix.entries,
        "splits": models.SPLITS,
        "validation": _headline(scores["validation"]),
        "test": _headline(scores["test"]),
        "populations": populations,
        "calibration": calibration,
        "training_seconds": round(seconds, 1),
        **provenance(commit),
    }


def command_line() -> str:
    """The command that made a model, as a card records it to make it again."""
    return shlex.join(["handwritten", *sys.argv[1:]])


def network_facts(model: keras.Model, outputs: str) -> dict[str, Any]:
    """What a card says about a network so it is used right: its input, its outputs, the
    preprocessing that makes its input, its size and cost (shared by `train` and `tune`)."""
    return {
        "input": {
            "shape": list(models.INPUT_SHAPE),
            "dtype": "float32",
            "range": "0-255: the 28x28 image preprocessing makes; the network scales it",
        },
        "outputs": outputs,
        "preprocessing": preprocessing_spec(),
        "parameters": model.count_params(),
        "multiply_adds": models.multiply_adds(model),
    }


def provenance(commit: str | None) -> dict[str, Any]:
    """When a model was made and with which versions of everything (shared with `tune`)."""
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "package": {"version": __version__, "commit": commit},
        "versions": {
            "python": platform.python_version(),
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
        },
    }


def _headline(result: evaluate.Evaluation) -> dict[str, float | int]:
    return {"accuracy": result.accuracy, "loss": result.loss, "images": result.n}


def source_commit() -> str | None:
    """The git commit this package runs from, `+dirty` with uncommitted changes; None if
    it is not a checkout (an installed wheel)."""
    checkout = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head
