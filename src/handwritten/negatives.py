"""Images that are not digits, made here, for training a network to answer "not a digit".

A recogniser trained only on digits names a digit for anything. To learn an 11th class it
needs negatives that look like what people actually send instead of a digit: letters and
words, symbols, doodles and scribbles, and several digits in one box. None of those come
from the development drawings in ../shared (which only check the result); they are made
from the fonts the system ships (Debian's DejaVu and Liberation, or Matplotlib's DejaVu),
random pen strokes, shapes and MNIST digits side by side, each drawn dark on a light canvas
with a pen of random width, slanted and squeezed like handwriting, and then normalised by
the one normaliser (`preprocess.to_mnist`), so they reach the network exactly as a user's
drawing would.

Glyphs that a fair person could read as a digit alone (O, o, I, i, l, j, Z, z, S, s, b, g,
q, slashes, brackets, $) are left out, and so are the shapes that are digits (a plain circle
or a single line); some mistakes remain (a scribble can come out as a 1), as in any labels.
"""

from __future__ import annotations

import glob
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from handwritten.preprocess import to_mnist

CANVAS = 160
"""Side of the canvas each negative is drawn on, in pixels: a drawing pad at phone scale."""
LETTERS = "ABCDEFGHJKLMNPQRTUVWXYacdefhkmnprtuvwxy"
"""Letters, but not those a fair reader could take for a digit (O o I i l Z z S s b g q j).

Printed, A B D G J Q T U t u y stay, though handwritten they are left out of the "not a
digit" examples (`mixture.DIGIT_LIKE`). Without them (one run, seed 42, 7 Dec) the lean
refused fewer non-digits (87.0% against 88.7%) and more real digits: 0.50% of MNIST's
validation images against 0.30%, 1.87% of UNIPEN's validation writers against 1.46%, 2.22%
of optdigits-orig against 1.37%."""
SYMBOLS = "+-×÷=≠<>?#%&@*€£~^→←↑↓↔∞✓✗★☆♥♦♣♠☺πΣΩλμ√≈"  # noqa: RUF001 (the multiplication sign, not an x)
"""Symbols of more than one stroke or lying flat: a lone slash, bracket or bar reads as a 1."""
WORD_LETTERS = LETTERS + "bgloqsz"
"""Words of 2-5 letters: a letter here may be digit-like alone; in a word it is not."""
FONT_GLOBS = ("/usr/share/fonts/truetype/**/*.ttf", "/usr/share/fonts/opentype/**/*.otf")
KINDS = ("letter", "word", "symbol", "shape", "scribble", "digits")
"""What a negative can be."""
SHARES = {"letter": 3, "word": 1, "symbol": 1, "shape": 1, "scribble": 1, "digits": 1}
"""How many of each kind in every eight negatives: a letter is what people most often send
instead of a digit."""


def make_negatives(count: int, seed: int, digits: np.ndarray | None = None) -> np.ndarray:
    """`count` non-digit images, (count, 28, 28) uint8 like preprocessing's output.

    `digits` (MNIST images, white on black) feed the "several digits in one box" kind;
    without them that kind is left out. The same seed gives the same images.
    """
    rng = np.random.default_rng(seed)
    kinds = [
        kind
        for kind in KINDS
        for _ in range(SHARES[kind])
        if kind != "digits" or digits is not None
    ]
    images = []
    while len(images) < count:
        kind = kinds[len(images) % len(kinds)]
        image = to_mnist(_handwritten(_DRAWERS[kind](rng, digits), rng))
        if image is not None:
            images.append(image)
    return np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)


def kind_seed(name: str, seed: int) -> int:
    """A seed per purpose (training, validation) that does not depend on call order."""
    return (zlib.crc32(name.encode()) + seed) % 2**31


@cache
def fonts() -> tuple[str, ...]:
    """The system's TrueType fonts, or Matplotlib's own DejaVu where there are none."""
    found = sorted({path for pattern in FONT_GLOBS for path in glob.glob(pattern, recursive=True)})
    if found:
        return tuple(found)
    import matplotlib

    return tuple(sorted(glob.glob(str(Path(matplotlib.get_data_path()) / "fonts/ttf/*.ttf"))))


