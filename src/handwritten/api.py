"""The verbs: one public function each, called alike by the CLI, the server and the notebook.

    from handwritten import api
    classifier = api.load("cnn")
    for prediction in api.predict(["my-digit.png"], classifier):
        print(prediction.describe())

The CLI only parses arguments and prints what these return. TensorFlow is imported only by the
verbs that need it (train, export, the Keras runtime), so the others start in a fraction of a
second.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from handwritten import data, files, mixture, registry, trust
from handwritten.errors import DataError, HandwrittenError, ModelError
from handwritten.evaluate import Evaluation, character_error_rate, edit_distance, score
from handwritten.labels import digit_label, kind_label, read_labels, read_number_labels
from handwritten.models import SPLITS, card_path, read_card
from handwritten.predict import (
    Classifier,
    NumberReading,
    Prediction,
    find_images,
    predict_files,
    predict_image,
    read_number,
    read_numbers,
)
from handwritten.reader import Reader, Reading
from handwritten.runtime import CARD, SOURCE_SHA256, load_classifier, onnx_path, sha256_of

if TYPE_CHECKING:
    from handwritten import bulk, synth

__all__ = [
    "Classifier",
    "NumberReading",
    "Prediction",
    "Reader",
    "check_new_model",
    "choose_trust",
    "evaluate",
    "evaluate_drawings",
    "evaluate_nondigits",
    "evaluate_numbers",
    "export",
    "gallery",
    "list_sources",
    "load",
    "load_mixture",
    "models",
    "predict",
    "predict_image",
    "preview_sources",
    "read_many",
    "read_number",
    "read_numbers",
    "record_development",
    "record_populations",
    "score_populations",
    "synth_numbers",
    "train",
    "tune",
    "write_results",
]

Source = str | os.PathLike


def load(model: Source | None = None, runtime: str | None = None) -> Classifier:
    """The one loader: a registered model's name or a .keras or .onnx file, ready to classify.

    `runtime` is "auto" (ONNX when an up-to-date copy exists), "onnx" or "keras"; see
    `runtime.load_classifier`.
    """
    if model is not None and not str(model).strip():
        raise ModelError("the model is an empty name; give a model's name or a model file.")
    if model is not None and not Path(model).name:  # ".", "/": no file name to add .onnx to
        raise ModelError(f"{model}: is a folder, not a model file; pass a .keras file.")
    return load_classifier(model, runtime)


def load_reader(choice: Source | None = None) -> Reader | None:
    """The number reader to read whole numbers with: a reader's name or file; None (the
    default) is the shipped reader when one is shipped; "none" reads digit by digit."""
    from handwritten.reader import open_reader

    if choice is None:
        shipped = registry.shipped_reader_path()
        return open_reader(shipped) if shipped.is_file() else None
    if str(choice) == registry.NO_READER:
        return None
    if str(choice) in registry.READERS:
        return open_reader(registry.shipped_reader_path(str(choice)))
    return open_reader(choice)


def predict(paths: Iterable[Source], classifier: Classifier) -> list[Prediction]:
    """Read the digit in each image file, folders expanded; bad files get an error each."""
    return predict_files(paths, classifier)


def read_many(
    paths: Iterable[Source],
    classifier: Classifier,
    *,
    number: bool = False,
    reader: Reader | None = None,
) -> Iterator[Prediction | NumberReading]:
    """`predict` (or, with `number`, `read_numbers`, whole by `reader` when given) for many
    files: results one by one in input order, preprocessed on every core, with a progress
    bar when stderr is a terminal."""
    from handwritten import bulk

    return bulk.read_many(paths, classifier, number=number, reader=reader)


def write_results(
    paths: Iterable[Source],
    classifier: Classifier,
    output: Source,
    *,
    number: bool = False,
    ray: str | None = None,
    chunk: int = 1000,
    reader: Reader | None = None,
) -> bulk.Summary:
    """Read every image into `output` (.csv or .parquet), one row each, `chunk` rows at a
    time; a rerun resumes an interrupted job. `ray`: "" for a local Ray, or an address.
    With `number`, numbers are read whole by `reader` when given."""
    from handwritten import bulk

    return bulk.write_results(
        paths, classifier, output, number=number, ray=ray, chunk=chunk, reader=reader
    )


def check_output(output: Source) -> None:
    """Refuse an output `write_results` cannot write (its suffix), before a model loads."""
    from handwritten import bulk

    bulk.check_output(Path(output))


@dataclass(frozen=True)
class MnistScore:
    """A model's scores on MNIST's test images, with what a report needs to draw them."""

    result: Evaluation
    probabilities: np.ndarray
    images: np.ndarray
    labels: np.ndarray


def evaluate(classifier: Classifier, mnist: data.Mnist | Source | None = None) -> MnistScore:
    """Score a model on the MNIST test set: the figure reported apart, never chosen on.

    `mnist` is MNIST already loaded, or the folder to load it from (default: as `load_mnist`
    finds it).
    """
    if not isinstance(mnist, data.Mnist):
        mnist = data.load_mnist(mnist)
    probabilities = classifier.probabilities(mnist.x_test)
    return MnistScore(score(probabilities, mnist.y_test), probabilities, mnist.x_test, mnist.y_test)


def evaluate_drawings(folder: Source, classifier: Classifier) -> dict[str, Any]:
    """Accuracy on a labelled folder of drawings: `labels.csv` (file,label) or DIR/0 ... DIR/9.

    Images that cannot be read or hold no ink count as wrong: a user gets no answer for them.
    """
    paths, labels = _labelled_images(Path(folder))
    predictions = predict_files(paths, classifier)
    result = _scores(folder, paths, labels, [prediction.digit for prediction in predictions])
    return {**result, **_trust_scores(predictions, labels)}


def _trust_scores(predictions: list[Prediction], labels: list[int]) -> dict[str, Any]:
    """How the statuses treat labelled digits: how many answers are sure, how often those
    are right, how many are refused as "not a digit", and the calibration error."""
    answers = _answers(predictions)
    sure_right = sum(
        p.status == "digit" and p.digit == label
        for p, label in zip(predictions, labels, strict=True)
    )
    rows, read_labels = _output_rows(predictions, labels)
    return {
        "answers": answers,
        "sure": answers["digit"] / len(labels) if labels else 0.0,
        "sure_accuracy": sure_right / answers["digit"] if answers["digit"] else None,
        "ece": trust.expected_calibration_error(rows, read_labels) if len(rows) else None,
    }


def _answers(predictions: list[Prediction]) -> dict[str, int]:
    """How many answers have each status, every status named (0 when none)."""
    return {status: sum(p.status == status for p in predictions) for status in trust.STATUSES}


def _output_rows(predictions: list[Prediction], labels: list) -> tuple[np.ndarray, np.ndarray]:
    """The network's whole output for every image it read (digits, then "not a digit")."""
    pairs = [
        (p.probabilities + ([] if p.not_a_digit is None else [p.not_a_digit]), label)
        for p, label in zip(predictions, labels, strict=True)
        if p.probabilities is not None
    ]
    if not pairs:
        return np.zeros((0, trust.NUM_DIGITS)), np.zeros(0, np.int64)
    rows, read_labels = zip(*pairs, strict=True)
    return np.array(rows), np.array(read_labels)


