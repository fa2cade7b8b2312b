"""The sequence reader: a small convolutional-recurrent network (CRNN, Shi, Bai and Yao 2015)
that reads the digits of a line or a table cell whole, trained with CTC (Graves et al.,
2006) on number images the project composes (`synth`).

Cut-and-classify (`page.py` finding each digit, the digit networks reading it) fails where
cutting fails: touching and overlapping digits, a piece of a digit cut off, a rule or a
margin taken for a stroke. A CRNN never cuts: convolutions turn the crop into a sequence of
columns, a bidirectional LSTM reads them with context from both sides, and CTC lets the
network learn where each digit is from the label string alone. This is the shape the field's
digit-string readers take (ORAND-CAR, CVL) and docTR's `crnn` recognition architectures.

Its input (`preprocess`): a crop of one line or cell, any size and colours, made a grey
"ink on black" image READER_HEIGHT pixels tall, the width following the aspect ratio up to
MAX_WIDTH (wider crops are squeezed), with ink white whichever way the crop was written
(dark on light or light on dark, decided by the border), its contrast stretched between the
paper's level and the ink's. A batch is padded on the right with black (no ink) to its
widest crop, rounded up to WIDTH_STEP; `output_lengths` gives each crop's own frames, so the
padding is never read as digits. The network's output is one row of logits per WIDTH_STEP
columns: the CTC blank (class 0), then the digits 0-9 (classes 1-10).

No trained reader ships yet: `train_reader` is the seeded recipe, on generated images only.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from handwritten import files
from handwritten.errors import ModelError

if TYPE_CHECKING:
    import keras

    from handwritten.synth import DigitBank

READER_HEIGHT = 32
MAX_WIDTH = 512
WIDTH_STEP = 4
"""The network halves the width twice: one output frame per 4 input columns."""
BLANK = 0
NUM_CLASSES = 11
"""The CTC blank, then the ten digits."""
READER_VERSION = 1
"""Raise it whenever `preprocess` changes what a crop becomes."""
CROP_MARGIN = (0.05, 0.6)
"""Training crops reach this share of the number's height beyond its box on each side, as
a finder's proposal would: tight or with some of the paper, rules and words around it."""


def preprocessing_spec() -> dict[str, Any]:
    """What a reader's card records of the input it expects."""
    return {
        "reader_version": READER_VERSION,
        "height": READER_HEIGHT,
        "max_width": MAX_WIDTH,
        "width_step": WIDTH_STEP,
        "input": "grey uint8, ink white (255) on black, contrast stretched; padded with 0",
        "output": "logits per 4 columns: CTC blank (0), then digits 0-9 (1-10)",
    }


def preprocess(crop: np.ndarray) -> np.ndarray:
    """One crop (H, W) grey or (H, W, 3) RGB uint8 -> (READER_HEIGHT, w) uint8, ink white."""
    import cv2  # here, not at the top: the registry (and so the CLI's start) imports this module

    grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    grey = grey.astype(np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) >= grey.mean():  # the paper is lighter than what it holds
        grey = 255.0 - grey
    paper, ink = np.percentile(grey, [50, 99.5])
    stretched = np.clip((grey - paper) / max(ink - paper, 16.0), 0, 1) * 255
    height, width = grey.shape
    scaled_width = int(np.clip(round(width * READER_HEIGHT / height), WIDTH_STEP, MAX_WIDTH))
    return cv2.resize(
        stretched.astype(np.uint8), (scaled_width, READER_HEIGHT), interpolation=cv2.INTER_AREA
    )


