"""Images of whole numbers composed from real handwritten digits, for training and testing a
number reader: `handwritten synth numbers N DIR` writes N of them with a `labels.csv`.

Each image holds one number of 1 to 20 digits. The digits are real people's, drawn from the
training split of the writers' collections (`handwritten.sources`; never their test split,
never the development sets in ../shared), by one writer per number where the source records
writers. They are laid out with spacing from wide to touching and overlapping, slant,
baseline drift, mixed sizes, pen widths and ink colours, then put on paper: plain, ruled,
squared or coloured, in a table cell with rules on some sides, beside printed words, with a
scanner's black margin, shadows, uneven light, blur, noise, JPEG, rotation and perspective,
at the sizes real crops, scans and phone photos have them (a small number in a large cell
included). Every image comes from `numpy.random.default_rng([seed, index])`, so image `i` is
the same whatever N is, and a set can be remade from its seed.

What composing from the sources costs in realism: every source's digit arrives as a 28x28
MNIST-style image (white ink on black, the longer side fitted to 20 px, the stroke widened
or thinned to about 2.5 px). So the ink is a smooth grey mask scaled up from 20 px: no pen
texture, no pressure or nib shape, no ink pooling or pencil grain; a fine pen is imitated by
thinning the mask, which can break the thinnest loops. Each digit's own size and proportions
relative to its neighbours are lost (the normaliser made them all one height), so sizes are
varied at random rather than as a writer varies them; nothing joins one digit to the next as
a running hand does (touching comes from overlap only); and MNIST, most of the digits, has no
writer ids, so many numbers mix writers. Paper, light and camera are modelled, not
photographed.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from handwritten import files
from handwritten.errors import DataError

MAX_DIGITS = 20
LONG_NUMBER_WEIGHT = 0.25
"""Numbers of 11 to 20 digits are drawn this much less often than those of 1 to 10."""
INK_LEVEL = 0.15
"""A source pixel at or above this share of white is part of the digit."""
WORK_HEIGHT = 48
"""Digits are composed at this height in pixels, then the scene is scaled to its final size."""
SCENES = ("line", "cell", "photo", "drawing")
SCENE_WEIGHTS = (0.3, 0.3, 0.3, 0.1)
WORDS = ("No.", "Nr", "Total", "Amount", "kr", "Date", "Ref", "Room", "Box", "Tel", "Page",
         "Sum", "Lot", "Item", "Code", "Qty", "Born", "Died", "Name", "Parish")  # fmt: skip
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN)  # fmt: skip
PAPERS = {
    "white": (245, 245, 242),
    "grey": (200, 200, 196),
    "yellowed": (222, 208, 176),
    "blue": (214, 228, 245),
    "yellow": (250, 240, 170),
    "pink": (245, 214, 222),
    "green": (214, 240, 214),
}
INKS = {
    "black": (20, 20, 25),
    "blue": (30, 50, 150),
    "dark blue": (20, 25, 80),
    "pencil": (80, 80, 85),
    "brown": (80, 55, 35),
    "red": (170, 30, 30),
    "green": (30, 110, 50),
}
INK_WEIGHTS = (0.35, 0.25, 0.15, 0.1, 0.08, 0.04, 0.03)
MIN_SOURCE_DIGITS = 10


@dataclass(frozen=True)
class DigitBank:
    """The digits numbers are made of: 28x28 images (white ink on black), their labels, and
    a writer id per image ("" where unknown; ids are prefixed with the source's name)."""

    images: np.ndarray
    labels: np.ndarray
    writers: np.ndarray

    def __post_init__(self) -> None:
        present = set(np.unique(self.labels).tolist())
        missing = sorted(set(range(10)) - present)
        if missing:
            raise DataError(
                f"the chosen sources have no {', '.join(map(str, missing))}; choose more --sources."
            )

    def indices(self, digit: int) -> np.ndarray:
        return self._by_digit()[digit]

    def writer_samples(self, writer: str) -> dict[int, np.ndarray]:
        return self._by_writer().get(writer, {})

    def _by_digit(self) -> dict[int, np.ndarray]:
        cached = self.__dict__.get("_digits")
        if cached is None:
            cached = {d: np.flatnonzero(self.labels == d) for d in range(10)}
            object.__setattr__(self, "_digits", cached)
        return cached

    def _by_writer(self) -> dict[str, dict[int, np.ndarray]]:
        cached = self.__dict__.get("_writers")
        if cached is None:
            cached = {}
            known = np.flatnonzero(self.writers != "")
            for writer in np.unique(self.writers[known]):
                mine = known[self.writers[known] == writer]
                cached[str(writer)] = {
                    d: mine[self.labels[mine] == d]
                    for d in range(10)
                    if (self.labels[mine] == d).any()
                }
            object.__setattr__(self, "_writers", cached)
        return cached


def load_bank(
    names: Sequence[str] | None = None,
    writers_dir: str | os.PathLike | None = None,
    mnist_dir: str | os.PathLike | None = None,
) -> DigitBank:
    """The training-split digits of the named sources (default: all of them), as `sources`
    loads them: the published test splits (MNIST's, USPS's, the UCI sets' other writers) are
    left out, so a reader tested on them has never seen their writers' digits."""
    from handwritten import sources

    images, labels, writers = [], [], []
    for name in names or sources.names():
        samples = sources.load(name, mnist_dir if name == "mnist" else writers_dir)
        keep = (samples.split == "train") & (samples.labels >= 0)
        images.append(samples.images[keep])
        labels.append(samples.labels[keep])
        ids = samples.writers[keep].astype(str)
        writers.append(np.where(ids == "", "", np.char.add(f"{name}:", ids)))
    return DigitBank(np.concatenate(images), np.concatenate(labels), np.concatenate(writers))


@dataclass(frozen=True)
class NumberImage:
    """One composed image (RGB uint8), its digits as a string, the number's box in the image
    (left, top, right, bottom), the kind of scene ("line", "cell", "photo", "drawing"), the
    bank's index of each digit written (to score the digits alone, as a ceiling for reading
    the whole) and, for an image that went through JPEG, the JPEG file itself (`image` is
    what it decodes to)."""

    image: np.ndarray
    label: str
    box: tuple[int, int, int, int]
    scene: str
    samples: tuple[int, ...]
    jpeg: bytes | None = None


def number_images(bank: DigitBank, count: int, seed: int = 0) -> Iterator[NumberImage]:
    """`count` composed images, image i drawn from its own generator seeded by (seed, i)."""
    for index in range(count):
        yield compose(bank, np.random.default_rng([seed, index]))


def compose(bank: DigitBank, rng: np.random.Generator, label: str | None = None) -> NumberImage:
    """One number image; `label` fixes the digits, else 1 to 20 random ones are drawn."""
    label = label or random_label(rng)
    samples = _choose_samples(bank, label, rng)
    ink = _write_number(bank, samples, rng)
    scene = str(rng.choice(SCENES, p=SCENE_WEIGHTS))
    canvas, box = _SCENE_MAKERS[scene](ink, rng)
    canvas, box = _camera(canvas, box, scene, rng)
    jpeg = None
    if scene == "photo" or (scene != "drawing" and rng.random() < 0.5):
        canvas, jpeg = _jpeg(canvas, int(rng.integers(35, 96)))
    return NumberImage(canvas, label, box, scene, tuple(samples), jpeg)


def random_label(rng: np.random.Generator) -> str:
    """1 to 20 digits, numbers of up to 10 digits drawn more often, any digit first."""
    weights = np.where(np.arange(1, MAX_DIGITS + 1) <= 10, 1.0, LONG_NUMBER_WEIGHT)
    length = int(rng.choice(np.arange(1, MAX_DIGITS + 1), p=weights / weights.sum()))
    return "".join(str(d) for d in rng.integers(0, 10, size=length))


# --- The handwriting: digits laid out as one writer writes a number ------------------------


def _write_number(bank: DigitBank, samples: list[int], rng: np.random.Generator) -> np.ndarray:
    """The number's ink (float32, 0 paper to 1 ink), cropped to it, digits WORK_HEIGHT tall."""
    glyphs = [_glyph(bank.images[i], rng) for i in samples]
    pen = _pen_change(rng)
    glyphs = [_restroke(g, pen) for g in glyphs]
    spacing = rng.choice(
        [(0.25, 0.7), (0.05, 0.3), (-0.06, 0.06), (-0.22, -0.04)], p=[0.15, 0.45, 0.25, 0.15]
    )
    sizes = rng.uniform(0.8, 1.2, len(glyphs)) if rng.random() < 0.4 else np.ones(len(glyphs))
    drift = WORK_HEIGHT * rng.uniform(0, 0.15)
    phase, waves = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 1.2)
    tilt = rng.normal(0, 0.04)
    group_gap = WORK_HEIGHT * rng.uniform(0.3, 0.8) if len(glyphs) > 5 and rng.random() < 0.2 else 0
    placed, x = [], 0.0
    for position, (glyph, size) in enumerate(zip(glyphs, sizes, strict=True)):
        height = WORK_HEIGHT * size
        glyph = cv2.resize(glyph, _scaled_size(glyph, height), interpolation=cv2.INTER_LINEAR)
        wave = drift * np.sin(phase + waves * position)
        top = WORK_HEIGHT * 1.2 - height + wave + tilt * x
        placed.append((glyph, x, top))
        gap = WORK_HEIGHT * rng.uniform(*spacing)
        if group_gap and (len(glyphs) - position - 1) % 3 == 0:
            gap += group_gap
        x += glyph.shape[1] + max(gap, -0.5 * glyph.shape[1])
    ink = _paste_all(placed)
    return _crop(_slant(ink, rng.normal(0.1, 0.18)))