def _text(rng: np.random.Generator, text: str) -> Image.Image:
    """`text` in a random font, size and weight, centred on a white canvas."""
    canvas = Image.new("L", (CANVAS * 2, CANVAS), 255)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.truetype(str(rng.choice(fonts())), int(rng.integers(60, 110)))
    box = draw.textbbox((0, 0), text, font=font)
    left = (canvas.width - (box[2] - box[0])) // 2 - box[0]
    top = (canvas.height - (box[3] - box[1])) // 2 - box[1]
    stroke = int(rng.integers(0, 4))
    draw.text((left, top), text, fill=0, font=font, stroke_width=stroke, stroke_fill=0)
    return canvas


def _letter(rng: np.random.Generator, digits: np.ndarray | None) -> Image.Image:
    return _text(rng, str(rng.choice(list(LETTERS))))


def _word(rng: np.random.Generator, digits: np.ndarray | None) -> Image.Image:
    letters = rng.choice(list(WORD_LETTERS), size=int(rng.integers(2, 6)))
    return _text(rng, "".join(letters))


def _symbol(rng: np.random.Generator, digits: np.ndarray | None) -> Image.Image:
    return _text(rng, str(rng.choice(list(SYMBOLS))))


def _points(rng: np.random.Generator, count: int, margin: int = 20) -> np.ndarray:
    return rng.uniform(margin, CANVAS - margin, size=(count, 2))


def _pen(rng: np.random.Generator) -> int:
    return int(rng.integers(4, 14))


def _scribble(rng: np.random.Generator, digits: np.ndarray | None) -> Image.Image:
    """A random walk of 5-12 points, smoothed: the scrawl of someone testing the pen."""
    control = _points(rng, int(rng.integers(5, 13)))
    steps = np.linspace(0, len(control) - 1, 25 * len(control))
    path = np.stack([np.interp(steps, np.arange(len(control)), control[:, i]) for i in (0, 1)], 1)
    kernel = np.ones(9) / 9
    smooth = np.stack([np.convolve(path[:, i], kernel, mode="valid") for i in (0, 1)], 1)
    canvas = Image.new("L", (CANVAS, CANVAS), 255)
    ImageDraw.Draw(canvas).line([tuple(p) for p in smooth], fill=0, width=_pen(rng), joint="curve")
    return canvas


def _shape(rng: np.random.Generator, digits: np.ndarray | None) -> Image.Image:
    """A doodle: a polygon, a star, a grid, a zigzag, a spiral, a house or a face."""
    canvas = Image.new("L", (CANVAS, CANVAS), 255)
    draw = ImageDraw.Draw(canvas)
    pen = _pen(rng)
    _SHAPES[int(rng.integers(len(_SHAPES)))](draw, rng, pen)
    return canvas


def _polygon(draw: ImageDraw.ImageDraw, rng: np.random.Generator, pen: int) -> None:
    sides = int(rng.integers(3, 7))
    angles = np.sort(rng.uniform(0, 2 * np.pi, sides)) if rng.random() < 0.3 else None
    angles = angles if angles is not None else np.linspace(0, 2 * np.pi, sides, endpoint=False)
    _closed(draw, _around(angles + rng.uniform(0, np.pi), np.full(sides, 55.0)), pen)


def _star(draw: ImageDraw.ImageDraw, rng: np.random.Generator, pen: int) -> None:
    tips = int(rng.integers(4, 8))
    angles = np.linspace(0, 2 * np.pi, 2 * tips, endpoint=False) + rng.uniform(0, np.pi)
    radii = np.where(np.arange(2 * tips) % 2 == 0, 60.0, rng.uniform(18, 35))
    _closed(draw, _around(angles, radii), pen)


def _grid(draw: ImageDraw.ImageDraw, rng: np.random.Generator, pen: int) -> None:
    lines = int(rng.integers(2, 5))
    for offset in np.linspace(35, CANVAS - 35, lines):
        draw.line([(offset, 20), (offset, CANVAS - 20)], fill=0, width=pen)
        draw.line([(20, offset), (CANVAS - 20, offset)], fill=0, width=pen)


def _zigzag(draw: ImageDraw.ImageDraw, rng: np.random.Generator, pen: int) -> None:
    turns = int(rng.integers(4, 9))
    xs = np.linspace(20, CANVAS - 20, turns)
    ys = np.where(np.arange(turns) % 2 == 0, 50, 110) + rng.normal(0, 6, turns)
    draw.line(list(zip(xs, ys, strict=True)), fill=0, width=pen, joint="curve")


def _spiral(draw: ImageDraw.ImageDraw, rng: np.random.Generator, pen: int) -> None:
    turns = rng.uniform(2, 4)
    angles = np.linspace(0, 2 * np.pi * turns, 200)
    _open(draw, _around(angles, np.linspace(5, 65, 200)), pen)