def evaluate_nondigits(folder: Source, classifier: Classifier) -> dict[str, Any]:
    """How a model answers images that are not digits (letters, symbols, doodles): the share
    refused as "not a digit", overall and by `kind` when labels.csv (file,kind) has one."""
    folder = Path(folder)
    table = folder / "labels.csv"
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; give a folder of images that are not digits.")
    if table.is_file():
        pairs = read_labels(table, kind_label, column="kind")
    else:
        pairs = [(path, "image") for path in find_images([folder])]
    if not pairs:
        raise DataError(f"{folder}: no images; give a folder of images that are not digits.")
    predictions = predict_files([path for path, _ in pairs], classifier)
    by_kind: dict[str, list[Prediction]] = {}
    for (_, kind), prediction in zip(pairs, predictions, strict=True):
        by_kind.setdefault(kind, []).append(prediction)
    answers = _answers(predictions)
    return {
        "folder": str(folder),
        "images": len(pairs),
        "refused": answers["not-a-digit"] / len(pairs),
        "answers": answers,
        "refused_by_kind": {
            kind: _answers(kept)["not-a-digit"] / len(kept)
            for kind, kept in sorted(by_kind.items())
        },
        "still_read_as_digit": [
            {"path": str(p.path), "read": p.digit, "confidence": p.confidence}
            for p in predictions
            if p.status == "digit"
        ],
    }


