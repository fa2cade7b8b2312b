"""Training-time augmentation that makes MNIST look like the digits people draw.

People's drawings, after `preprocess.to_mnist`, still differ from MNIST in slant, size and
position within the box, pen width (1 px paint-program lines, thick markers), wobble, blur
and contrast. Each difference has its own switch, so its effect can be measured on its own
(`handwritten train --model cnn --augment rotate,stroke`). Everything here is built from
Keras preprocessing layers and `keras.ops`, and runs on batches inside the tf.data pipeline,
so the saved model stays a plain network with no custom layers to trust when it is loaded.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from handwritten.errors import HandwrittenError


class RandomStrokeWidth(layers.Layer):
    """Make each image's strokes thinner or thicker by up to one pixel of erosion/dilation.

    A random amount in [-1, 1] per image blends the image towards its 3x3 grey erosion
    (negative) or dilation (positive): the pen widths of real drawings, in between too.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        dilated = ops.max_pool(images, pool_size=3, strides=1, padding="same")
        eroded = -ops.max_pool(-images, pool_size=3, strides=1, padding="same")
        amount = keras.random.uniform(
            (ops.shape(images)[0], 1, 1, 1), -1.0, 1.0, seed=self.seed_generator
        )
        target = ops.where(amount > 0, dilated, eroded)
        return images + ops.abs(amount) * (target - images)


