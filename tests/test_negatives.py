"""The generated non-digits the lean network learns "not a digit" from."""

from __future__ import annotations

import numpy as np
import pytest

from handwritten import negatives


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """Stand-ins for MNIST digits: white bars on black, made here."""
    images = np.zeros((20, 28, 28), np.uint8)
    for i, image in enumerate(images):
        image[4:24, 8 + i % 10 : 12 + i % 10] = 255
    return images


def test_negatives_are_preprocessed_images_of_ink(digits):
    made = negatives.make_negatives(48, seed=3, digits=digits)
    assert made.shape == (48, 28, 28)
    assert made.dtype == np.uint8
    assert (made.reshape(48, -1).max(axis=1) > 200).all(), "every image has ink"
    # Preprocessing centres the ink in a 20x20 box: the 4-pixel border is (nearly) empty.
    assert made[:, :3, :].mean() < 5
    assert made[:, :, :3].mean() < 5


def test_the_same_seed_makes_the_same_negatives_and_another_seed_others(digits):
    first = negatives.make_negatives(24, seed=5, digits=digits)
    again = negatives.make_negatives(24, seed=5, digits=digits)
    other = negatives.make_negatives(24, seed=6, digits=digits)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any(axis=(1, 2)).mean() > 0.9


def test_every_kind_is_made_and_runs_of_digits_only_with_digits(digits):
    every = sum(negatives.SHARES.values())
    assert len(negatives.make_negatives(every, 1, digits)) == every
    without = negatives.make_negatives(10, seed=1)
    assert without.shape == (10, 28, 28)


def test_the_glyphs_come_from_installed_fonts():
    fonts = negatives.fonts()
    assert fonts, "no TrueType font found, not even Matplotlib's"
    assert all(path.endswith((".ttf", ".otf")) for path in fonts)


def test_no_glyph_a_reader_would_take_for_a_digit():
    digit_like = set("0123456789OoIilZzSsbgqj|/")
    assert not digit_like & set(negatives.LETTERS + negatives.SYMBOLS)


def test_purpose_seeds_differ_and_are_stable():
    assert negatives.kind_seed("training", 42) != negatives.kind_seed("validation", 42)
    assert negatives.kind_seed("training", 42) == negatives.kind_seed("training", 42)
