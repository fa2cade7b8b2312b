"""Augmentation: every switch does something, keeps pixels in range, and is seeded."""

from __future__ import annotations

import numpy as np
import pytest
from drawings import draw

from handwritten.augment import (
    AUGMENTATIONS,
    RandomStrokeWidth,
    build_augmenter,
    parse_augmentations,
)
from handwritten.errors import HandwrittenError
from handwritten.preprocess import scale_pixels, to_mnist


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    seven = scale_pixels(to_mnist(draw()))
    return np.repeat(seven[None, :, :, None], 16, axis=0)


def test_parse_augmentations() -> None:
    assert parse_augmentations("all") == list(AUGMENTATIONS)
    assert parse_augmentations("none") == []
    assert parse_augmentations("rotate, stroke") == ["rotate", "stroke"]
    with pytest.raises(HandwrittenError, match="unknown flip, warp"):
        parse_augmentations("rotate,flip,warp")


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_each_augmentation_changes_images_and_keeps_their_range(name, batch) -> None:
    out = np.asarray(build_augmenter([name], seed=3)(batch, training=True))
    assert out.shape == batch.shape
    assert out.min() >= -1e-6
    assert out.max() <= 1 + 1e-6
    changed = [not np.allclose(a, batch[0], atol=1e-3) for a in out]
    assert sum(changed) >= 2


def test_inference_is_untouched(batch) -> None:
    out = np.asarray(build_augmenter(list(AUGMENTATIONS), seed=3)(batch, training=False))
    assert np.allclose(out, batch)


def test_the_same_seed_gives_the_same_augmentation(batch) -> None:
    first = np.asarray(build_augmenter(list(AUGMENTATIONS), seed=5)(batch, training=True))
    again = np.asarray(build_augmenter(list(AUGMENTATIONS), seed=5)(batch, training=True))
    other = np.asarray(build_augmenter(list(AUGMENTATIONS), seed=6)(batch, training=True))
    assert np.allclose(first, again)
    assert not np.allclose(first, other)


def test_stroke_width_goes_both_ways(batch) -> None:
    ink = np.asarray(RandomStrokeWidth(seed=1)(batch, training=True)).sum(axis=(1, 2, 3))
    original = batch[0].sum()
    assert (ink > original * 1.1).any()
    assert (ink < original * 0.9).any()
