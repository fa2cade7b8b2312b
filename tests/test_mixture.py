"""The training mixture on small made-up data: splits by writer, letters that teach "not a
digit", --sources, the draws of every epoch, and the figures a card keeps per population."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from handwritten import mixture, models, trust
from handwritten.errors import DataError


@dataclass(frozen=True)
class Samples:
    """The fields of `sources.Samples` that the mixture reads."""

    source: str
    images: np.ndarray
    labels: np.ndarray
    chars: np.ndarray
    writers: np.ndarray
    split: np.ndarray


def made_up(source: str, writers: int, per_writer: int, test_writers: int = 0) -> Samples:
    """Each writer writes the digits 0-9 in turn, then an "x" and an "O"; every image is
    filled with its index (unique up to 256 images) so that a test can tell which image went
    where."""
    chars = np.array(([str(d) for d in range(10)] + ["x", "O"]) * (writers * per_writer // 12 + 1))
    chars = chars[: writers * per_writer]
    labels = np.array([int(c) if c.isdigit() else -1 for c in chars], dtype=np.int64)
    ids = np.repeat([f"w{n}" for n in range(writers)], per_writer)
    split = np.where(
        np.arange(writers * per_writer) >= (writers - test_writers) * per_writer, "test", "train"
    )
    images = (np.arange(len(labels)) % 256).astype(np.uint8)[:, None, None] * np.ones(
        (1, 28, 28), np.uint8
    )
    return Samples(source, images, labels, chars, ids, split)


def test_no_writer_is_on_both_sides_and_a_tenth_of_them_validate() -> None:
    samples = made_up("pendigits", writers=40, per_writer=24)
    mask = mixture.validation_mask(samples.writers, samples.labels, "pendigits")
    validating, training = set(samples.writers[mask]), set(samples.writers[~mask])
    assert validating.isdisjoint(training)
    assert len(validating) == 4
    again = mixture.validation_mask(samples.writers, samples.labels, "pendigits")
    assert np.array_equal(mask, again)
    other = mixture.validation_mask(samples.writers, samples.labels, "unipen-1a")
    assert not np.array_equal(mask, other)  # each source draws its own writers


def test_a_source_of_one_writer_is_cut_by_image_in_every_digit() -> None:
    labels = np.repeat(np.arange(10), 20)
    mask = mixture.validation_mask(np.array(["me"] * 200), labels, "numberpad-bridger")
    assert mask.sum() == 20
    assert np.array_equal(np.bincount(labels[mask], minlength=10), np.full(10, 2))


def test_letters_teach_not_a_digit_except_those_written_like_digits() -> None:
    chars = np.array(["7", "x", "O", "l", "+", "S", "k", "/"])
    labels = np.array([7, -1, -1, -1, -1, -1, -1, -1])
    taught = mixture.teaching_labels(labels, chars, not_a_digit=True)
    assert taught.tolist() == [7, models.NOT_A_DIGIT, -1, -1, models.NOT_A_DIGIT, -1, 10, -1]
    assert mixture.teaching_labels(labels, chars, not_a_digit=False).tolist() == [7] + [-1] * 7


def test_split_source_keeps_usps_test_file_apart_and_every_writer_on_one_side() -> None:
    usps = made_up("usps", writers=20, per_writer=12, test_writers=4)
    train, validation, test, how = mixture.split_source(usps, not_a_digit=True)
    assert test is not None
    assert len(test) == 4 * 10  # the test file's digits, no letters
    assert set(test.images[:, 0, 0]).isdisjoint(train.images[:, 0, 0])
    assert set(test.images[:, 0, 0]).isdisjoint(validation.images[:, 0, 0])
    assert how.startswith("by writer")
    assert validation.writers == 2  # a tenth of the 16 writers outside the test file
    assert (train.labels == models.NOT_A_DIGIT).sum() == 14  # the "x"s; the "O"s left out
    assert (validation.labels == models.NOT_A_DIGIT).sum() == 2
    pendigits = made_up("pendigits", writers=30, per_writer=12, test_writers=5)
    train, validation, test, _ = mixture.split_source(pendigits, not_a_digit=False)
    assert test is None  # its published split is only its authors' cut by writer
    assert len(train) + len(validation) == 30 * 10
    assert validation.writers == 3


def test_sources_leaves_out_what_it_does_not_name_and_names_what_it_cannot_keep() -> None:
    recipe = (("mnist", 1.0), ("usps", 0.1))
    assert mixture.choose_sources(recipe, None) == recipe
    assert mixture.choose_sources(recipe, mixture.parse_sources(" usps, mnist ")) == recipe
    assert mixture.choose_sources(recipe, ["usps"]) == (("usps", 0.1),)
    with pytest.raises(DataError, match=r"--sources: pendigits is not among.*from mnist, usps"):
        mixture.choose_sources(recipe, ["mnist", "pendigits"])
    with pytest.raises(DataError, match=r"--sources: no source named nosuch; the recipe's"):
        mixture.choose_sources(recipe, ["nosuch", "usps"])
    with pytest.raises(DataError, match="--sources: names no source"):
        mixture.choose_sources(recipe, mixture.parse_sources(" , "))


def test_each_epoch_draws_the_sources_by_weight_and_a_small_pool_in_full() -> None:
    sizes = {"big": 10_000, "small": 50}
    draws = mixture.draw_epochs(sizes, {"big": 0.8, "small": 0.2}, 5_000, 2, seed=3)
    assert len(draws) == 10_000
    small = draws[draws >= 10_000] - 10_000
    assert 0.18 < len(small) / len(draws) < 0.22
    # Every small image is drawn once before any is drawn again.
    assert sorted(small[:50]) == list(range(50))
    big = draws[draws < 10_000]
    assert len(set(big)) == len(big)  # 8,000 draws from 10,000 images: none twice yet
    assert np.array_equal(
        draws, mixture.draw_epochs(sizes, {"big": 0.8, "small": 0.2}, 5_000, 2, 3)
    )
    assert not np.array_equal(
        draws, mixture.draw_epochs(sizes, {"big": 0.8, "small": 0.2}, 5_000, 2, 4)
    )


def test_a_single_pool_of_an_epochs_size_is_drawn_as_one_shuffle_per_epoch() -> None:
    draws = mixture.draw_epochs({"mnist": 1000}, {"mnist": 1.0}, 1000, 3, seed=42)
    for epoch in draws.reshape(3, 1000):
        assert sorted(epoch) == list(range(1000))
    assert not np.array_equal(draws[:1000], draws[1000:2000])


def test_population_figures_count_read_refused_and_sure_on_digits_only() -> None:
    outputs = np.zeros((5, 11))
    outputs[0, 3] = 1.0  # a 3, sure and right
    outputs[1, [3, 5]] = [0.45, 0.55]  # a 3 read as 5, unsure
    outputs[2, 10] = 1.0  # a 3 refused
    outputs[3, [3, 10]] = [0.6, 0.4]  # a 3 read right, unsure
    outputs[4, 10] = 1.0  # a letter, refused: not counted among digits
    part = mixture.Part(
        np.arange(5, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8),
        np.array([3, 3, 3, 3, models.NOT_A_DIGIT]),
    )

    def probabilities(images: np.ndarray) -> np.ndarray:
        return outputs[images[:, 0, 0]]

    figures = mixture.answer_figures(probabilities, part, trust.Thresholds(sure=0.8, reject=0.5))
    assert figures == {"images": 4, "accuracy": 0.5, "read": 0.5, "refused": 0.25, "sure": 0.25}


def test_a_card_from_before_the_mixture_learned_from_mnist_alone() -> None:
    assert mixture.card_sources({"recipe": {"epochs": 3}}) == ((("mnist", 1.0),), ())
    card = {"recipe": {"sources": {"mnist": 0.6, "usps": 0.4}, "held_out": ["optdigits-orig"]}}
    assert mixture.card_sources(card) == ((("mnist", 0.6), ("usps", 0.4)), ("optdigits-orig",))
    assert mixture.trained_on(card) == ["mnist", "usps"]


def test_thresholds_are_chosen_on_digits_of_sources_whose_labels_hold() -> None:
    def part(value: int, labels: list[int]) -> mixture.Part:
        return mixture.Part(np.full((len(labels), 28, 28), value, np.uint8), np.array(labels))

    mix = mixture.Mixture(
        train={},
        validation={
            "mnist": part(1, [3, 4]),
            "unipen-1a": part(2, [5]),
            "chars74k-hnd": part(3, [6, models.NOT_A_DIGIT]),
        },
        held_out={},
        test={},
        weights={},
    )
    images, labels = mix.threshold_digits()
    assert labels.tolist() == [3, 4, 6]
    assert images[:, 0, 0].tolist() == [1, 1, 3]
    assert len(mix.validation_pooled()[1]) == 5  # the temperature still sees them all