def choose_trust(
    classifier: Classifier,
    drawings: Iterable[Source],
    mnist: data.Mnist | Source | None = None,
    mix: mixture.Mixture | None = None,
) -> dict[str, Any]:
    """Choose the status thresholds on people's digits alone: the validation split (MNIST's
    and the validation writers of every source the model learned from, pooled, but for the
    sources with wrong labels, `mixture.NOISY_LABELS`) and the labelled `drawings` folders,
    pooled (see `trust.choose_thresholds`); the card keeps the result. Pooled, because a set
    of 51 photos alone would allow not one refusal in 200. `mix` is the model's mixture
    already loaded (`load_mixture`), else it is loaded."""
    mix = mix if mix is not None else load_mixture(classifier, mnist)
    images, labels = mix.threshold_digits()
    people = [_labelled_outputs(Path(folder), classifier) for folder in drawings]
    sets = {"validation": (classifier.probabilities(images), labels)}
    if people:
        names = " + ".join(sorted(Path(folder).name for folder in drawings))
        sets[names] = tuple(np.concatenate(parts) for parts in zip(*people, strict=True))
    return trust.choose_thresholds(sets)


def load_mixture(
    classifier: Classifier, mnist: data.Mnist | Source | None = None
) -> mixture.Mixture:
    """The sources a model learned from and those it held out, as its card names them (MNIST
    alone for a card from before the mixture), split as in training."""
    sources, held_out = mixture.card_sources(classifier.card)
    return mixture.load_mixture(sources, held_out, not_a_digit=False, mnist=mnist)


def score_populations(classifier: Classifier, mix: mixture.Mixture) -> dict[str, Any]:
    """How the model answers each source's validation writers, the held-out populations and
    the test sets, with the thresholds its card records (see `mixture.score_populations`)."""
    thresholds = trust.thresholds_of(classifier.card)
    return mixture.score_populations(classifier.probabilities, mix, thresholds)


def record_populations(model: Source | None, populations: dict[str, Any]) -> Path:
    """Keep `score_populations`' figures in the model's card, under `populations` (and in
    the card its .onnx copy carries)."""
    path, card = _card_to_record_in(model)
    card["populations"] = populations
    return _write_card(path, card)


def _labelled_outputs(folder: Path, classifier: Classifier) -> tuple[np.ndarray, np.ndarray]:
    paths, labels = _labelled_images(folder)
    return _output_rows(predict_files(paths, classifier), labels)


def evaluate_numbers(
    folder: Source, classifier: Classifier | None, reader: Reader | None = None
) -> dict[str, Any]:
    """Labelled numbers read as the field measures a reader: `labels.csv` (file,label, the
    label the digit string, leading zeros kept). `accuracy` is the exact-match rate (a
    number counts only with every digit right, none missing or extra) and `cer` the
    character error rate (edit distances over label characters, summed over the set).
    Numbers are read whole by `reader` when given, else digit by digit by `classifier`."""
    table = Path(folder) / "labels.csv"
    if not table.is_file():
        raise DataError(f"{table}: missing; give a labels.csv with file,label (the digits).")
    pairs, others = read_number_labels(table)
    paths, labels = [path for path, _ in pairs], [label for _, label in pairs]
    read = [reading.number for reading in read_numbers(paths, classifier, reader)]
    result = _scores(folder, paths, labels, read)
    for miss in result["wrong"]:
        miss["edits"] = edit_distance(miss["read"] or "", miss["label"])
    left_out = {"rows": len(others), "examples": [f"{f}: {label!r}" for f, label in others[:3]]}
    return {**result, "cer": character_error_rate(read, labels), "left_out": left_out}


def _scores(folder: Source, paths: list[Path], labels: list, read: list) -> dict[str, Any]:
    """What `evaluate --drawings` and `--numbers` report: counts and every misreading."""
    wrong = [
        {"path": str(path), "label": label, "read": answer}
        for path, label, answer in zip(paths, labels, read, strict=True)
        if answer != label
    ]
    correct = len(labels) - len(wrong)
    return {
        "folder": str(folder),
        "images": len(labels),
        "correct": correct,
        "accuracy": correct / len(labels) if labels else 0.0,
        "wrong": wrong,
    }


