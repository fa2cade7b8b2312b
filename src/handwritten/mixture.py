"""The training mixture: MNIST and the writer collections, split by writer, drawn by weight.

A recipe names its sources with weights and the sources it holds out (`registry.Recipe`).
Every source is cut into training and validation here, by writer where it has writer ids, so
no writer's digits are on both sides and validation measures digits of people the network has
never seen; MNIST, which has no writer ids, keeps its 5,000 stratified validation images. The
held-out sources are never trained on: they measure how a population never seen is read. The
published test sets (MNIST's, USPS's `zip.test.gz`) are scored once per model, never chosen on.

Importing this module loads neither TensorFlow nor any source's files.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handwritten import data, models
from handwritten.errors import DataError

VALIDATION_WRITERS = 0.1
"""The share of each source's writers (or, without writer ids, of its images) kept for
validation."""
SPLIT_SEED = data.VALIDATION_SEED
"""Its own seed, not the training run's, so every model is validated on the same writers."""
TEST_SOURCES = frozenset({"mnist", "usps"})
"""The sources whose published test set is scored once per model and never chosen on; the
other sources' published splits are only their authors' cut by writer, so ours replaces it."""
NOISY_LABELS = frozenset({"unipen-1a"})
"""Sources whose labels are wrong in places, left out of choosing the status thresholds (their
validation writers are still scored, and still fit the temperature). UNIPEN keeps its own
segmentation, errors included (see its module): of the 25 validation digits the first
mixture-trained lean misread most confidently (97-99.8%), 14 were UNIPEN's, and those looked
at were label errors (one stroke of a 4 labelled "4", a 0 labelled "8"). A sure threshold that kept
those right would leave 27% of people's drawings unsure; without them, 12%."""
EPOCH_DIGITS = data.SPLIT_SIZES["train"] - data.VALIDATION_SIZE
"""Digits drawn for one epoch, whatever the mixture: as many as MNIST alone gave, so training
takes as many steps, and about as long, as before the mixture."""

DIGIT_LIKE = frozenset("OoQDlIijJTtSsZzBbGgqyAUu/^")
"""Letters and symbols left out of the "not a digit" examples because people write them like
digits; the rest (the other letters, and + - ? x e) teach the 11th output. Decided from the
letters of chars74k-hnd and the symbols of numberpad-bridger drawn as the network sees them:
O, o, Q and D are closed loops like a 0 (Q's tail is a few pixels at 28x28, D often as round
as a 0); l, I, i, j, J and / are a bar, plain, slanted or hooked, like a 1; T, t and ^ are a
bar with a flag, like a 1 or a 7; S and s are a 5 without its corner; Z and z are a 2 with a
flat base (some z loop like a 3); B is an 8, or a 13 run together; b and G are 6s; g and q
are 9s; y is a 4 or a 9 with an open top; A is an open 4; U and u are a 0 or a 4 left open
at the top. Taught as "not a digit", they would teach the network to refuse real digits,
against the target of at most 1% of digits refused."""


@dataclass(frozen=True)
class Part:
    """Images and labels (0-9, or `models.NOT_A_DIGIT` for a letter or symbol) of one source
    on one side of a split; `writers` says how many writers they come from (None: unknown)."""

    images: np.ndarray
    labels: np.ndarray
    writers: int | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def digits(self) -> Part:
        """The digits alone: what is scored as read or refused."""
        keep = self.labels < models.NOT_A_DIGIT
        return Part(self.images[keep], self.labels[keep], self.writers)


@dataclass(frozen=True)
class Mixture:
    """Every source of a recipe, split: what training draws from, what it is validated on,
    the populations it never sees, and the test sets scored once.

    `weights` are the training sources' shares of an epoch's digits (summing to 1);
    `entries` is what a model card records of each source.
    """

    train: dict[str, Part]
    validation: dict[str, Part]
    held_out: dict[str, Part]
    test: dict[str, Part]
    weights: dict[str, float]
    entries: list[dict[str, Any]] = field(default_factory=list)
    mnist_split: data.Split | None = None

    def threshold_digits(self) -> tuple[np.ndarray, np.ndarray]:
        """The validation digits the status thresholds are chosen on: every source's but
        those with `NOISY_LABELS`."""
        parts = [
            part.digits() for name, part in self.validation.items() if name not in NOISY_LABELS
        ]
        return (
            np.concatenate([part.images for part in parts]),
            np.concatenate([part.labels for part in parts]),
        )

    def validation_pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """All sources' validation images and labels in one pair, MNIST's first."""
        parts = list(self.validation.values())
        return (
            np.concatenate([part.images for part in parts]),
            np.concatenate([part.labels for part in parts]),
        )