def _house(draw: ImageDraw.ImageDraw, rng: np.random.Generator, pen: int) -> None:
    draw.rectangle([35, 75, 125, 140], outline=0, width=pen)
    draw.line([(30, 78), (80, 25), (130, 78)], fill=0, width=pen, joint="curve")
    if rng.random() < 0.7:
        draw.rectangle([70, 105, 90, 140], outline=0, width=max(3, pen // 2))


def _face(draw: ImageDraw.ImageDraw, rng: np.random.Generator, pen: int) -> None:
    draw.ellipse([20, 20, 140, 140], outline=0, width=pen)
    for x in (55, 105):
        draw.ellipse([x - 7, 55, x + 7, 69], fill=0)
    mouth = (180, 360) if rng.random() < 0.2 else (20, 160)
    draw.arc([45, 60, 115, 115], *mouth, fill=0, width=pen)


def _heart(draw: ImageDraw.ImageDraw, rng: np.random.Generator, pen: int) -> None:
    t = np.linspace(0, 2 * np.pi, 120)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    _closed(draw, np.stack([80 + 3.8 * x, 80 + 3.8 * y], 1), pen)


def _arrow(draw: ImageDraw.ImageDraw, rng: np.random.Generator, pen: int) -> None:
    angle = rng.uniform(0, 2 * np.pi)
    tail, tip = _around(np.array([angle + np.pi, angle]), np.array([60.0, 60.0]))
    draw.line([tuple(tail), tuple(tip)], fill=0, width=pen)
    for side in (-0.5, 0.5):
        barb = _around(np.array([angle + np.pi + side]), np.array([30.0]), centre=tip)[0]
        draw.line([tuple(tip), tuple(barb)], fill=0, width=pen)


_SHAPES: tuple[Callable[[ImageDraw.ImageDraw, np.random.Generator, int], None], ...] = (
    _polygon,
    _star,
    _grid,
    _zigzag,
    _spiral,
    _house,
    _face,
    _heart,
    _arrow,
)


def _around(angles: np.ndarray, radii: np.ndarray, centre=(CANVAS / 2, CANVAS / 2)) -> np.ndarray:
    return np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1)


def _closed(draw: ImageDraw.ImageDraw, points: np.ndarray, pen: int) -> None:
    _open(draw, np.concatenate([points, points[:1]]), pen)


def _open(draw: ImageDraw.ImageDraw, points: np.ndarray, pen: int) -> None:
    draw.line([tuple(p) for p in points], fill=0, width=pen, joint="curve")


def _digits(rng: np.random.Generator, digits: np.ndarray | None) -> Image.Image:
    """Two to four MNIST digits side by side, touching or apart: a number in one box."""
    count = int(rng.integers(2, 5))
    chosen = digits[rng.integers(len(digits), size=count)]
    step = int(rng.integers(16, 26))
    row = np.zeros((28, step * (count - 1) + 28), np.uint8)
    for i, digit in enumerate(chosen):
        region = row[:, i * step : i * step + 28]
        np.maximum(region, digit, out=region)
    return Image.fromarray(255 - row).resize((row.shape[1] * 4, 112), Image.BILINEAR)


_DRAWERS: dict[str, Callable[[np.random.Generator, np.ndarray | None], Image.Image]] = {
    "letter": _letter,
    "word": _word,
    "symbol": _symbol,
    "shape": _shape,
    "scribble": _scribble,
    "digits": _digits,
}


def _handwritten(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Slant, squeeze and rotate a drawing like a hand does, and vary the pen's width."""
    shear, squeeze = rng.uniform(-0.35, 0.35), rng.uniform(0.75, 1.25)
    angle = rng.uniform(-0.3, 0.3)
    cos, sin = np.cos(angle) * squeeze, np.sin(angle)
    width, height = image.size
    cx, cy = width / 2, height / 2
    matrix = (cos, -sin + shear, cx - cos * cx - (-sin + shear) * cy, sin, np.cos(angle), 0.0)
    matrix = (*matrix[:5], cy - sin * cx - np.cos(angle) * cy)
    image = image.transform(image.size, Image.AFFINE, matrix, Image.BILINEAR, fillcolor=255)
    pen = int(rng.integers(-1, 3))
    if pen > 0:
        image = image.filter(ImageFilter.MinFilter(2 * pen + 1))
    elif pen < 0:
        image = image.filter(ImageFilter.MaxFilter(3))
    return image