def _labelled_images(folder: Path) -> tuple[list[Path], list[int]]:
    table = folder / "labels.csv"
    if table.is_file():
        pairs = read_labels(table, digit_label)
    else:
        pairs = [
            (path, digit)
            for digit in range(10)
            if (folder / str(digit)).is_dir()
            for path in sorted((folder / str(digit)).iterdir())
            if path.is_file()
        ]
    if not pairs:
        raise DataError(
            f"{folder}: no labelled images; give a folder with labels.csv (file,label) "
            "or with subfolders 0 ... 9."
        )
    paths, labels = zip(*pairs, strict=True)
    return list(paths), list(labels)


RECORDED = (
    "images", "correct", "accuracy", "cer", "answers", "sure", "sure_accuracy", "ece", "refused"
)  # fmt: skip
"""What a development set's result keeps in the card (a number result has the first four;
a set of non-digits has images, answers and refused)."""


def record_development(
    model: Source | None, results: list[dict[str, Any]], thresholds: dict[str, Any] | None = None
) -> Path:
    """Keep scores on labelled drawings in the model's card, under `development`, by folder
    name: the figures `handwritten models` shows; and the status `thresholds` chosen on them,
    under `trust`. The .onnx exported from the model gets the same card, so every runtime
    answers with the same thresholds."""
    path, card = _card_to_record_in(model)
    card.setdefault("splits", SPLITS)
    development = card.setdefault("development", {})
    for result in results:
        development[Path(result["folder"]).name] = {
            key: result[key] for key in RECORDED if key in result
        }
    if thresholds is not None:
        card["trust"] = thresholds
    return _write_card(path, card)


def _card_to_record_in(model: Source | None) -> tuple[Path, dict[str, Any]]:
    path = registry.resolve_model(model)
    if path.suffix == ".onnx":
        raise ModelError(
            f"{path}: --record keeps the figures in a .keras model's card and in its ONNX copy "
            "together; give the .keras file."
        )
    card = read_card(path)
    if card is None:
        raise DataError(f"{card_path(path)}: no model card to record in; train the model first.")
    return path, card


def _write_card(path: Path, card: dict[str, Any]) -> Path:
    """The model's card, and the same card in the .onnx exported from it, so every runtime
    answers with the same thresholds and `handwritten models` shows the same figures."""
    copy = _onnx_with_card(path, card)
    files.write_json(card_path(path), card)
    if copy is not None:
        with files.atomic_path(onnx_path(path)) as temporary:
            temporary.write_bytes(copy)
    return card_path(path)


def _onnx_with_card(path: Path, card: dict[str, Any]) -> bytes | None:
    """The bytes of the .onnx exported from `path`, with `card` in place of the card it
    carries; None when there is no such copy to keep in step (none, or a stale one, which
    `load` does not use). Made before anything is written, so a refusal changes nothing."""
    copy = onnx_path(path)
    if not copy.is_file():
        return None
    try:
        import onnx
    except ImportError:
        raise ModelError(
            f"{copy}: would keep the old card, and so answer with other thresholds than "
            f"{path.name}; install `pip install 'handwritten[export]'` to record, or remove "
            "the .onnx and run `handwritten export` after recording."
        ) from None
    graph = onnx.load(str(copy))
    metadata = {prop.key: prop for prop in graph.metadata_props}
    if SOURCE_SHA256 not in metadata or metadata[SOURCE_SHA256].value != sha256_of(path):
        return None
    if CARD in metadata:
        metadata[CARD].value = json.dumps(card)
    else:
        graph.metadata_props.add(key=CARD, value=json.dumps(card))
    return graph.SerializeToString()


def check_new_model(output: Source, force: bool = False) -> None:
    """Refuse to overwrite a model without `force`: said before TensorFlow loads, so the
    refusal comes at once and without TensorFlow's start-up lines."""
    if Path(output).exists() and not force:
        raise HandwrittenError(f"--output {output}: exists; pass --force to overwrite it.")


