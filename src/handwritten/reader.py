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
(dark on light or light on dark, as `page.writing_is_lighter` tells), its contrast
stretched between the paper's level and the ink's. A batch is padded on the right with black
(no ink) to its widest crop, rounded up to WIDTH_STEP; `output_lengths` gives each crop's own
frames, so the padding is never read as digits. The network's output is one row of logits
per WIDTH_STEP columns: the CTC blank (class 0), then the digits 0-9 (classes 1-10).

`train_reader` is the seeded recipe, on generated images only, each crop varied afresh at
every step (`augment`); `make train-reader` made the shipped reader with it.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
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
READER_VERSION = 3
"""Raise it whenever `preprocess` changes what a crop becomes. 2: which of ink and paper is
the lighter is told as page finding tells it, not by the crop's border, which a scanner's
black margin, a dark rule or a vignette darkens (6.5% of the generator's validation crops
and 16% of the register cells had been turned into dark ink on a light ground). 3: paper
is added at both ends (`SIDE_PAD`)."""
SIDE_PAD = READER_HEIGHT // 4
"""Columns of paper `preprocess` adds at each end of a crop. A digit touching the crop's
edge (a tight cell, a dataset's crop of a number) otherwise sits where the reader never
saw ink, and a leading 1 there was dropped: 148 read as 48, 15 as 5."""
CROP_MARGIN = (0.0, 0.6)
"""Training crops reach this share of the number's height beyond its box on each side, as
a finder's proposal would: tight to the ink or with some of the paper, rules and words
around it."""


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


def preprocess(crop: np.ndarray, lighter: bool | None = None) -> np.ndarray:
    """One crop (H, W) grey or (H, W, 3) RGB uint8 -> (READER_HEIGHT, w) uint8, ink white.
    Dark writing is inverted, then the median becomes black and the brightest ink white, and
    SIDE_PAD columns of black go at each end. `lighter` says whether the writing is lighter
    than its ground when the caller knows (the crops of one image share it); else
    `page.writing_is_lighter` judges the crop."""
    import cv2  # here, not at the top: the registry (and so the CLI's start) imports this module

    from handwritten import page

    grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    if lighter is None:
        lighter = page.writing_is_lighter(grey, across_line=True)
    grey = grey.astype(np.float32) if lighter else 255.0 - grey.astype(np.float32)
    paper, ink = np.percentile(grey, [50, 99.5])
    stretched = np.clip((grey - paper) / max(ink - paper, 16.0), 0, 1) * 255
    height, width = grey.shape
    widest = MAX_WIDTH - 2 * SIDE_PAD
    scaled_width = int(np.clip(round(width * READER_HEIGHT / height), WIDTH_STEP, widest))
    scaled = cv2.resize(
        stretched.astype(np.uint8), (scaled_width, READER_HEIGHT), interpolation=cv2.INTER_AREA
    )
    return np.pad(scaled, ((0, 0), (SIDE_PAD, SIDE_PAD)))


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