def choose_sources(
    recipe_sources: Sequence[tuple[str, float]], chosen: Iterable[str] | None
) -> tuple[tuple[str, float], ...]:
    """The recipe's sources, or only those `--sources` keeps, with their weights.

    `--sources` can only leave sources out: a name that is no source, or a source the recipe
    does not train on, is an error naming the ones it can keep.
    """
    recipe_sources = tuple(recipe_sources)
    if chosen is None:
        return recipe_sources
    known = {name for name, _ in recipe_sources}
    names = [name.strip() for name in chosen if name.strip()]
    unknown = [name for name in names if name not in _catalogue().names()]
    if unknown:
        raise DataError(
            f"--sources: no source named {', '.join(unknown)}; the recipe's sources are "
            f"{', '.join(name for name, _ in recipe_sources)} (`handwritten sources` lists all)."
        )
    elsewhere = [name for name in names if name not in known]
    if elsewhere:
        raise DataError(
            f"--sources: {', '.join(elsewhere)} is not among the recipe's training sources, and "
            "--sources can only leave sources out; choose from "
            f"{', '.join(name for name, _ in recipe_sources)}."
        )
    if not names:
        raise DataError(
            "--sources: names no source; give a comma-separated list of "
            f"{', '.join(name for name, _ in recipe_sources)}."
        )
    return tuple((name, weight) for name, weight in recipe_sources if name in names)


def card_sources(
    card: dict[str, Any] | None,
) -> tuple[tuple[tuple[str, float], ...], tuple[str, ...]]:
    """The sources (with weights) a model card says its model learned from, and those it held
    out; a card from before the mixture learned from MNIST alone."""
    recipe = (card or {}).get("recipe") or {}
    sources = recipe.get("sources") or {"mnist": 1.0}
    return tuple(sources.items()), tuple(recipe.get("held_out") or ())


def trained_on(card: dict[str, Any]) -> list[str]:
    """The names of the sources a card's model learned from."""
    return [name for name, _ in card_sources(card)[0]]


def parse_sources(text: str) -> list[str]:
    """`--sources mnist,usps` as a list of names."""
    return [name.strip() for name in text.split(",") if name.strip()]


def validation_mask(
    writers: np.ndarray, labels: np.ndarray, source: str, fraction: float = VALIDATION_WRITERS
) -> np.ndarray:
    """True for the images kept for validation: every image of a seeded `fraction` of the
    writers, so no writer is on both sides. A source with fewer than two known writers is cut
    by image instead (stratified by label), for want of any other way to validate on it."""
    writers = np.asarray(writers).astype(str)
    known = np.unique(writers[writers != ""])
    rng = np.random.default_rng([SPLIT_SEED, zlib.crc32(source.encode())])
    if len(known) >= 2:
        count = max(1, round(fraction * len(known)))
        chosen = rng.permutation(known)[:count]
        return np.isin(writers, chosen) & (writers != "")
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = round(fraction * len(members))
        mask[rng.permutation(members)[:count]] = True
    return mask