def train(model: str, output: Source, **options: Any) -> dict[str, Any]:
    """Train a registered model on its recipe's sources (`sources=` keeps only some of them);
    returns the model card (see `train.train` for the options)."""
    from handwritten.runtime import import_keras_quietly

    check_new_model(output, force=options.get("force", False))
    import_keras_quietly()
    from handwritten.train import train as train_model

    return train_model(model, Path(output), **options)


def tune(folder: Source, output: Source, **options: Any) -> dict[str, Any]:
    """Fine-tune a model (`source=`: a registered name or a .keras file; default the default
    model) on one person's drawings, `folder/0/*.png` ... `folder/9/*.png`, in under a minute;
    returns the new model's card (see `tune.tune` for the options)."""
    from handwritten.runtime import import_keras_quietly

    import_keras_quietly()
    from handwritten.tune import tune as tune_model

    return tune_model(folder, output, **options)


def export(model: Source | None = None) -> Path:
    """Write the ONNX copy of a model or number reader (by name or .keras file) beside its
    .keras file, carrying its card."""
    from handwritten.runtime import export_onnx

    reader = _reader_file(model)
    return export_reader(reader) if reader is not None else export_onnx(model)


def _reader_file(model: Source | None) -> Path | None:
    """The .keras file of a number reader named or given, None for anything else."""
    from handwritten.models import read_card

    if model is None:
        return None
    if str(model) in registry.READERS:
        return registry.shipped_reader_path(str(model))
    path = Path(model)
    card = read_card(path) if path.suffix == ".keras" else None
    return path if card is not None and card.get("kind") == "reader" else None


def export_reader(reader: Source) -> Path:
    """Write the ONNX copy of a number reader beside its .keras file, carrying its card."""
    from handwritten.reader import export_reader as export

    return export(reader)


def gallery(
    output: Source,
    split: str = "train",
    digit: int | None = None,
    count: int = 40,
    data_dir: Source | None = None,
) -> Path:
    """Save a picture of MNIST images with their labels."""
    from handwritten import plots

    mnist = data.load_mnist(data_dir)
    images, labels = (
        (mnist.x_train, mnist.y_train) if split == "train" else (mnist.x_test, mnist.y_test)
    )
    figure = plots.gallery_figure(images, labels, f"MNIST {split} set", digit=digit, count=count)
    plots.save_figure(figure, Path(output))
    return Path(output)


PREVIEW_PER_DIGIT = 5
PREVIEW_OTHERS = 20
PREVIEW_SEED = 0


def list_sources(
    writers_dir: Source | None = None, mnist_dir: Source | None = None
) -> list[dict[str, Any]]:
    """Each source with its writers, counts, licence and checksum state: what `handwritten
    sources` lists. Nothing is downloaded; a source not yet fetched shows as "missing"."""
    from handwritten import sources

    rows = []
    for name in sources.names():
        source = sources.get(name)
        row = sources.status(name, mnist_dir if name == "mnist" else writers_dir)
        rows.append(
            {
                **row,
                "title": source.title,
                "how_written": source.how_written,
                "writers_note": source.writers_note,
                "creators": source.creators,
                "licence_note": source.licence_note,
                "homepage": source.homepage,
                "kind": source.kind,
                "files": len(source.files),
            }
        )
    return rows


def preview_sources(
    folder: Source,
    names: Iterable[str] | None = None,
    writers_dir: Source | None = None,
    mnist_dir: Source | None = None,
) -> list[Path]:
    """Save `<folder>/<source>.png` for each source: a grid of its samples as the network
    sees them (five of each digit and some of its other characters, seeded), each titled
    with the character and the writer, so an upside-down or empty rendering shows at once."""
    from handwritten import plots, sources

    written = []
    for name in names or sources.names():
        samples = sources.load(name, mnist_dir if name == "mnist" else writers_dir)
        chosen = _preview_indices(samples.labels)
        titles = [f"{samples.chars[i]} {samples.writers[i]}".strip() for i in chosen]
        heading = f"{name}: {len(samples):,} samples as the network sees them"
        target = Path(folder) / f"{name}.png"
        plots.save_figure(plots.image_grid(samples.images[chosen], titles, heading), target)
        written.append(target)
    return written


