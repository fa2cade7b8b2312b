"""Find the digits of one handwritten number on a photo, scan, webcam frame or drawing.

`preprocess` normalises one digit; this module finds where the digits are. A phone photo of
paper is not a drawing: the light falls off towards the corners, a hand or the phone casts a
shadow, the page edge and the table show, the paper is ruled or squared, a scanner adds dark
margins, the ink may be pencil, blue or light chalk on a dark board, and the digits may be
a few dozen pixels tall in a 12-megapixel photo. One global ink threshold (what
`preprocess.split_digits` does, and rightly for clean drawings) turns all of that into ink.

The steps, each in OpenCV so that no Python loop runs over pixels:

1. Work at a bounded size (`WORK_SIDE`): a big photo is reduced first, a tiny crop enlarged
   so that the morphology below has room; a second, finer pass reads the number again from
   the original pixels when its digits came out too small to read.
2. Flatten the lighting: the paper is estimated by removing the strokes (a grey-level closing,
   i.e. a maximum filter on the bright paper, then a median) and each pixel is divided by it,
   per colour channel, so shadows, vignetting, tinted paper and coloured ink are all reduced
   to "how much darker than the paper around it". Light ink on a dark board is inverted first.
   What shading that estimate leaves where the light falls off steeply (vignetted corners)
   is measured on the paper-like pixels alone and taken off.
3. Separate ink from paper relative to the image's own noise and ink contrast (hysteresis:
   sure ink, plus fainter ink beside it), not with a fixed grey level.
4. Remove what is not writing: long thin horizontal or vertical runs (ruled and squared
   paper, table rules, guide lines, page and scanner edges) with the strokes that cross them
   put back, solid areas much thicker than a pen stroke (shadows, the table beyond the page),
   and specks.
   The stroke width that these sizes build on is measured on stroke-shaped pieces, leaving
   out thin ruled lines and pieces spanning the image (page edges, the table beyond).
5. Group what is left into digits of the main text line: pieces one above the other are one
   digit (the bar of a 5, a broken stroke), components of a similar height near a common
   line belong to the number, a piece too wide for one digit is cut where it has least ink,
   and one holding two loops side by side (00, 60) is cut between them.

Sizes are measured relative to the estimated stroke width and digit height of the image
itself, so the same parameters serve a 46x34 table cell and a 12-megapixel photo.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from handwritten.preprocess import gray_on_white, has_transparency

# Longest side of the first pass: enough for digits 1/40 of the photo tall, fast on any photo.
WORK_SIDE = 1280
# A small crop is enlarged to at least this longest side so that kernels of a few stroke
# widths still fit inside a digit.
MIN_WORK_SIDE = 512
# Digit height aimed for when a second pass re-reads small digits from the original pixels.
FINE_HEIGHT = 48
SMALL_HEIGHT = 28
MAX_DIGITS = 20
# A border whose grey levels vary by at most this much (5th to 95th percentile) is a plain
# canvas: a drawing, not a photo.
FLAT_BORDER = 6
# A single-digit image is a drawing when this share of its outermost pixels is the canvas's
# colour: a stroke may run off the edge of a small canvas, a photo's paper is never that even.
PLAIN_BORDER = 0.8
# No photo of a digit is this small: an image this size is an MNIST-sized drawing.
SMALL_CANVAS = 64

# Ink thresholds, in units of the noise of the flattened paper (robust standard deviation).
STRONG_NOISE = 6.0
WEAK_NOISE = 3.0
MIN_STRONG = 0.1
# Paper this even (a robust standard deviation of its darkness) is a digital canvas: no
# show-through or JPEG ringing to guard against, so faint strokes beside dark ones are ink.
CLEAN_NOISE = 0.005
MIN_WEAK = 0.05
# Darkness up to this is paper that the lighting estimate got wrong, or faint ink too sparse
# to matter, when the remaining shading is measured (a stroke's core is far darker).
SHADE_MAX = 2 * MIN_STRONG

# A line is a thin run at least this many digit heights long (or spanning most of the image).
LINE_HEIGHTS = 2.5
LINE_SPAN = 0.8
# The stroke width is measured on pieces at least this many times longer than thick.
STROKE_ELONGATION = 3.0
# A straight run this many times longer than thick is a drawn line, not a pen stroke.
LINE_RATIO = 20
# Pieces spanning the image are left out of the stroke width only while the others hold at
# least this share of the outline.
RUN_SHARE = 0.15
# Solid regions at least this many stroke widths thick are shadows or edges, not writing.
BLOB_STROKES = 3.0
# ...and cover at least a square this many such widths a side: a shadow or the table, not a
# blot of ink where strokes cross.
BLOB_SIDE = 2.0
# Pieces whose longer side is under this fraction of the digit height are specks.
SPECK_HEIGHT = 0.25
# Nothing smaller than this (working pixels) is read: it is grain, and unreadable anyway.
MIN_DIGIT_SIDE = 8
# A piece this much wider than the line is tall holds touching digits.
SPLIT_WIDTH = 1.15
# Each part of a cut must stand at least this fraction of the piece's height.
PART_HEIGHT = 0.6
DIGIT_ASPECT = 0.85
# Two loops are side by side (two digits) when they share this share of the shorter's rows.
SIDE_BY_SIDE = 0.5


@dataclass
class DigitBox:
    """One digit found on a page.

    `box` is (left, top, right, bottom) in the pixel coordinates of the image given to
    `find_digits`, so a caller can draw it on the original photo. `ink` is the digit alone
    (float32, 0 paper to 1 full ink, white on black, any size), ready for
    `preprocess.ink_to_mnist`.
    """

    box: tuple[int, int, int, int]
    ink: np.ndarray


@dataclass
class _Page:
    """The cleaned ink of one image at working scale, with the sizes measured on it."""

    ink: np.ndarray  # float32 0-1, soft ink
    mask: np.ndarray  # uint8 0/1, what counts as ink after cleaning
    scale: float  # working pixels per original pixel
    offset: tuple[int, int]  # (left, top) of the working area in original pixels
    stroke: float  # typical stroke width, working pixels


@dataclass
class _Group:
    """Some connected pieces of ink taken together as one digit (or touching digits)."""

    left: int
    top: int
    right: int  # exclusive
    bottom: int  # exclusive
    labels: list[int]

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def merged(self, other: _Group) -> _Group:
        return _Group(
            min(self.left, other.left),
            min(self.top, other.top),
            max(self.right, other.right),
            max(self.bottom, other.bottom),
            self.labels + other.labels,
        )


def find_digits(image: Image.Image) -> list[DigitBox]:
    """The digits of the main number in the image, in reading order (at most `MAX_DIGITS`).

    The main number is the text line with the most digit-sized ink; other writing, lines,
    shadows and specks are ignored. An image without ink gives an empty list.
    """
    page = _clean(image, _work_scale(image.size))
    if page is None:
        return []
    digits = _read_line(page)
    if not digits:
        return []
    height = float(np.median([(b[3] - b[1]) * page.scale for b, _ in digits]))
    if height < SMALL_HEIGHT and page.scale < 1.0:
        finer = _reread_finer(image, page, digits, height)
        if finer:
            digits = finer
            page = None
    return [_digit_box(box, ink) for box, ink in digits]


def find_digit(image: Image.Image) -> DigitBox | None:
    """The single digit of a photo or drawing of one digit: the largest piece of writing.

    Pieces one above the other are joined, as in `find_digits`, but nothing is split, since a
    wide single digit is more likely here than two touching ones.
    """
    page = _clean(image, _work_scale(image.size))
    if page is None:
        return None
    labels, pieces = _pieces(page)
    if not pieces:
        return None
    groups = _drop_small(_join_stacked(_main_line(pieces)))
    if not groups:
        return None
    whole = groups[0]
    for group in groups[1:]:
        whole = whole.merged(group)
    box, ink = _group_ink(page, labels, whole)
    return _digit_box(box, ink)


def is_plain_canvas(image: Image.Image) -> bool:
    """Whether the image is a drawing on a plain canvas (or ink in the alpha channel), not a
    photo: a drawing needs no page cleaning, and is read better without it.

    Only the outermost rows and columns are looked at, so this costs nothing on a big photo.
    """
    if max(image.size) <= SMALL_CANVAS:
        return True
    if has_transparency(image):
        alpha = np.asarray(image.convert("RGBA").getchannel("A"))
        if np.median(alpha) < 128:
            return True
    width, height = image.size
    strips = [(0, 0, width, 1), (0, height - 1, width, height), (0, 0, 1, height)]
    strips.append((width - 1, 0, width, height))
    border = 255 * np.concatenate([gray_on_white(image.crop(strip)).ravel() for strip in strips])
    near_paper = np.abs(border - np.median(border)) <= FLAT_BORDER / 2
    return bool(near_paper.mean() >= PLAIN_BORDER)


def _work_scale(size: tuple[int, int]) -> float:
    longest = max(size)
    if longest > WORK_SIDE:
        return WORK_SIDE / longest
    if longest < MIN_WORK_SIDE:
        return min(8.0, MIN_WORK_SIDE / longest)
    return 1.0


def _digit_box(box: tuple[int, int, int, int], ink: np.ndarray) -> DigitBox:
    return DigitBox(box=box, ink=ink)


# --- from a Pillow image to a flattened darkness map -------------------------------------


def _pixels(image: Image.Image, scale: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(RGB uint8, None) for an opaque image or (None, alpha float) for ink stored as alpha.

    A large image is first reduced by Pillow's integer box reduction (fast, and before the
    array copy), then resized exactly with OpenCV.
    """
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if has_transparency(image) else "RGB")
    width = max(1, round(image.width * scale))
    height = max(1, round(image.height * scale))
    factor = int(1 / scale) if scale < 1 else 1
    if factor >= 2:
        image = image.reduce(factor)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    alpha = None
    if image.mode in ("LA", "RGBA"):
        alpha = array[..., -1]
        array = array[..., :-1]
        if alpha.min() == 255:
            alpha = None
    interpolation = cv2.INTER_AREA if width < image.width else cv2.INTER_CUBIC
    if (width, height) != image.size:
        array = cv2.resize(array, (width, height), interpolation=interpolation)
        if alpha is not None:
            alpha = cv2.resize(alpha, (width, height), interpolation=interpolation)
    if array.ndim == 2:
        array = array[..., None]
    if alpha is not None:
        weight = alpha.astype(np.float32)[..., None] / 255.0
        if np.median(weight) < 0.5:
            # Ink only in the alpha channel (a transparent canvas): the alpha is the ink.
            return None, weight[..., 0]
        array = np.uint8(np.round(array * weight + 255.0 * (1.0 - weight)))
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array), None