class RandomElasticDistortion(layers.Layer):
    """Wobble each image's strokes the way a hand does, by a smooth random displacement field.

    Keras's RandomElasticTransform is made for photos: at 28x28 its smoothing kernel shrinks
    to one pixel and both axes draw the same noise, so it moves pixels by hundredths of a
    pixel, and it resamples image by image, which took half the augmentation time. Here
    random displacements on a coarse `grid` x `grid` lattice (standard deviation up to
    `magnitude` pixels, drawn per image) are resized smoothly to the image and applied to
    the whole batch at once.
    """

    def __init__(self, magnitude: float = 0.75, grid: int = 4, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.magnitude = magnitude
        self.grid = grid
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        batch, height, width = ops.shape(images)[0], ops.shape(images)[1], ops.shape(images)[2]
        strength = keras.random.uniform(
            (batch, 1, 1, 1), 0.0, self.magnitude, seed=self.seed_generator
        )
        coarse = strength * keras.random.normal(
            (batch, self.grid, self.grid, 2), seed=self.seed_generator
        )
        field = ops.image.resize(coarse, (height, width), interpolation="bilinear")
        rows = ops.arange(height, dtype="float32")[None, :, None] + field[..., 0]
        cols = ops.arange(width, dtype="float32")[None, None, :] + field[..., 1]
        return _bilinear_sample(images[..., 0], rows, cols)[..., None]


def _bilinear_sample(images, rows, cols):
    """images[b, rows, cols] at fractional positions, black outside the frame.

    The same as `ops.image.map_coordinates(order=1, fill_mode="constant")` with the batch as
    a coordinate, which the TensorFlow backend computes about four times slower.
    """
    batch, height, width = ops.shape(images)[0], ops.shape(images)[1], ops.shape(images)[2]
    pixels = ops.reshape(images, (-1,))
    top, left = ops.floor(rows), ops.floor(cols)
    down, right = rows - top, cols - left
    offset = ops.arange(batch, dtype="int32")[:, None, None] * (height * width)
    top, left = ops.cast(top, "int32"), ops.cast(left, "int32")
    result = ops.zeros_like(rows)
    for row_step, row_weight in ((0, 1.0 - down), (1, down)):
        for col_step, col_weight in ((0, 1.0 - right), (1, right)):
            row, col = top + row_step, left + col_step
            inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
            index = offset + ops.clip(row, 0, height - 1) * width + ops.clip(col, 0, width - 1)
            value = row_weight * col_weight * ops.take(pixels, index)
            result = result + ops.where(inside, value, 0.0)
    return result


class RandomRegionalStyles(layers.Layer):
    """Draw the strokes MNIST's American writers left out: a flag or a base on some 1s, a bar
    across some 7s.

    MNIST's 1 is a bare stroke and its 7 has no bar. Much of the world writes both the other
    way; in ../shared/user-digits about half of the 1s and 7s do, and a flagged 1 is then
    read as a 7. This is the one label-aware augmentation: the strokes are drawn on the
    MNIST digit, before the geometric ones, which then slant and warp them with the rest.
    """

    FLAG, BASE, BAR = 0.5, 0.3, 0.4
    """Chance that a 1 gets a flag, a 1 gets a base, a 7 gets a bar."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, labels, training=True):
        if not training:
            return images
        ink = images[..., 0]
        digit = ops.argmax(labels, axis=-1)
        draw = keras.random.uniform((ops.shape(ink)[0], 9), seed=self.seed_generator)
        pen = (0.8 + 0.5 * draw[:, 0])[:, None, None]
        top, bottom = _ink_rows(ink)

        def chance(label: int, p: float, column: int):
            return ops.cast((digit == label) & (draw[:, column] < p), "float32")[:, None, None]

        strokes = ops.maximum(
            chance(1, self.FLAG, 1) * _flag(ink, top, bottom, draw[:, 4], draw[:, 5], pen),
            chance(1, self.BASE, 2) * _base(ink, top, bottom, draw[:, 6], pen),
        )
        bar = _bar(ink, top, bottom, draw[:, 7], draw[:, 8], pen)
        strokes = ops.maximum(strokes, chance(7, self.BAR, 3) * bar)
        return ops.maximum(ink, strokes)[..., None]


def _flag(ink, top, bottom, length, angle, pen):
    """A stroke from the top of the digit down to the left, 25-50 degrees below horizontal."""
    length = (bottom - top + 1.0) * (0.25 + 0.2 * length)
    angle = np.radians(25.0) + np.radians(25.0) * angle
    start = (top, _ink_column(ink, top))
    end = (start[0] + length * ops.sin(angle), start[1] - length * ops.cos(angle))
    return _segment(ink.shape, start, end, pen)


def _base(ink, top, bottom, width, pen):
    """A horizontal stroke centred under the foot of the digit."""
    half = (bottom - top + 1.0) * (0.15 + 0.15 * width)
    centre = _ink_column(ink, bottom)
    return _segment(ink.shape, (bottom, centre - half), (bottom, centre + half), pen)


def _bar(ink, top, bottom, width, slope, pen):
    """A short, nearly level stroke across the digit's middle row."""
    middle = ops.round((top + bottom) / 2)
    half = (bottom - top + 1.0) * (0.15 + 0.15 * width)
    tilt = (bottom - top + 1.0) * 0.1 * (slope - 0.5)
    centre = _ink_column(ink, middle)
    return _segment(ink.shape, (middle + tilt, centre - half), (middle - tilt, centre + half), pen)


def _ink_rows(ink):
    """The first and last row holding ink, per image, as floats."""
    rows = ops.cast(ops.max(ink, axis=2) > 0.5, "int32")
    top = ops.argmax(rows, axis=1)
    bottom = ops.shape(ink)[1] - 1 - ops.argmax(ops.flip(rows, axis=1), axis=1)
    return ops.cast(top, "float32"), ops.cast(bottom, "float32")


def _ink_column(ink, row):
    """Where the ink is, across one row per image: its mean column."""
    index = ops.broadcast_to(
        ops.cast(row, "int32")[:, None, None], (ops.shape(ink)[0], 1, ink.shape[2])
    )
    weights = ops.take_along_axis(ink, index, axis=1)[:, 0, :]
    columns = ops.arange(ink.shape[2], dtype="float32")[None, :]
    return ops.sum(weights * columns, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1e-6)


def _segment(shape, start, end, pen):
    """An anti-aliased line from `start` to `end` ((row, column) per image), `pen` px half-wide."""
    rows = ops.arange(shape[1], dtype="float32")[None, :, None]
    cols = ops.arange(shape[2], dtype="float32")[None, None, :]
    row0, col0 = start[0][:, None, None], start[1][:, None, None]
    d_row, d_col = end[0][:, None, None] - row0, end[1][:, None, None] - col0
    along = ((rows - row0) * d_row + (cols - col0) * d_col) / ops.maximum(
        d_row * d_row + d_col * d_col, 1e-6
    )
    along = ops.clip(along, 0.0, 1.0)
    distance = ops.sqrt((rows - row0 - along * d_row) ** 2 + (cols - col0 - along * d_col) ** 2)
    return ops.clip(pen + 0.5 - distance, 0.0, 1.0)


class ClipToUnitRange(layers.Layer):
    """Keep pixels in [0, 1] after contrast changes, as real images are."""

    def call(self, images):
        return ops.clip(images, 0.0, 1.0)


FILL = {"fill_mode": "constant", "fill_value": 0.0}

STRENGTHS: dict[str, dict[str, Any]] = {
    "styles": {
        "flag": RandomRegionalStyles.FLAG,
        "base": RandomRegionalStyles.BASE,
        "bar": RandomRegionalStyles.BAR,
    },
    "rotate": {"factor": 12 / 360},
    "zoom": {"height_factor": (-0.12, 0.12)},
    "shear": {"x_factor": 0.15, "y_factor": 0.1},
    "translate": {"height_factor": 0.08, "width_factor": 0.08},
    "stroke": {"pixels": 1},
    "elastic": {"magnitude": 0.75, "grid": 4},
    "blur": {"factor": 0.3, "kernel_size": 3, "sigma": (0.3, 1.0)},
    "contrast": {"factor": 0.3},
}
"""Each augmentation's parameters, as a model card records them."""

_MAKERS: dict[str, Callable[..., layers.Layer]] = {
    "styles": lambda seed, **_: RandomRegionalStyles(seed=seed),
    "rotate": lambda seed, **k: layers.RandomRotation(**k, seed=seed, **FILL),
    "zoom": lambda seed, **k: layers.RandomZoom(**k, seed=seed, **FILL),
    "shear": lambda seed, **k: layers.RandomShear(**k, seed=seed, **FILL),
    "translate": lambda seed, **k: layers.RandomTranslation(**k, seed=seed, **FILL),
    "stroke": lambda seed, **_: RandomStrokeWidth(seed=seed),
    "elastic": lambda seed, **k: RandomElasticDistortion(**k, seed=seed),
    "blur": lambda seed, **k: layers.RandomGaussianBlur(**k, value_range=(0, 1), seed=seed),
    "contrast": lambda seed, **k: layers.RandomContrast(**k, value_range=(0, 1), seed=seed),
}

AUGMENTATIONS = tuple(STRENGTHS)
"""The augmentations in the order they are applied (styles first: it needs the plain digit)."""


def make_augmentation(name: str, seed: int) -> layers.Layer:
    """One augmentation layer, seeded from the run's seed and its own name.

    Seeding by name keeps each augmentation's random stream the same when others are added,
    removed or reordered, so an ablation changes one thing at a time.
    """
    return _MAKERS[name](seed=seed + zlib.crc32(name.encode()) % 2**16, **STRENGTHS[name])


def strengths(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The parameters of the chosen augmentations, for a model card."""
    return {name: STRENGTHS[name] for name in names}


def parse_augmentations(text: str) -> list[str]:
    """Read `--augment`: `all`, `none`, or a comma-separated list of AUGMENTATIONS names."""
    if text == "all":
        return list(AUGMENTATIONS)
    if text == "none":
        return []
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(AUGMENTATIONS))
    if unknown:
        choices = ", ".join(AUGMENTATIONS)
        raise HandwrittenError(
            f"--augment: unknown {', '.join(unknown)}; use all, none, or some of: {choices}."
        )
    return names


class Augmenter:
    """The chosen augmentations in a fixed order, each seeded from `seed`: (images, labels) in,
    images out, because one of them depends on the digit."""

    def __init__(self, names: Sequence[str], seed: int):
        made = {name: make_augmentation(name, seed) for name in AUGMENTATIONS if name in names}
        self.styles = made.pop("styles", None)
        chosen = list(made.values())
        if "contrast" in names:
            chosen.append(ClipToUnitRange())
        self.layers = keras.Sequential(chosen, name="augment") if chosen else None

    def __call__(self, images, labels, training: bool = True):
        if self.styles is not None:
            images = self.styles(images, labels, training=training)
        if self.layers is not None:
            images = self.layers(images, training=training)
        return images


def build_augmenter(names: Sequence[str], seed: int) -> Augmenter:
    """The augmentations named in `names` (see AUGMENTATIONS), ready to map over batches."""
    return Augmenter(names, seed)