def _preview_indices(labels: np.ndarray) -> np.ndarray:
    """PREVIEW_PER_DIGIT of each digit, then PREVIEW_OTHERS characters that are not digits."""
    rng = np.random.default_rng(PREVIEW_SEED)
    chosen = [
        rng.permutation(np.flatnonzero(labels == digit))[:PREVIEW_PER_DIGIT] for digit in range(10)
    ]
    chosen.append(rng.permutation(np.flatnonzero(labels < 0))[:PREVIEW_OTHERS])
    return np.concatenate(chosen).astype(np.int64)


def synth_numbers(
    count: int,
    folder: Source,
    seed: int = 0,
    names: Iterable[str] | None = None,
    writers_dir: Source | None = None,
    mnist_dir: Source | None = None,
) -> synth.WrittenSet:
    """Compose `count` images of handwritten numbers from the training split of the sources
    (`names`, default all) into a new `folder` with its labels.csv: what `evaluate --numbers`
    scores and a number reader learns from (see `synth`)."""
    from handwritten import synth

    bank = synth.load_bank(list(names) if names else None, writers_dir, mnist_dir)
    return synth.write_numbers(count, folder, bank, seed)


def digits_alone(
    classifier: Classifier,
    count: int,
    seed: int = 0,
    names: Iterable[str] | None = None,
    writers_dir: Source | None = None,
    mnist_dir: Source | None = None,
) -> dict[str, int]:
    """The ceiling the generator's images set for any number reader: of the `count` images
    `synth_numbers(count, ..., seed)` composes, how many have every digit read right by
    `classifier` when each is shown alone, clean, as the bank holds it. A digit a good
    classifier misreads alone (ambiguous, or labelled wrong by its source) leaves its whole
    number unreadable to a reader as well."""
    from handwritten import synth

    bank = synth.load_bank(list(names) if names else None, writers_dir, mnist_dir)
    written = [made.samples for made in synth.number_images(bank, count, seed)]
    used = np.unique(np.concatenate(written))
    read = classifier.probabilities(bank.images[used])[:, :10].argmax(axis=1)
    right = dict(zip(used.tolist(), (read == bank.labels[used]).tolist(), strict=True))
    return {
        "images": count,
        "every_digit_read": sum(all(right[i] for i in samples) for samples in written),
        "digits": sum(len(samples) for samples in written),
        "digits_read": sum(right[i] for samples in written for i in samples),
    }


def train_reader(
    output: Source,
    seed: int = 42,
    names: Iterable[str] | None = None,
    writers_dir: Source | None = None,
    mnist_dir: Source | None = None,
    steps: int | None = None,
    images: int | None = None,
    workers: int | None = None,
    force: bool = False,
    progress: Any = None,
) -> dict[str, Any]:
    """Train the sequence reader (`reader.py`) on number images composed from the training
    split of the sources (`names`, default all), save it to `output` with its card (command,
    seed, sources and their checksums, validation figures, time), and return the card."""
    import dataclasses

    from handwritten import reader, sources, synth

    check_new_model(output, force)
    chosen = list(names) if names else sources.names()
    bank = synth.load_bank(chosen, writers_dir, mnist_dir)
    recipe = registry.get_reader("crnn").recipe
    recipe = dataclasses.replace(
        recipe, steps=steps or recipe.steps, images=images or recipe.images
    )
    model, card = reader.train_reader(
        bank, None, recipe, seed, workers=workers or os.cpu_count() or 1, progress=progress
    )
    card = {
        # train.command_line's rule, without importing TensorFlow before the workers fork.
        "command": shlex.join(["handwritten", *sys.argv[1:]]),
        **card,
        "sources": [sources.credit(name) for name in chosen],
    }
    reader.save_reader(model, Path(output), card)
    return card


CHOOSER_IMAGES = 1500
"""Generated images the chooser between proposals is fitted on (about 9,000 proposals)."""
CHOOSER_SEED_OFFSET = 2
"""The chooser learns from the generator's images for seed + 2: neither the reader's
training images (seed) nor its validation images (seed + 1), on which it is scored."""
CHOOSER_CHECKS = 300
"""The reader's validation images (seed + 1) the chooser is scored on, beside the old rule."""