def _darkness(rgb: np.ndarray) -> np.ndarray:
    """How much darker than the surrounding paper each pixel is, 0-1, strongest channel.

    The paper is estimated at a small size (lighting is smooth) by a maximum filter wider
    than a stroke, which removes the writing, then a median, which removes what is left of it
    and of the paper's grain. Light ink on a dark ground (a board, a white-on-black drawing)
    is inverted first; which one the image holds is told by the tails of its difference from
    a local median: writing is a thin tail of pixels much darker (or much lighter) than the
    ground around them, whatever the lighting (`writing_is_lighter`).
    """
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    small_size = _small_size(gray.shape)
    side = max(small_size)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.float32)
    low, high = np.percentile(border.mean(axis=-1), [5, 95])
    if high - low <= FLAT_BORDER:
        # A drawing on a plain canvas: the canvas is the border's colour everywhere, as
        # `preprocess` reads drawings; a local estimate would only eat into thick strokes.
        paper = np.median(border, axis=0)
        if paper.mean() < 128:
            rgb, paper = 255 - rgb, 255 - paper
        ratio = rgb.astype(np.float32) / np.maximum(paper, 1.0)
        return np.clip(1.0 - _channel_min(ratio), 0.0, 1.0)
    if writing_is_lighter(gray):
        rgb = 255 - rgb
    small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA)
    size = _odd(side / 12)
    paper = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    paper = cv2.medianBlur(paper, min(_odd(side / 6), 255))
    paper = cv2.GaussianBlur(paper, (0, 0), side / 60)
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    ratio = rgb.astype(np.float32) / np.maximum(paper.astype(np.float32), 1.0)
    darkness = np.clip(1.0 - _channel_min(ratio), 0.0, 1.0)
    return _remove_shading(darkness, small_size)


