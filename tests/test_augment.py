"""Augmentation: every switch does something, keeps pixels in range, and is seeded."""

from __future__ import annotations

import numpy as np
import pytest
from drawings import draw

from handwritten.augment import (
    AUGMENTATIONS,
    RandomElasticDistortion,
    RandomRegionalStyles,
    RandomStrokeWidth,
    _bilinear_sample,
    build_augmenter,
    parse_augmentations,
)
from handwritten.errors import HandwrittenError
from handwritten.preprocess import to_mnist


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    seven = to_mnist(draw()).astype(np.float32) / 255.0
    return np.repeat(seven[None, :, :, None], 16, axis=0)


@pytest.fixture(scope="module")
def sevens() -> np.ndarray:
    return one_hot([7] * 16)


def one_hot(digits: list[int]) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[digits]


def test_parse_augmentations() -> None:
    assert parse_augmentations("all") == list(AUGMENTATIONS)
    assert parse_augmentations("none") == []
    assert parse_augmentations("rotate, stroke") == ["rotate", "stroke"]
    with pytest.raises(HandwrittenError, match="unknown flip, warp"):
        parse_augmentations("rotate,flip,warp")


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_each_augmentation_changes_images_and_keeps_their_range(name, batch, sevens) -> None:
    out = np.asarray(build_augmenter([name], seed=3)(batch, sevens, training=True))
    assert out.shape == batch.shape
    assert out.min() >= -1e-6
    assert out.max() <= 1 + 1e-6
    changed = [not np.allclose(a, batch[0], atol=1e-3) for a in out]
    assert sum(changed) >= 2


def test_inference_is_untouched(batch, sevens) -> None:
    out = np.asarray(build_augmenter(list(AUGMENTATIONS), seed=3)(batch, sevens, training=False))
    assert np.allclose(out, batch)


def test_the_same_seed_gives_the_same_augmentation(batch, sevens) -> None:
    first = np.asarray(build_augmenter(list(AUGMENTATIONS), seed=5)(batch, sevens, training=True))
    again = np.asarray(build_augmenter(list(AUGMENTATIONS), seed=5)(batch, sevens, training=True))
    other = np.asarray(build_augmenter(list(AUGMENTATIONS), seed=6)(batch, sevens, training=True))
    assert np.allclose(first, again)
    assert not np.allclose(first, other)


def test_stroke_width_goes_both_ways(batch) -> None:
    ink = np.asarray(RandomStrokeWidth(seed=1)(batch, training=True)).sum(axis=(1, 2, 3))
    original = batch[0].sum()
    assert (ink > original * 1.1).any()
    assert (ink < original * 0.9).any()


def test_elastic_distortion_moves_strokes_by_about_a_pixel(batch) -> None:
    out = np.asarray(RandomElasticDistortion(seed=2)(batch, training=True))
    largest_change = np.abs(out - batch).max(axis=(1, 2, 3))
    assert np.median(largest_change) > 0.3
    ink = out.sum(axis=(1, 2, 3)) / batch[0].sum()
    assert (ink > 0.8).all()
    assert (ink < 1.2).all()


def test_elastic_distortion_of_zero_changes_nothing(batch) -> None:
    out = np.asarray(RandomElasticDistortion(magnitude=0.0, seed=2)(batch, training=True))
    assert np.allclose(out, batch, atol=1e-6)


def test_bilinear_sample_matches_map_coordinates() -> None:
    import keras

    rng = np.random.default_rng(0)
    images = rng.random((3, 7, 9), dtype=np.float32)
    rows = rng.uniform(-2, 9, (3, 7, 9)).astype(np.float32)
    cols = rng.uniform(-2, 11, (3, 7, 9)).astype(np.float32)
    index = np.broadcast_to(np.arange(3, dtype=np.float32)[:, None, None], rows.shape)
    expected = keras.ops.image.map_coordinates(
        images, np.stack([index, rows, cols]), order=1, fill_mode="constant"
    )
    assert np.allclose(_bilinear_sample(images, rows, cols), expected, atol=1e-6)


def test_regional_styles_draw_only_on_ones_and_sevens(batch) -> None:
    styles = RandomRegionalStyles(seed=4)
    digits = [1, 7, 2, 0] * 8
    out = np.asarray(styles(np.repeat(batch[:1], 32, axis=0), one_hot(digits), training=True))
    added = (out - batch[0]).sum(axis=(1, 2, 3))
    assert (added >= 0).all()
    other = np.isin(digits, [2, 0])
    assert np.allclose(added[other], 0.0)
    assert (added[~other] > 3.0).sum() >= 6
    assert (added[~other] < 1e-6).sum() >= 3


def test_regional_bar_crosses_the_middle_of_a_seven() -> None:
    stem = np.zeros((1, 28, 28, 1), np.float32)
    stem[0, 4:24, 13:15] = 1.0
    outs = [
        np.asarray(RandomRegionalStyles(seed=seed)(stem, one_hot([7]), training=True))[0, ..., 0]
        for seed in range(12)
    ]
    barred = [out for out in outs if out.sum() > stem.sum() + 3]
    assert barred
    for out in barred:
        rows = np.flatnonzero((out - stem[0, ..., 0]).max(axis=1) > 0.5)
        cols = np.flatnonzero((out - stem[0, ..., 0]).max(axis=0) > 0.5)
        assert 10 <= rows.mean() <= 18
        assert cols.min() < 12
        assert cols.max() > 15