def build_crnn(units: int, filters: Sequence[int]) -> keras.Model:
    """Four conv blocks (the height pooled away, the width halved twice), a bidirectional
    LSTM over the columns, and a dense layer to the 11 classes' logits; any input width."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(READER_HEIGHT, None, 1), name="crop")
    x = layers.Rescaling(1 / 255, name="pixels")(inputs)
    for width, pool in zip(filters, ((2, 2), (2, 2), (2, 1), (4, 1)), strict=True):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(pool)(x)
    # (n, 1, W/4, C) -> (n, W/4, C): one feature vector per column of the crop.
    x = layers.Permute((2, 1, 3))(x)
    x = layers.Reshape((-1, filters[-1]))(x)
    x = layers.Bidirectional(layers.LSTM(units, return_sequences=True), name="context")(x)
    outputs = layers.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name="crnn")


@dataclass(frozen=True)
class ReadDigit:
    """One digit of a reading: the digit, its probability at the frame the reader was surest
    of it, the ten digits' shares and the other digits worth naming there, and where it is
    across the crop (from and to, as shares of the crop's width)."""

    digit: int
    confidence: float
    probabilities: list[float]
    alternatives: list[int]
    span: tuple[float, float]


@dataclass(frozen=True)
class Reading:
    """What the reader read in one crop: its digits, and how sure it was of the whole
    reading (the mean, over the crop's frames, of the probability of the class chosen there:
    a blank it doubts counts, as a digit it may have missed or added)."""

    digits: list[ReadDigit]
    confidence: float

    @property
    def text(self) -> str:
        return "".join(str(d.digit) for d in self.digits)


def decode(logits: np.ndarray, lengths: np.ndarray) -> list[Reading]:
    """Greedy CTC decoding (the best class per frame, repeats merged, blanks dropped) of a
    batch of logits, each digit with its confidence; in NumPy, so reading needs no
    TensorFlow. A crop with no digit reads as no digits."""
    from handwritten import trust

    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities = exponentials / exponentials.sum(axis=-1, keepdims=True)
    readings = []
    for frames, length in zip(probabilities, lengths, strict=True):
        frames = frames[:length]
        best = frames.argmax(axis=-1)
        digits = []
        starts = np.flatnonzero(np.diff(best, prepend=-1))
        for start, end in zip(starts, [*starts[1:], length], strict=True):
            if best[start] == BLANK:
                continue
            surest = start + int(frames[start:end, best[start]].argmax())
            shares = frames[surest, 1:] / frames[surest, 1:].sum()
            digit = int(best[start]) - 1
            digits.append(
                ReadDigit(
                    digit=digit,
                    confidence=float(frames[surest, best[start]]),
                    probabilities=[float(share) for share in shares],
                    alternatives=trust.alternatives(shares, digit),
                    span=(float(start / length), float(end / length)),
                )
            )
        readings.append(Reading(digits, float(frames.max(axis=-1).mean()) if length else 0.0))
    return readings


class Reader:
    """A trained reader, run by ONNX Runtime (its exported copy) or Keras, with its card."""

    def __init__(self, run: Any, card: dict[str, Any] | None, path: Path) -> None:
        self._run = run
        self.card = card
        self.path = path
        self.source_sha256: str | None = None
        """For an ONNX copy: the SHA-256 of the .keras file it was exported from."""

    def read(self, crops: Sequence[np.ndarray], lighter: bool | None = None) -> list[Reading]:
        """Read crops (grey or RGB uint8, any size) of lines or cells, in one batch; `lighter`
        as `preprocess` takes it."""
        if not crops:
            return []
        prepared = [preprocess(crop, lighter) for crop in crops]
        pixels, lengths = batch(prepared)
        readings = decode(self._run(pixels), lengths)
        return [_in_crop(r, image.shape[1]) for r, image in zip(readings, prepared, strict=True)]


def _in_crop(reading: Reading, width: int) -> Reading:
    """The reading with its digits' spans as shares of the crop's width, not of the padded
    width the reader saw (`SIDE_PAD`)."""
    frames = -(-width // WIDTH_STEP)

    def unpadded(share: float) -> float:
        column = share * frames * WIDTH_STEP - SIDE_PAD
        return float(np.clip(column / (width - 2 * SIDE_PAD), 0.0, 1.0))

    digits = [replace(d, span=(unpadded(d.span[0]), unpadded(d.span[1]))) for d in reading.digits]
    return replace(reading, digits=digits)


def open_reader(path: str | os.PathLike) -> Reader:
    """The reader in a .keras file, run by the .onnx copy exported from exactly that file
    when there is one (no TensorFlow loads), else by Keras in safe mode; or an .onnx file
    given directly, which carries its card. A stale copy is worth a warning: the export
    step was forgotten; so is a reader trained on crops prepared otherwise than here."""
    reader = _open_reader_file(Path(path))
    recorded = ((reader.card or {}).get("preprocessing") or {}).get("reader_version")
    if recorded is not None and recorded != READER_VERSION:
        logging.getLogger("handwritten").warning(
            "handwritten: warning: %s was trained on crops of reader version %s; this "
            "installation prepares version %s, so it may read numbers less well than its card "
            "says. Train it again with `handwritten train-reader`.",
            path,
            recorded,
            READER_VERSION,
        )
    return reader


def _open_reader_file(path: Path) -> Reader:
    from handwritten.models import read_card
    from handwritten.runtime import sha256_of

    if path.suffix == ".onnx":
        if not path.is_file():
            raise ModelError(f"{path}: no such reader file; pass a .keras or .onnx reader.")
        return _onnx_reader(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such reader; train one with `handwritten train-reader`.")
    onnx_file = path.with_suffix(".onnx")
    if onnx_file.is_file():
        reader = _onnx_reader(onnx_file)
        if reader.source_sha256 == sha256_of(path):
            return reader
        logging.getLogger("handwritten").warning(
            "handwritten: warning: %s was not exported from %s as it is now; run `handwritten "
            "export --model %s`. Using the .keras file meanwhile.",
            onnx_file,
            path,
            path,
        )
    return Reader(keras_runner(load_reader(path)), read_card(path), path)


def keras_runner(model: keras.Model) -> Any:
    """The Keras reader as one compiled graph for any batch and width: called eagerly, its
    LSTM steps one op at a time, about 20 times slower than the graph."""
    import tensorflow as tf

    signature = [tf.TensorSpec((None, READER_HEIGHT, None, 1), tf.float32)]
    run = tf.function(lambda pixels: model(pixels, training=False), input_signature=signature)
    return lambda pixels: run(pixels).numpy()


def reader_from_onnx_bytes(data: bytes) -> Reader:
    """A reader from an exported .onnx file's bytes: what bulk workers and Ray tasks open."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".onnx") as copy:
        copy.write(data)
        copy.flush()
        return _onnx_reader(Path(copy.name))


def _onnx_reader(path: Path) -> Reader:
    import json

    from handwritten.runtime import CARD, SOURCE_SHA256, open_onnx_unchecked

    session = open_onnx_unchecked(path)
    metadata = session.get_modelmeta().custom_metadata_map
    name = session.get_inputs()[0].name
    reader = Reader(
        lambda pixels: session.run(None, {name: pixels})[0],
        json.loads(metadata[CARD]) if CARD in metadata else None,
        path,
    )
    reader.source_sha256 = metadata.get(SOURCE_SHA256)
    return reader


def export_reader(path: str | os.PathLike) -> Path:
    """Write `<reader>.onnx` beside a .keras reader, stamped with the .keras file's SHA-256
    and carrying its card; kept only when ONNX Runtime gives Keras' logits (within 1e-4)."""
    from handwritten.models import read_card
    from handwritten.runtime import stamp_onnx

    path = Path(path)
    model = load_reader(path)
    target = path.with_suffix(".onnx")
    with files.atomic_path(target) as temporary:
        export_onnx(model, temporary)
        stamp_onnx(temporary, path, read_card(path) or {"kind": "reader"})
        pixels, _ = batch([np.full((READER_HEIGHT, width), 255, np.uint8) for width in (16, 160)])
        gap = np.abs(onnx_logits(temporary, pixels) - np.asarray(model(pixels))).max()
        if gap > 1e-4:
            raise ModelError(f"{target}: ONNX Runtime differs from Keras by {gap:.2g}; not kept.")
    return target


def read_crops(model: keras.Model, crops: Sequence[np.ndarray]) -> list[str]:
    """The digits in each crop (a line or a cell), as the Keras reader reads them."""
    return [r.text for r in read_prepared(model, [preprocess(crop) for crop in crops])]


def ctc_targets(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Digit strings as CTC targets: classes 1-10, padded with the blank, and their lengths."""
    longest = max(1, max(len(label) for label in labels))
    targets = np.full((len(labels), longest), BLANK, np.int32)
    for row, label in enumerate(labels):
        targets[row, : len(label)] = [int(c) + 1 for c in label]
    return targets, np.array([len(label) for label in labels], np.int32)


@dataclass(frozen=True)
class ReaderRecipe:
    """How the reader is trained: every number its card needs to reproduce it. Twice the
    width of the reader before (32-128 filters, 96 units) read 79.4% of the validation crops
    against 78.0% and 2,437 register cells of 2,697 against 2,391; that reader trained for
    18,000 steps read 78.6%, so 12,000 steps stay."""

    steps: int = 12_000
    images: int = 40_000
    batch_size: int = 32
    learning_rate: float = 1e-3
    units: int = 128
    filters: tuple[int, ...] = (48, 96, 144, 192)
    augment: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


VALIDATION_SEED_OFFSET = 1
"""The reader's validation images are the generator's images for seed + 1: other numbers,
other scenes, the same writers' pool (the training split of the sources)."""
VALIDATION_IMAGES = 1000


def training_crops(
    bank: DigitBank, count: int, seed: int, workers: int = 1
) -> tuple[list[np.ndarray], list[str]]:
    """`count` generated images (synth, image i from the generator seeded (seed, i)), each
    cut around its number with a random margin as a finder would propose it, preprocessed;
    and their labels. `workers` processes compose them (forked before any TensorFlow)."""
    chunks = [range(start, min(count, start + 256)) for start in range(0, count, 256)]
    global _BANK
    _BANK = bank
    try:
        if workers <= 1:
            made = [_crops_for(seed, chunk) for chunk in chunks]
        else:
            import multiprocessing

            with multiprocessing.get_context("fork").Pool(workers) as pool:
                made = pool.starmap(_crops_for, [(seed, chunk) for chunk in chunks])
    finally:
        _BANK = None
    return [c for crops, _ in made for c in crops], [x for _, labels in made for x in labels]


_BANK: DigitBank | None = None
"""The bank the forked workers of `training_crops` compose from (inherited, not sent)."""


def _crops_for(seed: int, indices: range) -> tuple[list[np.ndarray], list[str]]:
    from handwritten import synth

    crops, labels = [], []
    for index in indices:
        made = synth.compose(_BANK, np.random.default_rng([seed, index]))
        margin_rng = np.random.default_rng([seed, index, 1])
        crops.append(preprocess(_crop_around(made.image, made.box, margin_rng)))
        labels.append(made.label)
    return crops, labels


def _crop_around(image: np.ndarray, box: tuple[int, int, int, int], rng) -> np.ndarray:
    left, top, right, bottom = box
    reach = (bottom - top) * rng.uniform(*CROP_MARGIN, size=4)
    height, width = image.shape[:2]
    x0, y0 = max(0, int(left - reach[0])), max(0, int(top - reach[1]))
    x1, y1 = min(width, int(right + reach[2]) + 1), min(height, int(bottom + reach[3]) + 1)
    return image[y0:y1, x0:x1]


STRETCH = (0.8, 1.25)
"""How much `augment` widens or narrows a crop: numbers written closer or wider apart."""
SHRINK = (0.8, 1.0)
"""How much `augment` shrinks a crop's height about its middle: more paper above and below."""
NOISE = 8.0
"""The largest standard deviation of the sensor noise `augment` adds, in grey levels."""


def augment(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A preprocessed crop as another writer's spacing, another finder's margin and another
    camera might have given it: stretched sideways, shrunk and shifted up or down, fainter
    and noisier. Drawn afresh at every step, so the reader cannot learn its training crops
    by heart (without it, a reader trained on 24,000 fixed crops read 91% of them exactly
    and 69% of the generator's validation images)."""
    import cv2

    height, width = crop.shape
    stretch = rng.uniform(*STRETCH)
    new_width = int(np.clip(round(width * stretch), WIDTH_STEP, MAX_WIDTH))
    shrink = rng.uniform(*SHRINK)
    shift = (1 - shrink) * height * rng.uniform(-0.5, 0.5)
    matrix = np.float32([[new_width / width, 0, 0], [0, shrink, (1 - shrink) * height / 2 + shift]])
    moved = cv2.warpAffine(crop, matrix, (new_width, height), flags=cv2.INTER_LINEAR)
    noisy = moved * rng.uniform(0.7, 1.0) + rng.normal(0, rng.uniform(0, NOISE), moved.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def width_batches(widths: Sequence[int], size: int, rng: np.random.Generator):
    """Endless batches of indices, each of crops of about one width (so little of a batch is
    padding), in a random order that changes every pass."""
    widths = np.asarray(widths, np.float64)
    while True:
        order = np.argsort(widths + rng.uniform(0, 16, len(widths)))
        chunks = [order[i : i + size] for i in range(0, len(order), size)]
        for chosen in rng.permutation(len(chunks)):
            yield chunks[chosen]


def ctc_loss(model: keras.Model, pixels, lengths, targets, target_lengths):
    """The mean CTC loss of a batch."""
    import keras

    logits = model(pixels, training=True)
    losses = keras.ops.ctc_loss(targets, logits, target_lengths, lengths, mask_index=BLANK)
    return keras.ops.mean(losses)


def read_prepared(model: keras.Model, crops: Sequence[np.ndarray]) -> list[Reading]:
    """The Keras reader's readings of preprocessed crops, 64 at a time, through one compiled
    graph (`keras_runner`)."""
    run = keras_runner(model)
    readings = []
    for start in range(0, len(crops), 64):
        pixels, lengths = batch(crops[start : start + 64])
        readings += decode(run(pixels), lengths)
    return readings


def score(readings: Sequence[Reading], labels: Sequence[str]) -> dict:
    """Exact-match rate and character error rate of readings against their labels."""
    from handwritten.evaluate import character_error_rate

    read = [r.text for r in readings]
    exact = sum(a == b for a, b in zip(read, labels, strict=True))
    return {
        "images": len(labels),
        "exact": exact,
        "exact_rate": exact / len(labels),
        "cer": character_error_rate(read, list(labels)),
    }


SURE_ACCURACY = 0.98
"""A number is sure when its least sure digit reaches the reader's sure threshold; the
threshold is the lowest that keeps sure numbers this often read exactly. CTC's frames are
peaky: most digits' confidences crowd within 1e-4 of 1, and for the shipped reader no
threshold keeping sure numbers 99% exact had a gap between scores as wide as the runtimes'
tolerance; at 98% there is one."""


def choose_sure(readings: Sequence[Reading], labels: Sequence[str], chosen_on: str) -> dict:
    """The sure threshold of a reader's digits, from readings of labelled numbers: the lowest
    at which the numbers it calls sure are SURE_ACCURACY exact, moved to the middle of the
    gap between scores (`trust.mid_gap`) so that two runtimes cannot answer differently."""
    from handwritten import trust

    least = np.array([min((d.confidence for d in r.digits), default=0.0) for r in readings])
    right = np.array([r.text == label for r, label in zip(readings, labels, strict=True)])

    def exact_enough(threshold: float) -> bool:
        sure = least >= threshold
        return not sure.any() or right[sure].mean() >= SURE_ACCURACY

    lowest = next((t for t in np.unique(least) if exact_enough(t)), 1.0)
    sure, margin = trust.mid_gap(float(lowest), least, allowed=exact_enough)
    chosen = least >= sure
    return {
        "sure": sure,
        "margin": margin,
        "rule": f"sure numbers at least {SURE_ACCURACY:.1%} exact",
        "chosen_on": chosen_on,
        "sure_share": float(chosen.mean()),
        "sure_exact": float(right[chosen].mean()) if chosen.any() else None,
    }


def train_reader(
    bank: DigitBank,
    output: str | os.PathLike | None = None,
    recipe: ReaderRecipe | None = None,
    seed: int = 42,
    log: list[float] | None = None,
    name: str = "crnn",
    workers: int = 1,
    progress: Any = None,
    validation_images: int = VALIDATION_IMAGES,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train the registered reader `name` (the spec's recipe unless given) on the recipe's
    generated images (seed `seed`): Adam with cosine decay, batches of like widths; score it
    on the generator's validation images (seed + 1); save it with its card to `output` when
    given. `log` collects the loss of every step; `progress(step, loss)` hears every 200."""
    import time

    from handwritten import registry

    spec = registry.get_reader(name)
    recipe = recipe or spec.recipe
    started = time.monotonic()
    crops, labels = training_crops(bank, recipe.images, seed, workers)
    checks, check_labels = training_crops(
        bank, validation_images, seed + VALIDATION_SEED_OFFSET, workers
    )
    model = _fit(spec, recipe, seed, crops, labels, log, progress)
    what = f"{validation_images} generated images, seed {seed + VALIDATION_SEED_OFFSET}"
    readings = read_prepared(model, checks)
    validation = {"what": what, **score(readings, check_labels)}
    card = {
        **_card(name, recipe, seed, validation, time.monotonic() - started),
        "trust": choose_sure(readings, check_labels, what),
    }
    if output is not None:
        save_reader(model, Path(output), card)
    return model, card


def _fit(spec, recipe: ReaderRecipe, seed: int, crops, labels, log, progress) -> keras.Model:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = spec.build(recipe.units, recipe.filters)
    schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, recipe.steps, 0.02)
    optimizer = keras.optimizers.Adam(schedule, clipnorm=5.0)
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

    batches = width_batches([c.shape[1] for c in crops], recipe.batch_size, rng)
    varied = np.random.default_rng([seed, 0x617567])
    for number in range(1, recipe.steps + 1):
        chosen = next(batches)
        chosen_crops = [crops[i] for i in chosen]
        if recipe.augment:
            chosen_crops = [augment(crop, varied) for crop in chosen_crops]
        pixels, lengths = batch(chosen_crops)
        targets, target_lengths = ctc_targets([labels[i] for i in chosen])
        loss = float(step(pixels, lengths, targets, target_lengths))
        if log is not None:
            log.append(loss)
        if progress is not None and number % 200 == 0:
            progress(number, loss)
    return model


def _card(
    name: str, recipe: ReaderRecipe, seed: int, validation: dict, seconds: float
) -> dict[str, Any]:
    return {
        "kind": "reader",
        "name": name,
        "recipe": recipe.to_json(),
        "seed": seed,
        "preprocessing": preprocessing_spec(),
        "learned_from": {
            "generated_images": recipe.images,
            "generator": "handwritten.synth: the training split of the sources' digits",
            "crop_margin": list(CROP_MARGIN),
        },
        "validation": validation,
        "training_seconds": round(seconds, 1),
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