def _choose_samples(bank: DigitBank, label: str, rng: np.random.Generator) -> list[int]:
    """One sample per digit, all by one writer when the first one's writer wrote them all."""
    digits = [int(c) for c in label]
    first = int(rng.choice(bank.indices(digits[0])))
    own = bank.writer_samples(str(bank.writers[first]))
    if own and all(d in own for d in digits):
        return [first] + [int(rng.choice(own[d])) for d in digits[1:]]
    return [first] + [int(rng.choice(bank.indices(d))) for d in digits[1:]]


def _glyph(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A source digit as ink (0-1), cropped to its strokes, scaled up 3x smoothly."""
    ink = image.astype(np.float32) / 255.0
    rows, cols = np.nonzero(ink >= INK_LEVEL)
    if len(rows) == 0:
        ink = np.zeros((20, 20), np.float32)
        rows, cols = np.array([0, 19]), np.array([0, 19])
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    ink = np.pad(ink, 2)
    aspect = rng.uniform(0.85, 1.15)
    size = (max(1, round(ink.shape[1] * 3 * aspect)), ink.shape[0] * 3)
    return cv2.resize(ink, size, interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _pen_change(rng: np.random.Generator) -> int:
    """How many pixels (at 3x) to take off (negative) or add to the stroke's half-width."""
    return int(rng.choice([-3, -2, -1, 0, 1, 2], p=[0.15, 0.2, 0.2, 0.25, 0.12, 0.08]))


def _restroke(glyph: np.ndarray, change: int) -> np.ndarray:
    """Sharpen the upscaled grey mask into a pen stroke, thinned or thickened."""
    stroke = np.clip((glyph - 0.35) / 0.3, 0, 1)
    if change:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(change) + 1,) * 2)
        operation = cv2.erode if change < 0 else cv2.dilate
        thinned = operation(stroke, kernel)
        # A fine pen must not lose whole strokes: keep the thinnest where erosion ate all.
        stroke = thinned if change > 0 or thinned.sum() > 0.25 * stroke.sum() else stroke
    return cv2.GaussianBlur(stroke, (3, 3), 0.7)