def teaching_labels(labels: np.ndarray, chars: np.ndarray, not_a_digit: bool) -> np.ndarray:
    """The label each image trains with: its digit; `models.NOT_A_DIGIT` for a letter or
    symbol not written like a digit, when the network has that output; -1 (left out) for the
    rest."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    others = labels < 0
    if not_a_digit:
        teaches = others & ~np.isin(np.asarray(chars).astype(str), sorted(DIGIT_LIKE))
        labels[teaches] = models.NOT_A_DIGIT
    return labels


def _keep(labels: np.ndarray) -> np.ndarray:
    return labels >= 0


def _writer_count(writers: np.ndarray) -> int | None:
    known = np.unique(np.asarray(writers).astype(str))
    known = known[known != ""]
    return len(known) or None


def split_source(samples: Any, not_a_digit: bool) -> tuple[Part, Part, Part | None, str]:
    """Cut one writer collection into training, validation and (USPS) its test file.

    Returns (train, validation, test or None, how the validation split was made).
    """
    labels = teaching_labels(samples.labels, samples.chars, not_a_digit)
    is_test = np.asarray(samples.split).astype(str) == "test"
    if samples.source not in TEST_SOURCES:
        is_test = np.zeros(len(labels), dtype=bool)
    pool = ~is_test
    writers = np.asarray(samples.writers).astype(str)
    to_validation = np.zeros(len(labels), dtype=bool)
    to_validation[pool] = validation_mask(writers[pool], labels[pool], samples.source)
    by_writer = len(np.unique(writers[pool & (writers != "")])) >= 2
    how = (
        f"by writer: {VALIDATION_WRITERS:.0%} of the writers, seeded"
        if by_writer
        else f"by image, stratified: {VALIDATION_WRITERS:.0%} (no writer ids, or one writer)"
    )
    train = pool & ~to_validation & _keep(labels)
    validation = to_validation & _keep(labels)
    test = is_test & (labels >= 0) & (labels < models.NOT_A_DIGIT)
    parts = [
        Part(samples.images[mask], labels[mask], _writer_count(writers[mask]))
        for mask in (train, validation, test)
    ]
    return parts[0], parts[1], (parts[2] if test.any() else None), how


def held_out_part(samples: Any) -> Part:
    """A held-out source's digits, all of them: a population never trained on."""
    digits = np.asarray(samples.labels) >= 0
    return Part(
        samples.images[digits],
        np.asarray(samples.labels, dtype=np.int64)[digits],
        _writer_count(np.asarray(samples.writers)[digits]),
    )


def load_mixture(
    sources: Sequence[tuple[str, float]],
    held_out: Sequence[str],
    *,
    not_a_digit: bool,
    data_dir: str | Path | None = None,
    writers_dir: str | Path | None = None,
    mnist: data.Mnist | str | Path | None = None,
) -> Mixture:
    """Load and split every source of a recipe (see the module's docstring). `mnist` is MNIST
    already loaded, or the folder to load it from (default: `data_dir`).

    MNIST is always loaded: its test set is every card's headline figure, so a mixture
    without it still scores it (as a population the network was not trained on).
    """
    if not isinstance(mnist, data.Mnist):
        mnist = data.load_mnist(mnist if mnist is not None else data_dir)
    split = data.split_mnist(mnist)
    weights = dict(sources)
    train: dict[str, Part] = {}
    validation = {"mnist": Part(split.x_val, split.y_val.astype(np.int64))}
    test = {"mnist": Part(split.x_test, split.y_test.astype(np.int64))}
    entries = []
    for name in weights:
        if name == "mnist":
            train[name] = Part(split.x_train, split.y_train.astype(np.int64))
            entries.append(_mnist_entry(split, weights[name]))
            continue
        catalogue = _catalogue()
        samples = catalogue.load(name, writers_dir)
        train[name], validation[name], source_test, how = split_source(samples, not_a_digit)
        if source_test is not None:
            test[name] = source_test
        entries.append(
            _entry(
                catalogue.get(name),
                "training",
                weight=weights[name],
                train=train[name],
                validation=validation[name],
                test=source_test,
                how=how,
            )
        )
    held = {}
    for name in held_out:
        held[name] = held_out_part(_catalogue().load(name, writers_dir))
        entries.append(_entry(_catalogue().get(name), "held out", held_out=held[name]))
    total = sum(weights.values())
    return Mixture(
        train=train,
        validation=validation,
        held_out=held,
        test=test,
        weights={name: weight / total for name, weight in weights.items()},
        entries=entries,
        mnist_split=split,
    )


def _catalogue() -> Any:
    """The writer collections (`handwritten.sources`), imported only when a mixture has one,
    so a model of MNIST alone trains without them."""
    from handwritten import sources

    return sources


def _counts(part: Part | None) -> dict[str, int]:
    if part is None:
        return {"digits": 0, "others": 0}
    digits = int((part.labels < models.NOT_A_DIGIT).sum())
    return {"digits": digits, "others": len(part) - digits}