def fit_chooser(
    reader_file: Source,
    seed: int = 42,
    images: int = CHOOSER_IMAGES,
    checks: int = CHOOSER_CHECKS,
    names: Iterable[str] | None = None,
    writers_dir: Source | None = None,
    mnist_dir: Source | None = None,
) -> dict[str, Any]:
    """Fit how the reader in `reader_file` chooses between a number's proposals
    (`numbers.fit_chooser`) on generated images, score the choice on the reader's generated
    validation images, and keep both in its card (and its ONNX copy's); return them."""
    from handwritten import numbers, synth
    from handwritten.reader import VALIDATION_SEED_OFFSET, open_reader

    path = _reader_file(reader_file)
    if path is None:
        raise DataError(f"{reader_file}: not a number reader's .keras file with its card.")
    card = read_card(path)
    reader = open_reader(path)
    bank = synth.load_bank(list(names) if names else None, writers_dir, mnist_dir)
    fitted_on, checked_on = seed + CHOOSER_SEED_OFFSET, seed + VALIDATION_SEED_OFFSET

    def readings(seed: int, count: int) -> Iterator[tuple[list[Reading], str]]:
        for image, label in _generated(bank, seed, count):
            yield numbers.proposal_readings(image, reader), label

    chooser = numbers.fit_chooser(readings(fitted_on, images))
    chooser.update(
        command=shlex.join(["handwritten", *sys.argv[1:]]),
        fitted_on=f"{images} generated images, seed {fitted_on}",
        validation={
            "what": f"{checks} generated images, seed {checked_on}",
            **numbers.choice_figures(readings(checked_on, checks), chooser),
        },
    )
    card["chooser"] = chooser
    _write_card(path, card)
    return chooser


def _generated(bank: synth.DigitBank, seed: int, count: int) -> Iterator[tuple[Any, str]]:
    """The generator's images for `seed` as (PIL image, label), made as they are read."""
    from PIL import Image

    from handwritten import synth

    for made in synth.number_images(bank, count, seed):
        yield Image.fromarray(made.image), made.label


@dataclass(frozen=True)
class ModelInfo:
    """A registered model and the headline figures of its shipped card."""

    name: str
    default: bool
    summary: str
    path: Path
    card: dict[str, Any] | None

    def headline(self) -> dict[str, Any]:
        card = self.card or {}
        development = card.get("development") or {}
        return {
            "name": self.name,
            "default": self.default,
            "file": self.path.name,
            "shipped": self.path.is_file(),
            "parameters": card.get("parameters"),
            "multiply_adds": card.get("multiply_adds"),
            "validation_accuracy": (card.get("validation") or {}).get("accuracy"),
            "test_accuracy": (card.get("test") or {}).get("accuracy"),
            "drawings": {name: _development_figure(d) for name, d in development.items()},
            "ece_test": ((card.get("calibration") or {}).get("ece") or {}).get("test"),
            "sources": mixture.trained_on(card) if card else [],
            "onnx_images_per_second": (card.get("speed") or {}).get("onnx_images_per_second"),
            "summary": self.summary,
        }


def readers() -> list[dict[str, Any]]:
    """Every registered number reader, with the headline figures of its shipped card."""
    rows = []
    for spec in registry.READERS.values():
        path = registry.shipped_reader_path(spec.name)
        card = read_card(path) or {}
        rows.append(
            {
                "name": spec.name,
                "kind": "reader",
                "file": path.name,
                "shipped": path.is_file(),
                "validation": card.get("validation"),
                "sources": [source["name"] for source in card.get("sources", [])],
                "summary": spec.summary,
            }
        )
    return rows


def _development_figure(result: dict[str, Any]) -> str:
    """ "348/355" for a labelled set; "84% refused" for a set of non-digits."""
    if "correct" in result:
        return f"{result['correct']}/{result['images']}"
    return f"{result['refused']:.0%} refused"


def models() -> list[ModelInfo]:
    """Every registered model, with its shipped card when the file is there."""
    return [
        ModelInfo(
            name=spec.name,
            default=spec.name == registry.DEFAULT_MODEL,
            summary=spec.summary,
            path=registry.shipped_path(spec.name),
            card=read_card(registry.shipped_path(spec.name)),
        )
        for spec in registry.MODELS.values()
    ]