def _small_size(shape: tuple[int, ...]) -> tuple[int, int]:
    """(width, height) of an image reduced to at most 320 pixels on its longer side, the size
    at which the paper and the ground are estimated (lighting is smooth)."""
    height, width = shape[:2]
    scale = min(1.0, 320 / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def writing_is_lighter(gray: np.ndarray, across_line: bool = False) -> bool:
    """Whether the writing in a grey uint8 image is lighter than its ground (chalk on a
    board, white on black) rather than darker, as windows a sixth and a half of the image's
    longer side all agree (`_window_says_lighter`). `across_line` adds a window half its
    shorter side, for a crop of one line: far wider than high, it is otherwise judged only
    by windows taller than itself, whose median is a black scanner margin or a dark rule as
    often as the paper."""
    small_size = _small_size(gray.shape)
    small_gray = cv2.resize(gray, small_size, interpolation=cv2.INTER_AREA)
    windows = [max(small_size) / 6, max(small_size) / 2]
    if across_line:
        windows.append(min(small_size) / 2)
    return all(_window_says_lighter(gray, small_gray, window) for window in windows)


def _window_says_lighter(gray: np.ndarray, small_gray: np.ndarray, window: float) -> bool:
    """Whether the image's lightest pixels stand further above the median around them
    (`window` pixels wide, at the small size) than its darkest stand below it.

    One width is not enough: a marker's stroke close up can fill much of a window a sixth
    of the image wide, whose median is then ink, and the paper beside the stroke looks like
    light writing on a dark ground. So the writing counts as light only where a window half
    the image wide, whose median is the paper again, agrees.
    """
    height, width = gray.shape
    ground = cv2.medianBlur(small_gray, min(_odd(window), 255))
    ground = cv2.resize(ground, (width, height), interpolation=cv2.INTER_LINEAR)
    step = max(1, int(np.sqrt(height * width / 250_000)))
    residual = gray[::step, ::step].astype(np.int16) - ground[::step, ::step]
    darker, lighter = np.percentile(residual, [0.5, 99.5])
    return bool(lighter > -darker)


def _channel_min(array: np.ndarray) -> np.ndarray:
    """The least of the colour channels (much faster than `array.min(axis=-1)`)."""
    least = array[..., 0]
    for channel in range(1, array.shape[-1]):
        least = np.minimum(least, array[..., channel])
    return least


def _remove_shading(darkness: np.ndarray, small_size: tuple[int, int]) -> np.ndarray:
    """Subtract the shading the paper estimate left behind.

    The brightest-paper estimate runs ahead of light that falls off steeply (vignetted
    corners, the edge of a shadow), leaving smooth darkness there that a threshold turns into
    grainy ink. That residue is the local mean darkness of what looks like paper (pixels not
    much darker than `SHADE_MAX`), taken at a small size; strokes are left out of the mean, so
    their darkness is kept.
    """
    small = cv2.resize(darkness, small_size, interpolation=cv2.INTER_AREA)
    sigma = max(small_size) / 24
    # Shading keeps its slope past the image's edge (odd reflection): the darkest corner is
    # at the edge, and a mirrored or repeated border would average it away.
    pad = int(3 * sigma) + 1
    small = np.pad(small, pad, mode="reflect", reflect_type="odd")
    paper = np.float32(small < SHADE_MAX)
    shade = cv2.GaussianBlur(small * paper, (0, 0), sigma)
    shade /= np.maximum(cv2.GaussianBlur(paper, (0, 0), sigma), 1e-3)
    shade = shade[pad:-pad, pad:-pad]
    # Shading as even as the paper's own level is no harm: the ink thresholds are measured
    # from that level. Only where it rises above it is it taken off.
    shade = np.maximum(shade - float(np.median(shade)), 0.0)
    height, width = darkness.shape
    shade = cv2.resize(shade, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(darkness - shade, 0.0, 1.0)


def _odd(value: float) -> int:
    return max(3, int(value) // 2 * 2 + 1)


# --- ink and cleaning --------------------------------------------------------------------


def _clean(image: Image.Image, scale: float, offset: tuple[int, int] = (0, 0)) -> _Page | None:
    rgb, alpha = _pixels(image, scale)
    darkness = alpha if alpha is not None else _darkness(rgb)
    mask = _ink_mask(darkness)
    if mask is None:
        return None
    stroke = _stroke_width(mask)
    mask = _remove_blobs(mask, stroke)
    if not mask.any():
        return None
    height = _text_height(mask, stroke)
    mask = _remove_lines(mask, stroke, height)
    if not mask.any():
        return None
    ink = _soft_ink(darkness, mask)
    return _Page(ink=ink, mask=mask, scale=scale, offset=offset, stroke=stroke)


def _ink_mask(darkness: np.ndarray) -> np.ndarray | None:
    """Sure ink plus fainter ink right beside it (a stroke's anti-aliased rim, lighter pencil).

    Sure ink is well above the paper's noise (a robust standard deviation) and at least about
    half as dark as the darkest ink in the image (its 99.9th percentile), so faint marks such
    as writing showing through the paper, JPEG ringing or a printed background pattern fall
    below it while a pale pencil number on clean paper does not.
    """
    step = max(1, int(np.sqrt(darkness.size / 250_000)))
    sample = darkness[::step, ::step]
    centre = float(np.median(sample))
    noise = max(1.4826 * float(np.median(np.abs(sample - centre))), CLEAN_NOISE)
    level = float(np.percentile(sample, 99.9))
    relative = (0.45 if noise > CLEAN_NOISE else 0.2) * level
    strong = max(
        MIN_STRONG,
        centre + 4 * noise,
        min(centre + STRONG_NOISE * noise, 0.6 * level),
        relative,
    )
    weak = max(0.5 * strong, centre + WEAK_NOISE * noise, MIN_WEAK)
    sure = np.uint8(darkness >= strong)
    if not sure.any():
        return None
    near = cv2.dilate(sure, np.ones((3, 3), np.uint8), iterations=2)
    return np.uint8((sure > 0) | ((darkness >= weak) & (near > 0)))


def _label_means(labels: np.ndarray, values: np.ndarray, where: np.ndarray, count: int):
    """The mean of `values` over the pixels of each label (0 where a label has none)."""
    chosen = labels[where]
    total = np.bincount(chosen, weights=values[where], minlength=count)
    pixels = np.bincount(chosen, minlength=count)
    return total / np.maximum(pixels, 1)


def _stroke_width(mask: np.ndarray) -> float:
    """The typical pen width: twice area over outline per piece, weighted by outline length.

    Only pieces shaped like strokes (several times longer than thick: no specks or blobs)
    are measured, and not what is plainly no writing: thin straight lines (ruled paper can
    hold more outline than all the writing) and pieces spanning the image (a page edge or
    the table beyond it, a band far thicker than a pen). Those are set aside only while the
    rest still holds a fair share of the outline: in a close-up the digit itself may span
    the image.
    """
    rest = mask & (1 - _thin_lines(mask))
    widths, weights, spanning = _piece_widths(rest)
    writing = ~spanning
    if weights[writing].sum() >= RUN_SHARE * weights.sum() and writing.any():
        widths, weights = widths[writing], weights[writing]
    if not weights.any():
        widths, weights, _ = _piece_widths(mask)
    if not weights.any():
        return 2.0
    return max(1.5, _weighted_median(widths, weights))


def _thin_lines(mask: np.ndarray) -> np.ndarray:
    """Ink in straight horizontal or vertical runs at least an eighth of the image long (a
    slight slope allowed) and `LINE_RATIO` times longer than thick, grown by a pixel to
    take in their ragged rims. A pen stroke, even a digit filling a close-up, is stubbier."""
    height, width = mask.shape
    depth = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    lines = np.zeros_like(mask)
    for axis, kernel in ((0, (1, _odd(width / 8))), (1, (_odd(height / 8), 1))):
        runs = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones(kernel, np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(runs, connectivity=8)
        if count <= 1:
            continue
        length = stats[:, cv2.CC_STAT_WIDTH if axis == 0 else cv2.CC_STAT_HEIGHT]
        # The thickness of the ink the run lies in (a run can be a sliver of a slanted
        # stroke): across a band, the depth inside the ink averages a quarter of its width.
        thickness = 4.0 * _label_means(labels, depth, runs > 0, count)
        thin = length >= LINE_RATIO * thickness
        thin[0] = False
        lines |= np.uint8(thin[labels])
    return cv2.dilate(lines, np.ones((3, 3), np.uint8))


def _piece_widths(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each stroke-shaped piece's width (twice area over outline), its outline length, and
    whether it spans most of the image's width or height."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    outline = mask & ~cv2.erode(mask, np.ones((3, 3), np.uint8))
    perimeter = np.bincount(labels[outline > 0], minlength=count)[1:].astype(np.float64)
    area = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    widths = 2.0 * area / np.maximum(perimeter, 1.0)
    across = stats[1:, cv2.CC_STAT_WIDTH] / mask.shape[1]
    down = stats[1:, cv2.CC_STAT_HEIGHT] / mask.shape[0]
    longest = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    keep = (area >= 8) & (perimeter > 0) & (longest >= STROKE_ELONGATION * widths)
    spanning = np.maximum(across, down) >= LINE_SPAN
    return widths[keep], perimeter[keep], spanning[keep]


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _remove_blobs(mask: np.ndarray, stroke: float) -> np.ndarray:
    """Clear solid areas several pen widths thick: shadows, the table past the page edge,
    a scanner's black margin. Strokes that only touch them keep most of their length."""
    size = _odd(BLOB_STROKES * stroke)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    solid = cv2.morphologyEx(mask, cv2.MORPH_OPEN, disk)
    if not solid.any():
        return mask
    # A blot where strokes cross or a pen rested is solid too, but small.
    _, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    large = stats[:, cv2.CC_STAT_AREA] >= (BLOB_SIDE * size) ** 2
    large[0] = False
    if not large.any():
        return mask
    solid = np.uint8(large[labels])
    grow = _odd(stroke)
    solid = cv2.dilate(solid, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
    return mask & (1 - solid)


def _text_height(mask: np.ndarray, stroke: float) -> float:
    """The height of the writing: median height of the digits weighted by their ink, after
    long thin runs (lines) are set aside. Pieces one above the other count as one digit, as
    they are read: a stroke broken in two must not halve the height, or a 1 beside it would
    look like a rule much taller than the writing."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    stats = stats[1:]
    if not len(stats):
        return 4.0
    digits = _stack_pieces(stats[_writing_like(stats, stroke)])
    height = digits[:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    return max(4.0, _weighted_median(height, digits[:, cv2.CC_STAT_AREA].astype(np.float64)))


def _writing_like(stats: np.ndarray, stroke: float) -> np.ndarray:
    """Pieces shaped like pen strokes: longer than a few strokes, not solid, not a long thin
    run (a rule, a 1); all of them when none is."""
    width = stats[:, cv2.CC_STAT_WIDTH]
    height = stats[:, cv2.CC_STAT_HEIGHT]
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    thickness = area / np.maximum(1, np.maximum(width, height))
    keep = (np.maximum(width, height) >= 3 * stroke) & (thickness < 4 * stroke)
    keep &= np.maximum(width, height) < 8 * np.minimum(width, height)
    return keep if keep.any() else np.ones_like(keep)


def _stack_pieces(stats: np.ndarray) -> np.ndarray:
    """Component statistics (left, top, width, height, area) with pieces that share most of
    the narrower one's columns merged into one box, left to right."""
    merged: list[list[int]] = []
    for left, top, width, height, area in sorted(stats.tolist()):
        if merged:
            last = merged[-1]
            shared = min(last[0] + last[2], left + width) - max(last[0], left)
            if shared > 0.5 * min(last[2], width):
                right, bottom = (
                    max(last[0] + last[2], left + width),
                    max(last[1] + last[3], top + height),
                )
                last[0], last[1] = min(last[0], left), min(last[1], top)
                last[2], last[3] = right - last[0], bottom - last[1]
                last[4] += area
                continue
        merged.append([left, top, width, height, area])
    return np.array(merged, dtype=np.int64).reshape(-1, 5)


def _remove_lines(mask: np.ndarray, stroke: float, text_height: float) -> np.ndarray:
    """Clear ruled lines, table rules and edges, then give back the strokes crossing them.

    A horizontal opening keeps only runs longer than an eighth of the image (tolerating a
    slight slope, since each run only needs to be straight over that length); such a run is
    a line when it is much longer than the digits are tall or spans the image. Where a line
    is removed, ink directly above and below it is reconnected across it.
    """
    cleaned = mask.copy()
    height, width = mask.shape
    for axis in (0, 1):
        extent = width if axis == 0 else height
        run = max(_odd(extent / 8), _odd(1.5 * text_height) if axis == 1 else 3)
        kernel = np.ones((1, run) if axis == 0 else (run, 1), np.uint8)
        opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
        if count <= 1:
            continue
        length = stats[1:, cv2.CC_STAT_WIDTH if axis == 0 else cv2.CC_STAT_HEIGHT]
        limit = LINE_HEIGHTS * text_height if axis == 0 else 1.8 * text_height
        is_line = (length >= limit) | (
            (length >= LINE_SPAN * extent) & (length >= 1.5 * text_height)
        )
        if not is_line.any():
            continue
        lines = np.isin(labels, np.flatnonzero(is_line) + 1)
        lines = cv2.dilate(np.uint8(lines), np.ones((3, 3), np.uint8)) & mask
        without = cleaned & (1 - lines)
        reach = _odd(4 * stroke + 3)
        across = np.ones((reach, 1) if axis == 0 else (1, reach), np.uint8)
        bridged = cv2.morphologyEx(without, cv2.MORPH_CLOSE, across)
        cleaned = without | (lines & bridged)
    return cleaned


def _soft_ink(darkness: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Darkness scaled so the core of a stroke is 1, as `ink_to_mnist` expects."""
    values = darkness[mask > 0]
    level = float(np.percentile(values, 90)) if values.size else 1.0
    return np.clip(darkness / max(level, 1e-3), 0.0, 1.0).astype(np.float32)


# --- from pieces of ink to the digits of one number --------------------------------------


def _pieces(page: _Page) -> tuple[np.ndarray, list[_Group]]:
    """Connected pieces (a gap under half a stroke bridged), specks dropped."""
    grow = _odd(page.stroke * 0.5)
    bridged = cv2.dilate(page.mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(bridged, connectivity=8)
    labels = np.where(page.mask > 0, labels, 0)
    groups = []
    for index in range(1, count):
        left, top, width, height, _ = stats[index]
        groups.append(_Group(left, top, left + width, top + height, [index]))
    if not groups:
        return labels, []
    area = np.array([stats[g.labels[0], cv2.CC_STAT_AREA] for g in groups], np.float64)
    heights = np.array([g.height for g in groups], np.float64)
    text_height = _weighted_median(heights, area * heights)
    smallest = max(SPECK_HEIGHT * text_height, MIN_DIGIT_SIDE)
    groups = [g for g in groups if max(g.width, g.height) >= smallest]
    return labels, [g for g in groups if not _rule_like(g, page.stroke, text_height)]


def _rule_like(group: _Group, stroke: float, text_height: float) -> bool:
    """A thin straight run longer than a digit is tall: a rule or an edge left over from
    line removal (a short stretch of one, or one at a slant), not part of a digit."""
    thin = 2.5 * stroke
    flat = group.height <= thin and group.width >= max(6 * group.height, 1.5 * text_height)
    upright = group.width <= thin and group.height >= max(6 * group.width, 2.5 * text_height)
    return flat or upright


def _join_stacked(pieces: list[_Group]) -> list[_Group]:
    """Join pieces one above the other (mostly overlapping left to right) into one digit,
    unless both are full-height pieces side by side (slanted neighbours overlap too).

    Pairs are judged on the pieces themselves, not on what has been joined so far, so a
    joined digit does not grow and swallow its neighbours.
    """
    if not pieces:
        return []
    tall = _line_height(pieces)
    parent = list(range(len(pieces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, one in enumerate(pieces):
        for j in range(i + 1, len(pieces)):
            other = pieces[j]
            shared = min(other.right, one.right) - max(other.left, one.left)
            if shared <= 0.5 * max(1, min(other.width, one.width)):
                continue
            rows = min(other.bottom, one.bottom) - max(other.top, one.top)
            lower = min(other.height, one.height)
            if rows < 0.3 * lower or lower < 0.6 * tall:
                parent[root(i)] = root(j)
    joined: dict[int, _Group] = {}
    for i, piece in enumerate(pieces):
        key = root(i)
        joined[key] = joined[key].merged(piece) if key in joined else piece
    return list(joined.values())


def _line_height(groups: list[_Group]) -> float:
    """The height of full digits among these pieces: weighted towards the tall ones, so that
    bars, dots and broken-off pieces do not pull it down."""
    heights = np.array([g.height for g in groups], np.float64)
    return _weighted_median(heights, heights * heights)


def _read_line(page: _Page) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    labels, pieces = _pieces(page)
    if not pieces:
        return []
    line = _main_line(pieces)
    groups = _join_stacked(line)
    groups = _drop_small(groups)
    groups = _split_wide(page, labels, groups)
    groups.sort(key=lambda g: (g.left + g.right) / 2)
    return [_group_ink(page, labels, g) for g in groups[:MAX_DIGITS]]


def _main_line(pieces: list[_Group]) -> list[_Group]:
    """The pieces of the most prominent text line: neighbours that share most of their
    height and are not far apart are on one line (a chain, so a slanted or staggered line
    holds together); the line with the most digit-height ink wins."""
    count = len(pieces)
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(count), key=lambda i: pieces[i].left)
    for a_pos, a in enumerate(order):
        pa = pieces[a]
        for b in order[a_pos + 1 :]:
            pb = pieces[b]
            taller = max(pa.height, pb.height)
            if pb.left - pa.right > 2.0 * taller:
                break
            rows = min(pa.bottom, pb.bottom) - max(pa.top, pb.top)
            if rows >= 0.5 * min(pa.height, pb.height) and min(pa.height, pb.height) > 0:
                parent[root(a)] = root(b)
    lines: dict[int, list[_Group]] = {}
    for i in range(count):
        lines.setdefault(root(i), []).append(pieces[i])

    def score(members: list[_Group]) -> float:
        tallest = max(g.height for g in members)
        return sum(g.height for g in members if g.height >= 0.4 * tallest)

    return max(lines.values(), key=score)


def _drop_small(groups: list[_Group]) -> list[_Group]:
    """Dots, commas and dashes beside the digits are not digits."""
    if not groups:
        return groups
    tall = _line_height(groups)
    return [g for g in groups if g.height >= 0.4 * tall]


def _split_wide(page: _Page, labels: np.ndarray, groups: list[_Group]) -> list[_Group]:
    """Cut a group too wide for one digit into touching digits, at the columns of least ink."""
    if not groups:
        return groups
    tall = _line_height(groups)
    singles = [g.width for g in groups if g.width <= SPLIT_WIDTH * g.height]
    expected = float(np.median(singles)) if len(singles) >= 3 else DIGIT_ASPECT * tall
    expected = float(np.clip(expected, 0.5 * tall, 1.0 * tall))
    result = []
    for group in groups:
        height = max(group.height, 0.8 * tall)
        parts = int(group.width / expected + 0.35)
        region = np.isin(labels[group.top : group.bottom, group.left : group.right], group.labels)
        cuts = _between_loops(region, page.stroke)
        if not cuts and (group.width <= SPLIT_WIDTH * height or parts < 2):
            result.append(group)
            continue
        cuts = cuts or _cut_columns(region, parts, page.stroke)
        parts_found = _cut(group, region, cuts) if cuts else []
        result.extend(parts_found if parts_found else [group])
    return result


def _cut_columns(region: np.ndarray, parts: int, stroke: float) -> list[int]:
    """Where to cut touching digits: near each expected boundary, the column with least ink.

    A column through a loop (a hole enclosed by the ink, as in a wide 0) is never a cut:
    touching digits meet beside their loops, not through them. No cut when the only columns
    left go through a loop.
    """
    width = region.shape[1]
    columns = region.sum(axis=0).astype(np.float64)
    looped = _loop_columns(region, stroke)
    cuts = [0]
    step = width / parts
    for k in range(1, parts):
        lo = max(1, round(k * step - 0.35 * step))
        hi = min(width - 1, round(k * step + 0.35 * step))
        if hi <= lo:
            return []
        # Least ink, nearest the expected place on a tie.
        distance = np.abs(np.arange(lo, hi) - k * step) / step
        cost = columns[lo:hi] + 0.5 * distance * stroke
        cost[looped[lo:hi]] = np.inf
        if not np.isfinite(cost).any():
            return []
        cuts.append(lo + int(np.argmin(cost)))
    cuts.append(width)
    return cuts


def _loop_columns(region: np.ndarray, stroke: float) -> np.ndarray:
    """Columns that cross a sizeable hole in the ink (after closing gaps under a stroke)."""
    looped = np.zeros(region.shape[1], bool)
    for left, _, hole_width, _ in _holes(region, stroke):
        # The middle of the hole: cutting at its very edge is cutting beside the loop.
        margin = hole_width // 5
        looped[max(0, left + margin) : left + hole_width - margin] = True
    return looped


def _holes(region: np.ndarray, stroke: float) -> list[tuple[int, int, int, int]]:
    """(left, top, width, height) of each sizeable hole in the ink, after closing gaps under
    a stroke, left to right."""
    mask = np.uint8(region)
    grow = _odd(stroke)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((grow, grow), np.uint8))
    padded = np.pad(1 - mask, 1, constant_values=1)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(padded, connectivity=4)
    outside = labels[0, 0]
    holes = []
    for index in range(1, count):
        left, top, hole_width, hole_height, area = stats[index]
        if index == outside or area < (2 * stroke) ** 2 or hole_width < 2 * stroke:
            continue
        holes.append((int(left) - 1, int(top) - 1, int(hole_width), int(hole_height)))
    return sorted(holes)


def _between_loops(region: np.ndarray, stroke: float) -> list[int]:
    """Cuts between loops side by side (sharing most of their rows, no column): no single
    digit has two, so they are touching digits such as 00 or 60, whatever their width.
    Each cut is the column of least ink between the two holes; none when there is no such
    pair (the loops of an 8 are one above the other)."""
    holes = _holes(region, stroke)
    columns = region.sum(axis=0)
    cuts = [0]
    for (left, top, width, height), (left2, top2, _, height2) in itertools.pairwise(holes):
        rows = min(top + height, top2 + height2) - max(top, top2)
        start, stop = left + width, left2
        if stop <= start or rows < SIDE_BY_SIDE * min(height, height2):
            continue
        cuts.append(start + int(np.argmin(columns[start:stop])))
    return [*cuts, region.shape[1]] if len(cuts) > 1 else []


def _cut(group: _Group, region: np.ndarray, cuts: list[int]) -> list[_Group]:
    """The parts between the cuts, or nothing when a part is not a digit of its own: every
    part must stand most of the group's height, so the long base of a 2 or a 1 or the tail
    of a 7 stays with its digit."""
    parts = []
    for start, stop in itertools.pairwise(cuts):
        rows = np.flatnonzero(region[:, start:stop].any(axis=1))
        if stop - start < 2 or rows.size == 0 or rows.size < PART_HEIGHT * group.height:
            return []
        parts.append(
            _Group(
                group.left + start,
                group.top + int(rows[0]),
                group.left + stop,
                group.top + int(rows[-1]) + 1,
                group.labels,
            )
        )
    return parts


def _group_ink(
    page: _Page, labels: np.ndarray, group: _Group
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """The group's own ink (other pieces inside its box blanked) and its box in the
    original image's coordinates."""
    window = (slice(group.top, group.bottom), slice(group.left, group.right))
    region = np.isin(labels[window], group.labels)
    ink = np.where(region, page.ink[window], 0.0).astype(np.float32)
    peak = float(np.percentile(ink[region], 90)) if region.any() else 1.0
    ink = np.clip(ink / max(peak, 1e-3), 0.0, 1.0).astype(np.float32)
    scale = page.scale
    left, top = page.offset
    box = (
        int(left + np.floor(group.left / scale)),
        int(top + np.floor(group.top / scale)),
        int(left + np.ceil(group.right / scale)),
        int(top + np.ceil(group.bottom / scale)),
    )
    return box, ink


def _reread_finer(
    image: Image.Image,
    page: _Page,
    digits: list[tuple[tuple[int, int, int, int], np.ndarray]],
    height: float,
) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Read small digits again from the original pixels around the line they were found on,
    at a scale that makes them `FINE_HEIGHT` tall."""
    left = min(b[0] for b, _ in digits)
    top = min(b[1] for b, _ in digits)
    right = max(b[2] for b, _ in digits)
    bottom = max(b[3] for b, _ in digits)
    tall = height / page.scale  # original pixels
    margin = 2.0 * tall
    crop_box = (
        max(0, int(left - margin)),
        max(0, int(top - margin)),
        min(image.width, int(right + margin)),
        min(image.height, int(bottom + margin)),
    )
    crop = image.crop(crop_box)
    scale = min(1.0, FINE_HEIGHT / max(tall, 1.0))
    scale = min(scale, WORK_SIDE / max(crop.size))
    if scale <= page.scale * 1.2:
        return []
    finer = _clean(crop, scale, offset=crop_box[:2])
    if finer is None:
        return []
    return _read_line(finer)