def _mnist_entry(split: data.Split, weight: float) -> dict[str, Any]:
    return {
        **_catalogue().credit("mnist"),
        "role": "training",
        "weight": weight,
        "train": {"digits": len(split.y_train), "others": 0},
        "validation": {"digits": len(split.y_val), "others": 0},
        "validation_split": "5,000 stratified images, seeded (MNIST has no writer ids)",
        "test": {"digits": len(split.y_test), "others": 0},
    }


def _entry(
    source: Any,
    role: str,
    *,
    weight: float | None = None,
    train: Part | None = None,
    validation: Part | None = None,
    test: Part | None = None,
    held_out: Part | None = None,
    how: str | None = None,
) -> dict[str, Any]:
    """What a card records of one writer collection: where it came from, its licence, the
    checksums of its files (`sources.credit`), and how many of its images each side of the
    split holds."""
    entry = {**_catalogue().credit(source.name), "role": role}
    if role == "held out":
        return {**entry, "digits": _counts(held_out)["digits"], "writers": held_out.writers}
    entry.update(
        weight=weight,
        train=_counts(train) | {"writers": train.writers},
        validation=_counts(validation) | {"writers": validation.writers},
        validation_split=how,
    )
    if test is not None:
        entry["test"] = _counts(test)
    return entry


def draw_epochs(
    sizes: dict[str, int], weights: dict[str, float], per_epoch: int, epochs: int, seed: int
) -> np.ndarray:
    """Indices into the pools laid end to end (in the order of `sizes`), `per_epoch` for each
    epoch: each draw picks a pool by weight, then that pool's next image in a shuffled order
    that is reshuffled whenever the pool runs out, so a small pool repeats only once all its
    images have been seen. Seeded: the same arguments give the same epochs."""
    rng = np.random.default_rng([seed, 0x6D6978])
    names = list(sizes)
    shares = np.array([weights[name] for name in names], dtype=np.float64)
    shares /= shares.sum()
    starts = np.cumsum([0, *[sizes[name] for name in names]])[:-1]
    total = per_epoch * epochs
    pick = rng.choice(len(names), size=total, p=shares)
    indices = np.empty(total, dtype=np.int64)
    for number, name in enumerate(names):
        slots = np.flatnonzero(pick == number)
        rounds = -(-len(slots) // sizes[name]) if len(slots) else 0
        order = np.concatenate([rng.permutation(sizes[name]) for _ in range(rounds)] or [[]])
        indices[slots] = starts[number] + order[: len(slots)].astype(np.int64)
    return indices


def score_populations(
    probabilities: Callable[[np.ndarray], np.ndarray], mix: Mixture, thresholds: Any
) -> dict[str, Any]:
    """How a model answers each source's digits, with the statuses `thresholds` give: the
    validation writers of each training source, each held-out population and each test set,
    in three groups, so that the figures chosen on never mix with those that are not."""
    groups = {"validation": mix.validation, "held_out": mix.held_out, "test": mix.test}
    return {
        "thresholds": thresholds.to_json(),
        **{
            group: {
                name: answer_figures(probabilities, part, thresholds)
                for name, part in parts.items()
            }
            for group, parts in groups.items()
        },
    }


def answer_figures(
    probabilities: Callable[[np.ndarray], np.ndarray], part: Part, thresholds: Any
) -> dict[str, float | int]:
    """Of one set's digits: the share read right (the answer given, not refused, is the
    label), refused as "not a digit", and answered sure; the best guess's accuracy."""
    from handwritten import trust

    digits = part.digits()
    if not len(digits):
        return {"images": 0}
    output = probabilities(digits.images)
    status = trust.statuses(output, thresholds)
    right = trust.digit_probabilities(output).argmax(axis=1) == digits.labels
    return {
        "images": len(digits),
        "accuracy": float(right.mean()),
        "read": float((right & (status != "not-a-digit")).mean()),
        "refused": float((status == "not-a-digit").mean()),
        "sure": float((status == "digit").mean()),
    }


def data_digest(parts: Iterable[np.ndarray]) -> str:
    """One SHA-256 over arrays, so a resumed run can tell its own data from another's."""
    digest = hashlib.sha256()
    for array in parts:
        digest.update(np.ascontiguousarray(array))
    return digest.hexdigest()