def _scaled_size(glyph: np.ndarray, height: float) -> tuple[int, int]:
    scale = height / glyph.shape[0]
    return max(1, round(glyph.shape[1] * scale)), max(1, round(height))


def _paste_all(placed: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """Lay the glyphs on one canvas; where strokes overlap, the darker wins, as with ink."""
    shift = -min(0.0, min(top for _, _, top in placed))
    width = int(max(x + g.shape[1] for g, x, _ in placed)) + 2
    height = int(max(top + shift + g.shape[0] for g, _, top in placed)) + 2
    canvas = np.zeros((height, width), np.float32)
    for glyph, x, top in placed:
        left, upper = round(x), round(top + shift)
        region = canvas[upper : upper + glyph.shape[0], left : left + glyph.shape[1]]
        np.maximum(region, glyph[: region.shape[0], : region.shape[1]], out=region)
    return canvas


def _slant(ink: np.ndarray, shear: float) -> np.ndarray:
    """Lean the writing right (positive) or left, as a hand slants, about the baseline."""
    height, width = ink.shape
    pad = int(abs(shear) * height) + 1
    matrix = np.float32([[1, -shear, shear * height + pad], [0, 1, 0]])
    return cv2.warpAffine(ink, matrix, (width + 2 * pad, height), flags=cv2.INTER_LINEAR)


def _crop(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(ink > 0.05)
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


# --- The paper and what is around the number -----------------------------------------------


def _paper(height: int, width: int, rng: np.random.Generator, colours: Sequence[str]) -> np.ndarray:
    """Paper of one of `colours` with a faint grain and cloudiness, float32 RGB 0-255."""
    base = np.array(PAPERS[str(rng.choice(colours))], np.float32) + rng.normal(0, 6, 3)
    cloud = cv2.resize(rng.normal(0, 1, (4, 4)).astype(np.float32), (width, height))
    grain = rng.normal(0, rng.uniform(0.5, 3), (height, width)).astype(np.float32)
    shade = (cloud * rng.uniform(0, 6) + grain)[..., None]
    return np.clip(base + shade, 0, 255)


def _rules(
    paper: np.ndarray, rng: np.random.Generator, spacing: float, baseline: float, squared: bool
) -> None:
    """Ruled (or squared) lines in a light ink, one of them under the number."""
    colour = np.array(rng.choice([(150, 170, 210), (170, 170, 170), (200, 150, 150)]), np.float32)
    strength = rng.uniform(0.3, 0.8)
    height, width = paper.shape[:2]
    thickness = int(rng.integers(1, 3))
    lines = np.zeros((height, width), np.float32)
    first = baseline % spacing
    for y in np.arange(first, height, spacing):
        cv2.line(lines, (0, int(y)), (width, int(y)), 1.0, thickness)
    if squared:
        for x in np.arange(rng.uniform(0, spacing), width, spacing):
            cv2.line(lines, (int(x), 0), (int(x), height), 1.0, thickness)
    _blend(paper, lines * strength, colour)


def _blend(paper: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Lay `colour` over the paper where `alpha` (0-1) says, as ink soaks in."""
    paper *= 1 - alpha[..., None]
    paper += alpha[..., None] * colour


def _ink_colour(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    name = str(rng.choice(list(INKS), p=INK_WEIGHTS))
    opacity = rng.uniform(0.45, 0.85) if name == "pencil" else rng.uniform(0.75, 1.0)
    return np.array(INKS[name], np.float32) + rng.normal(0, 8, 3), opacity


def _write_on(paper: np.ndarray, ink: np.ndarray, left: int, top: int, rng: np.random.Generator):
    colour, opacity = _ink_colour(rng)
    alpha = np.zeros(paper.shape[:2], np.float32)
    region = alpha[top : top + ink.shape[0], left : left + ink.shape[1]]
    region[...] = ink[: region.shape[0], : region.shape[1]] * opacity
    _blend(paper, alpha, colour)


def _printed_word(paper: np.ndarray, rng: np.random.Generator, x: int, y: int, height: float):
    """A printed word (no digits, so the label stays the number) with its left foot at x, y."""
    font = int(rng.choice(FONTS))
    scale = cv2.getFontScaleFromHeight(font, max(4, int(height)), 1)
    word = str(rng.choice(WORDS))
    thickness = max(1, int(height / 16))
    mask = np.zeros(paper.shape[:2], np.uint8)
    cv2.putText(mask, word, (x, y), font, scale, 255, thickness, cv2.LINE_AA)
    _blend(paper, mask.astype(np.float32) / 255.0, rng.uniform(10, 60, 3).astype(np.float32))


def _fit(ink: np.ndarray, digit_height: float) -> np.ndarray:
    """The number's ink scaled so its digits are `digit_height` pixels tall (area-averaged
    when shrinking, as a camera's pixels are), at least one pixel each way."""
    scale = digit_height / WORK_HEIGHT
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(ink, size, interpolation=method).clip(0, 1)


def _place(ink: np.ndarray, room: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
    """Where the ink's top-left corner goes in a (height, width) room, anywhere it fits."""
    spare_y, spare_x = room[0] - ink.shape[0], room[1] - ink.shape[1]
    return int(rng.uniform(0, max(spare_x, 0) + 1)), int(rng.uniform(0, max(spare_y, 0) + 1))


def _line_scene(ink: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """A crop around a number written on a line: a cheque amount on its patterned paper, a
    form field, a strip of a page; sometimes ruled or squared, sometimes a word before it."""
    unit = rng.uniform(14, 70)
    ink = _fit(ink, unit)
    h, w = ink.shape
    margin = lambda: int(unit * rng.uniform(0.1, 0.8))  # noqa: E731
    word = rng.random() < 0.2
    prefix = int(unit * 2) if word else 0
    left, right, top, bottom = margin() + prefix, margin(), margin(), margin()
    colours = ("white", "white", "grey", "yellowed", "blue", "yellow", "green")
    paper = _paper(h + top + bottom, w + left + right, rng, colours)
    background = rng.random()
    if background < 0.2:
        _guilloche(paper, rng, unit)
    elif background < 0.45:
        _rules(paper, rng, unit * rng.uniform(1.1, 1.8), top + h, squared=background < 0.3)
    if word:
        _printed_word(paper, rng, int(unit * 0.1), top + h, unit * 0.5)
    _write_on(paper, ink, left, top, rng)
    return paper, (left, top, left + w, top + h)


def _guilloche(paper: np.ndarray, rng: np.random.Generator, unit: float) -> None:
    """The fine wavy security lines printed on cheques, behind the amount."""
    height, width = paper.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    period = unit * rng.uniform(0.15, 0.4)
    bend = unit * rng.uniform(0.1, 0.5)
    wave = np.sin(xs / (unit * rng.uniform(0.5, 2)) + rng.uniform(0, 6)) * bend
    lines = (np.cos(2 * np.pi * (ys + wave) / period) + 1) / 2
    _blend(paper, lines**6 * rng.uniform(0.15, 0.4), np.array((90, 90, 90), np.float32))


def _cell_scene(ink: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """A table cell cut from a scanned form or register: rules on some of its sides, often a
    number small in a large (sometimes tall) cell, the writer's underline under it, and
    sometimes the scanner's black margin down one side."""
    unit = rng.uniform(10, 40)
    ink = _fit(ink, unit)
    h, w = ink.shape
    fill = rng.uniform(0.1, 0.9)
    cell_h = int(h / fill)
    cell_w = int(max(w / rng.uniform(0.3, 0.95), cell_h * rng.uniform(0.4, 2.5)))
    # A little paper all round, mostly: the cell's rules may touch the digits, not cut them off.
    pad = int(unit * rng.uniform(0.05, 0.2))
    cell_h, cell_w = cell_h + 2 * pad, cell_w + 2 * pad
    paper = _paper(cell_h, cell_w, rng, ("white", "grey", "yellowed", "yellowed"))
    left, top = _place(ink, (cell_h - 2 * pad, cell_w - 2 * pad), rng)
    left, top = left + pad, top + pad
    _write_on(paper, ink, left, top, rng)
    if rng.random() < 0.3 and top + h + unit * 0.3 < cell_h:
        _underline(paper, rng, (left, top + h), w, unit)
    _cell_rules(paper, rng)
    if rng.random() < 0.35:
        _scanner_margin(paper, rng, (left, top, left + w, top + h))
    return paper, (left, top, left + w, top + h)


def _underline(
    paper: np.ndarray, rng: np.random.Generator, start: tuple[int, int], width: int, unit: float
) -> None:
    """The short flourish some clerks drew under a number, in a pen like the number's."""
    mask = np.zeros(paper.shape[:2], np.float32)
    left, y = start
    xs = np.linspace(left - unit * 0.1, left + width * rng.uniform(0.7, 1.2), 12)
    bend = rng.normal(0, unit * 0.08)
    ys = y + unit * rng.uniform(0.05, 0.25) + bend * np.sin(np.linspace(0, np.pi, 12))
    points = np.stack([xs, ys], axis=1).astype(np.int32)[None]
    cv2.polylines(mask, points, False, 1.0, max(1, int(unit / 12)), cv2.LINE_AA)
    colour, opacity = _ink_colour(rng)
    _blend(paper, mask * opacity, colour)


def _cell_rules(paper: np.ndarray, rng: np.random.Generator) -> None:
    """Printed or drawn rules along some sides of the cell, not always straight or whole."""
    height, width = paper.shape[:2]
    rules = np.zeros((height, width), np.float32)
    inset = lambda: int(rng.uniform(0, 0.06) * min(height, width))  # noqa: E731
    thickness = int(rng.integers(1, 4))
    sides = rng.random(4) < [0.6, 0.6, 0.7, 0.5]
    lean = int(rng.normal(0, 2))
    if sides[0]:
        cv2.line(rules, (0, inset()), (width, inset() + lean), 1.0, thickness)
    if sides[1]:
        y = height - 1 - inset()
        cv2.line(rules, (0, y), (width, y + lean), 1.0, thickness)
    if sides[2]:
        cv2.line(rules, (inset(), 0), (inset() + lean, height), 1.0, thickness)
    if sides[3]:
        x = width - 1 - inset()
        cv2.line(rules, (x, 0), (x + lean, height), 1.0, thickness)
    _blend(paper, rules * rng.uniform(0.5, 0.95), np.array((30, 30, 30), np.float32))


def _scanner_margin(paper: np.ndarray, rng: np.random.Generator, box: tuple) -> None:
    """The black band a scanner leaves past the page's edge, on one side (often the left or
    right, as in bound registers), up to nearly half the crop but never over the number."""
    height, width = paper.shape[:2]
    left, top, right, bottom = box
    side = int(rng.choice(4, p=[0.4, 0.4, 0.1, 0.1]))
    along = width if side < 2 else height
    room = [left, width - right, top, height - bottom][side]
    extent = int(min(rng.uniform(0.03, 0.45) * along, room * 0.8))
    if extent < 1:
        return
    band = np.zeros(along, np.float32)
    band[:extent] = 1.0
    band = cv2.GaussianBlur(band[None], (0, 0), max(0.5, along * 0.005)).ravel()
    band = band if side % 2 == 0 else band[::-1]
    alpha = np.broadcast_to(band[None] if side < 2 else band[:, None], (height, width))
    _blend(paper, np.ascontiguousarray(alpha) * rng.uniform(0.85, 1.0), np.zeros(3, np.float32))


def _photo_scene(ink: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """A phone or webcam photo of paper with the number somewhere on it, anything from tiny
    to filling the frame: maybe lines and a printed word, uneven light, a shadow."""
    side = rng.uniform(480, 1280)
    aspect = float(rng.choice([0.75, 0.5625, 1.0, 1.33]))
    width, height = int(side), int(side * aspect)
    if aspect > 1:
        width, height = int(side / aspect), int(side)
    share = rng.uniform(0.1, 0.9)
    unit = max(8.0, share * width / ink.shape[1] * WORK_HEIGHT)
    ink = _fit(ink, unit)
    h, w = ink.shape
    width, height = max(width, w + 2), max(height, h + 2)
    paper = _paper(height, width, rng, ("white", "white", "grey", "grey", "blue", "yellow", "pink"))
    left, top = _place(ink, (height, width), rng)
    lines = rng.random()
    if lines < 0.35:
        _rules(paper, rng, unit * rng.uniform(1.1, 2.0), top + h, squared=lines < 0.12)
    if rng.random() < 0.3 and top > unit:
        _printed_word(paper, rng, left, top - int(unit * 0.4), unit * 0.5)
    _write_on(paper, ink, left, top, rng)
    _uneven_light(paper, rng)
    if rng.random() < 0.4:
        _shadow(paper, rng)
    return paper, (left, top, left + w, top + h)


def _drawing_scene(ink: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """A number drawn in a paint program: flat canvas, flat ink from a thin pen to a thick
    marker, now and then white on black."""
    unit = rng.uniform(28, 110)
    ink = _fit(ink, unit)
    marker = int(rng.integers(0, max(1, int(unit / 12))))
    if marker:
        ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * marker + 1,) * 2))
    h, w = ink.shape
    margin = int(unit * rng.uniform(0.2, 1.5))
    inverted = rng.random() < 0.2
    background = 0.0 if inverted else 255.0
    paper = np.full((h + 2 * margin, w + 2 * margin, 3), background, np.float32)
    colour = np.full(3, 255.0 - background, np.float32)
    if not inverted and rng.random() < 0.3:
        colour = np.array(INKS[str(rng.choice(["blue", "red", "green"]))], np.float32)
    alpha = np.zeros(paper.shape[:2], np.float32)
    alpha[margin : margin + h, margin : margin + w] = np.clip(ink * 1.3, 0, 1)
    _blend(paper, alpha, colour)
    return paper, (margin, margin, margin + w, margin + h)


_SCENE_MAKERS = {
    "line": _line_scene,
    "cell": _cell_scene,
    "photo": _photo_scene,
    "drawing": _drawing_scene,
}


def _uneven_light(paper: np.ndarray, rng: np.random.Generator) -> None:
    """Light falling off across the page and towards the corners (vignetting)."""
    height, width = paper.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xs / width + np.sin(angle) * ys / height) * rng.uniform(0, 0.35)
    radius = ((xs / width - 0.5) ** 2 + (ys / height - 0.5) ** 2) * rng.uniform(0, 0.8)
    gain = np.clip(1.05 - ramp - radius, 0.35, 1.1)
    paper *= gain[..., None]


def _shadow(paper: np.ndarray, rng: np.random.Generator) -> None:
    """A soft-edged shadow (the phone, a hand) reaching in from one edge of the page."""
    height, width = paper.shape[:2]
    depth = rng.uniform(0.1, 0.45)
    ends = np.sort(rng.uniform(0, 1, 2))
    edge = np.float32([[ends[0], 0], [ends[1], 0], [ends[1] + 0.1, depth], [ends[0] - 0.1, depth]])
    edge[:, 0] = (edge[:, 0] - 0.5) * rng.uniform(1, 3) + 0.5  # wider than the page, at times
    corners = np.stack([edge[:, 0] * width, edge[:, 1] * height], axis=1)
    side = int(rng.integers(0, 4))  # 0 top, 1 bottom, 2 left, 3 right
    if side == 1:
        corners[:, 1] = height - corners[:, 1]
    elif side >= 2:
        corners = np.stack([corners[:, 1] * width / height, corners[:, 0] * height / width], 1)
        if side == 3:
            corners[:, 0] = width - corners[:, 0]
    mask = np.zeros((height, width), np.float32)
    cv2.fillConvexPoly(mask, corners.astype(np.int32), 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, rng.uniform(0.005, 0.04) * max(height, width)))
    paper *= (1 - mask * rng.uniform(0.2, 0.7))[..., None]


# --- The camera or scanner ------------------------------------------------------------------


def _camera(
    image: np.ndarray, box: tuple, scene: str, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Rotation and perspective, then blur and noise, as a phone or scanner adds them."""
    if scene != "drawing":
        turn = {"photo": 8.0, "line": 3.0, "cell": 2.0}[scene]
        tilt = {"photo": 0.06, "line": 0.02, "cell": 0.01}[scene]
        warped, moved = _warp(image, box, rng.normal(0, turn / 2), tilt * rng.random(), rng)
        if _inside(moved, warped.shape):  # else the turn would cut digits off: keep it square
            image, box = warped, moved
        sigma = rng.choice([0, rng.uniform(0.3, 1.2)], p=[0.4, 0.6])
        if sigma:
            image = cv2.GaussianBlur(image, (0, 0), sigma)
        image = image + rng.normal(0, rng.uniform(0, 7), image.shape).astype(np.float32)
        if scene == "cell" and rng.random() < 0.6:
            image = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)
    height, width = image.shape[:2]
    left, top, right, bottom = box
    clipped = (
        int(max(0, np.floor(left))),
        int(max(0, np.floor(top))),
        int(min(width, np.ceil(right))),
        int(min(height, np.ceil(bottom))),
    )
    return np.clip(image, 0, 255).astype(np.uint8), clipped


def _inside(box: tuple, shape: tuple[int, ...]) -> bool:
    left, top, right, bottom = box
    return left >= 0 and top >= 0 and right <= shape[1] and bottom <= shape[0]


def _warp(
    image: np.ndarray, box: tuple, degrees: float, tilt: float, rng: np.random.Generator
) -> tuple[np.ndarray, tuple]:
    """Rotate about the centre and move the corners a little (a camera not square to the
    page); the number's box follows its four corners."""
    height, width = image.shape[:2]
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    jitter = rng.uniform(-tilt, tilt, (4, 2)) * (width, height)
    centre = np.float32([width / 2, height / 2])
    angle = np.deg2rad(degrees)
    rotation = np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = ((source + jitter - centre) @ rotation.T + centre).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(source, target)
    border = tuple(float(v) for v in np.median(image.reshape(-1, 3), axis=0))
    warped = cv2.warpPerspective(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=border
    )
    left, top, right, bottom = box
    corners = np.float32([[[left, top], [right, top], [right, bottom], [left, bottom]]])
    moved = cv2.perspectiveTransform(corners, matrix)[0]
    return warped, (*moved.min(axis=0), *moved.max(axis=0))


def _jpeg(image: np.ndarray, quality: int) -> tuple[np.ndarray, bytes]:
    """The image as a JPEG of that quality brings it back, and the JPEG file."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB")), buffer.getvalue()


# --- Writing a set ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenSet:
    """What `write_numbers` made: the folder, how many images, and their labels file."""

    folder: Path
    images: int
    labels: Path


def write_numbers(
    count: int, folder: str | os.PathLike, bank: DigitBank, seed: int = 0
) -> WrittenSet:
    """Write `count` number images into `folder` (new, or empty) and then `labels.csv`
    (file,label; the labels quoted text, leading zeros kept), each file written atomically,
    so an interrupted run leaves no half image and no labels for missing images."""
    folder = Path(folder)
    _check_empty(folder)
    rows = []
    for index, made in enumerate(number_images(bank, count, seed)):
        name = f"{index:06d}.{'jpg' if made.jpeg else 'png'}"
        _save(folder / name, made)
        rows.append((name, made.label))
    table = folder / "labels.csv"
    files.write_text(table, _labels_csv(rows))
    return WrittenSet(folder, count, table)


def _check_empty(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: is a file; give a new folder for the images.")
    if folder.is_dir() and any(folder.iterdir()):
        raise DataError(f"{folder}: is not empty; give a new or empty folder for the images.")


def _save(path: Path, made: NumberImage) -> None:
    with files.atomic_path(path) as temporary:
        if made.jpeg:
            temporary.write_bytes(made.jpeg)
        else:
            Image.fromarray(made.image).save(temporary, format="PNG")


def _labels_csv(rows: Iterable[tuple[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["file", "label"])
    writer.writerows(rows)
    return buffer.getvalue()
