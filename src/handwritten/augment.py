"""Training-time augmentation that makes MNIST look like the digits people draw.

People's drawings, after `preprocess.to_mnist`, still differ from MNIST in slant, size and
position within the box, pen width (1 px paint-program lines, thick markers), wobble, blur
and contrast. Each difference has its own switch, so its effect can be measured on its own
(`handwritten train --model cnn --augment rotate,stroke`). Everything here is built from
Keras preprocessing layers and runs on batches inside the tf.data pipeline, so the saved
model stays a plain network with no custom layers to trust when it is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
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


class ClipToUnitRange(layers.Layer):
    """Keep pixels in [0, 1] after contrast changes, as real images are."""

    def call(self, images):
        return ops.clip(images, 0.0, 1.0)


def _geometry(name: str) -> Callable[[int], layers.Layer]:
    fill = {"fill_mode": "constant", "fill_value": 0.0}
    return {
        "rotate": lambda seed: layers.RandomRotation(12 / 360, seed=seed, **fill),
        "zoom": lambda seed: layers.RandomZoom((-0.12, 0.12), seed=seed, **fill),
        "shear": lambda seed: layers.RandomShear(0.15, 0.1, seed=seed, **fill),
        "translate": lambda seed: layers.RandomTranslation(0.08, 0.08, seed=seed, **fill),
    }[name]


AUGMENTATIONS: dict[str, Callable[[int], layers.Layer]] = {
    "rotate": _geometry("rotate"),
    "zoom": _geometry("zoom"),
    "shear": _geometry("shear"),
    "translate": _geometry("translate"),
    "stroke": lambda seed: RandomStrokeWidth(seed=seed),
    "elastic": lambda seed: layers.RandomElasticTransform(
        factor=0.5, scale=0.08, fill_mode="constant", value_range=(0, 1), seed=seed
    ),
    "blur": lambda seed: layers.RandomGaussianBlur(
        factor=0.3, kernel_size=3, sigma=(0.3, 1.0), value_range=(0, 1), seed=seed
    ),
    "contrast": lambda seed: layers.RandomContrast(0.3, value_range=(0, 1), seed=seed),
}


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


def build_augmenter(names: Sequence[str], seed: int) -> keras.Sequential:
    """The chosen augmentations in a fixed order, each seeded from `seed`."""
    chosen = [
        AUGMENTATIONS[name](seed + index)
        for index, name in enumerate(AUGMENTATIONS)
        if name in names
    ]
    if "contrast" in names:
        chosen.append(ClipToUnitRange())
    return keras.Sequential(chosen, name="augment")