def batch(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed crops as one float32 batch (n, READER_HEIGHT, W, 1), padded on the right
    with black, and each crop's number of output frames."""
    widest = max(image.shape[1] for image in images)
    padded_width = -(-widest // WIDTH_STEP) * WIDTH_STEP
    pixels = np.zeros((len(images), READER_HEIGHT, padded_width, 1), np.float32)
    for row, image in enumerate(images):
        pixels[row, :, : image.shape[1], 0] = image
    return pixels, output_lengths([image.shape[1] for image in images])


def output_lengths(widths: Sequence[int]) -> np.ndarray:
    return np.array([-(-w // WIDTH_STEP) for w in widths], np.int32)


def build_crnn(units: int = 96) -> keras.Model:
    """Four conv blocks (the height pooled away, the width halved twice), a bidirectional
    LSTM over the columns, and a dense layer to the 11 classes' logits; any input width."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(READER_HEIGHT, None, 1), name="crop")
    x = layers.Rescaling(1 / 255, name="pixels")(inputs)
    for filters, pool in ((32, (2, 2)), (64, (2, 2)), (96, (2, 1)), (128, (4, 1))):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(pool)(x)
    # (n, 1, W/4, 128) -> (n, W/4, 128): one feature vector per column of the crop.
    x = layers.Permute((2, 1, 3))(x)
    x = layers.Reshape((-1, 128))(x)
    x = layers.Bidirectional(layers.LSTM(units, return_sequences=True), name="context")(x)
    outputs = layers.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name="crnn")


def decode(logits: np.ndarray, lengths: np.ndarray) -> list[str]:
    """Greedy CTC decoding (best class per frame, repeats merged, blanks dropped) into digit
    strings; a crop with no digit decodes to ""."""
    import keras

    decoded, _ = keras.ops.ctc_decode(
        logits, lengths, strategy="greedy", merge_repeated=True, mask_index=BLANK
    )
    paths = np.asarray(keras.ops.convert_to_numpy(decoded))[0]
    return ["".join(str(c - 1) for c in path if c > BLANK) for path in paths]


def read_crops(model: keras.Model, crops: Sequence[np.ndarray]) -> list[str]:
    """The digits in each crop (a line or a cell), as the reader reads them."""
    pixels, lengths = batch([preprocess(crop) for crop in crops])
    return decode(np.asarray(model(pixels, training=False)), lengths)


def ctc_targets(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Digit strings as CTC targets: classes 1-10, padded with the blank, and their lengths."""
    longest = max(1, max(len(label) for label in labels))
    targets = np.full((len(labels), longest), BLANK, np.int32)
    for row, label in enumerate(labels):
        targets[row, : len(label)] = [int(c) + 1 for c in label]
    return targets, np.array([len(label) for label in labels], np.int32)


@dataclass(frozen=True)
class ReaderRecipe:
    """How the reader is trained: every number its card needs to reproduce it."""

    steps: int = 20_000
    batch_size: int = 32
    learning_rate: float = 1e-3
    units: int = 96

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def training_crops(
    bank: DigitBank, count: int, seed: int, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[str]]:
    """`count` generated images (synth, seeded), each cut around its number with a random
    margin as a finder would propose it, preprocessed; and their labels."""
    from handwritten import synth

    crops, labels = [], []
    for made in synth.number_images(bank, count, seed):
        crops.append(preprocess(_crop_around(made.image, made.box, rng)))
        labels.append(made.label)
    return crops, labels


def _crop_around(image: np.ndarray, box: tuple[int, int, int, int], rng) -> np.ndarray:
    left, top, right, bottom = box
    reach = (bottom - top) * rng.uniform(*CROP_MARGIN, size=4)
    height, width = image.shape[:2]
    x0, y0 = max(0, int(left - reach[0])), max(0, int(top - reach[1]))
    x1, y1 = min(width, int(right + reach[2]) + 1), min(height, int(bottom + reach[3]) + 1)
    return image[y0:y1, x0:x1]


def ctc_loss(model: keras.Model, pixels, lengths, targets, target_lengths):
    """The mean CTC loss of a batch."""
    import keras

    logits = model(pixels, training=True)
    losses = keras.ops.ctc_loss(targets, logits, target_lengths, lengths, mask_index=BLANK)
    return keras.ops.mean(losses)


def train_reader(
    bank: DigitBank,
    output: str | os.PathLike | None = None,
    recipe: ReaderRecipe | None = None,
    seed: int = 42,
    images: int = 2048,
    log: list[float] | None = None,
    name: str = "crnn",
) -> keras.Model:
    """Train the registered reader `name` on `images` generated number images (seed
    `seed`): `recipe.steps` batches of Adam (the spec's recipe unless given), each drawn
    from them at random; save it with its card to `output` when given. `log` collects the
    loss of every step."""
    import keras
    import tensorflow as tf

    from handwritten import registry

    spec = registry.get_reader(name)
    recipe = recipe or spec.recipe
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    crops, labels = training_crops(bank, images, seed, rng)
    model = spec.build(recipe.units)
    optimizer = keras.optimizers.Adam(recipe.learning_rate, clipnorm=5.0)

    signature = [
        tf.TensorSpec((None, READER_HEIGHT, None, 1), tf.float32),
        tf.TensorSpec((None,), tf.int32),
        tf.TensorSpec((None, None), tf.int32),
        tf.TensorSpec((None,), tf.int32),
    ]

    @tf.function(input_signature=signature)
    def step(pixels, lengths, targets, target_lengths):
        with tf.GradientTape() as tape:
            loss = ctc_loss(model, pixels, lengths, targets, target_lengths)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    for _ in range(recipe.steps):
        chosen = rng.choice(len(crops), size=min(recipe.batch_size, len(crops)), replace=False)
        pixels, lengths = batch([crops[i] for i in chosen])
        targets, target_lengths = ctc_targets([labels[i] for i in chosen])
        loss = float(step(pixels, lengths, targets, target_lengths))
        if log is not None:
            log.append(loss)
    if output is not None:
        save_reader(model, Path(output), _card(name, recipe, seed, images))
    return model


def _card(name: str, recipe: ReaderRecipe, seed: int, images: int) -> dict[str, Any]:
    return {
        "kind": "reader",
        "name": name,
        "recipe": recipe.to_json(),
        "seed": seed,
        "preprocessing": preprocessing_spec(),
        "learned_from": {
            "generated_images": images,
            "generator": "handwritten.synth: the training split of the sources' digits",
        },
    }


def save_reader(model: keras.Model, path: Path, card: dict[str, Any]) -> None:
    """The .keras file and its card beside it, each written atomically."""
    from handwritten.models import card_path

    with files.atomic_path(path) as temporary:
        model.save(temporary)
    files.write_json(card_path(path), card)


def load_reader(path: str | os.PathLike) -> keras.Model:
    """A reader from a .keras file, with Keras' safe mode (no code from the file runs)."""
    import keras

    try:
        return keras.saving.load_model(Path(path), safe_mode=True, compile=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a loadable reader ({str(exc).splitlines()[0]}).") from None


def export_onnx(model: keras.Model, path: str | os.PathLike) -> Path:
    """The reader as ONNX (Keras 3's export, tf2onnx underneath), any batch size and width."""
    from handwritten.runtime import native_stderr_silenced

    path = Path(path)
    model(np.zeros((1, READER_HEIGHT, 4 * WIDTH_STEP, 1), np.float32))
    with files.atomic_path(path) as temporary, warnings.catch_warnings(), native_stderr_silenced():
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx's, about NumPy
        model.export(str(temporary), format="onnx", verbose=False)
    return path


def onnx_logits(path: str | os.PathLike, pixels: np.ndarray) -> np.ndarray:
    """Run an exported reader with ONNX Runtime on a batch from `batch`."""
    from handwritten.runtime import open_onnx_unchecked

    session = open_onnx_unchecked(Path(path))
    return session.run(None, {session.get_inputs()[0].name: pixels})[0]
