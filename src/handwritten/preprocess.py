"""Make any drawing look like an MNIST digit, and scale pixels the one way every model expects.

MNIST digits are white ink on black, anti-aliased, the digit's longer side 20 px, placed in a
28x28 frame by its centre of mass, strokes about 2.5 px wide (median, measured here as ink
area over half the outline). People's drawings are none of
that: dark ink on white, 1-px or very thick strokes, any canvas size, transparency, stray
marks. A model trained on MNIST only reads them well after the same normalisation, so this
module rebuilds the MNIST recipe for an arbitrary image. Training, prediction and the server
all meet at `to_mnist` (drawing -> 28x28 uint8, like an MNIST image); the networks scale the
pixels themselves. What this module does is versioned (`PREPROCESSING`): a model card records
the version a model was trained and chosen with, and loading a model made with another says so.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from collections.abc import Callable
from functools import cache

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from handwritten.errors import ImageError

MNIST_SIZE = 28
DIGIT_BOX = 20
# The pen width aimed for when the stroke is redrawn at 4x. The final box-filter reduction
# widens it a little: 2.2 gives a median of 2.35 px on the user drawings, close to MNIST's 2.5.
STROKE_TARGET = 2.2
OVERSAMPLE = 4
MAX_INPUT_PIXELS = 40_000_000
WORKING_SIDE = 512
MIN_CONTRAST = 0.15
NOISE_FLOOR = 0.2
SPECK_FRACTION = 0.03
EDGE_BAND = 0.1
EDGE_LINE_FILL = 0.85

ImageSource = str | os.PathLike | bytes

PREPROCESSING_VERSION = 1
"""Raise it whenever a change here alters the 28x28 images any drawing gives."""


def preprocessing_spec() -> dict[str, object]:
    """What a model card records of the normalisation its model expects."""
    return {
        "version": PREPROCESSING_VERSION,
        "output": "28x28 uint8, white ink (255) on black (0), like an MNIST image",
        "digit_box": DIGIT_BOX,
        "stroke_target": STROKE_TARGET,
        "oversample": OVERSAMPLE,
        "working_side": WORKING_SIDE,
        "min_contrast": MIN_CONTRAST,
        "noise_floor": NOISE_FLOOR,
        "speck_fraction": SPECK_FRACTION,
        "edge_band": EDGE_BAND,
        "edge_line_fill": EDGE_LINE_FILL,
        "centre": "centre of mass",
    }


def open_image(source: ImageSource, name: str | None = None) -> Image.Image:
    """Open a file or encoded bytes as a Pillow image, refusing what cannot be decoded safely.

    Only the header is read before the size check, so a decompression bomb is refused before
    it takes memory. EXIF orientation is applied (phone photos) and only the first frame of an
    animation is used.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if not isinstance(source, bytes):
                _check_regular_file(source, label)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            _check_size(image, label)
            image.seek(0)
            image.load()
            return _common_mode(ImageOps.exif_transpose(image))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file; check the path.") from None
    except IsADirectoryError:
        raise ImageError(f"{label}: is a folder, not an image file.") from None
    except PermissionError:
        raise ImageError(f"{label}: permission denied; make the file readable.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(_too_large(label)) from None
    except (OSError, ValueError, TypeError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageError(
            f"{label}: not a readable image ({_what_is_wrong(exc)}); "
            "save it as PNG or JPEG and try again."
        ) from None


def _what_is_wrong(exc: BaseException) -> str:
    """What is wrong with the file, in its user's words: Pillow's own messages name Python
    objects (`cannot identify image file <_io.BytesIO object at 0x...>`) and decoder
    internals, which say nothing to the person who sent it."""
    if isinstance(exc, UnidentifiedImageError):
        return "its bytes are no image format this program reads, such as PNG or JPEG"
    if isinstance(exc, EOFError) or "truncated" in str(exc):
        return "the file ends before the picture does: it is cut short"
    if isinstance(exc, MemoryError):
        return "its picture is too large to decode"
    return "its picture data is damaged"


def _check_regular_file(path: str | os.PathLike, label: str) -> None:
    """Refuse a FIFO (opening one blocks until a writer comes) or a device, before opening."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError
    if not stat.S_ISREG(mode):
        raise ImageError(f"{label}: is a pipe, device or socket, not an image file.")


def _check_size(image: Image.Image, label: str) -> None:
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_INPUT_PIXELS:
        raise ImageError(_too_large(label) if width * height else f"{label}: image is empty.")


def _common_mode(image: Image.Image) -> Image.Image:
    """Convert the few modes a decoder can yield that Pillow cannot turn into grayscale.

    A TIFF can hold CIE LAB, which Pillow converts to RGB but not to L; premultiplied La
    converts only to LA. Everything else to_mnist reads as it comes.
    """
    target = {"LAB": "RGB", "La": "LA"}.get(image.mode)
    return image.convert(target) if target else image


def _too_large(label: str) -> str:
    return (
        f"{label}: image is too large to read safely (over {MAX_INPUT_PIXELS:,} pixels); "
        "scale it down and try again."
    )


def to_mnist(image: Image.Image) -> np.ndarray | None:
    """Normalise a drawing the way MNIST was made; None when there is no ink to read.

    Returns a 28x28 uint8 array, white ink on black, like an MNIST test image.
    """
    ink = _clean_ink(image)
    return None if ink is None else ink_to_mnist(ink)


def _clean_ink(image: Image.Image) -> np.ndarray | None:
    """The ink alone, edge lines and specks removed, None if nothing is left.

    The ink is cropped before the speck search only for speed (a digit is often a small part
    of the canvas); everything outside the crop is below the noise floor and would be cleared
    anyway. Callers crop again to what the specks left (`ink_to_mnist`).
    """
    ink = _ink_map(_working_copy(image))
    if ink is None:
        return None
    ink = _remove_edge_lines(ink)
    if not (ink >= NOISE_FLOOR).any():
        return None
    ink = _remove_specks(_crop_to_ink(ink))
    return ink if (ink >= NOISE_FLOOR).any() else None


def ink_to_mnist(ink: np.ndarray) -> np.ndarray:
    """Normalise one digit's ink map (float 0-1, 1 = full ink, any size) to a 28x28 uint8 frame.

    The one normaliser: a single drawing (`to_mnist`) and each digit found on a page end here.
    """
    return _centre_in_frame(_fit_digit_box(_crop_to_ink(ink)))


def _working_copy(image: Image.Image) -> Image.Image:
    """Bound the cost of a huge canvas: strokes survive a box-filtered reduction."""
    if max(image.size) <= WORKING_SIDE:
        return image
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA")
    copy = image.copy()
    copy.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    return copy


def _ink_map(image: Image.Image) -> np.ndarray | None:
    """How much ink each pixel holds, 0 (background) to 1 (full ink), whatever the polarity.

    Every step is a function of the pixel's level alone, so for 8-bit images it is worked out
    once per level (256 values) and looked up: the same float32 numbers, a fraction of the
    passes over the image. The brightest ink is that of the lightest or darkest level.
    """
    levels, invert = _ink_levels(image)

    def ink(values: np.ndarray) -> np.ndarray:
        return 1.0 - values if invert else values

    floor = float(np.median(ink(_fraction(_border(levels)))))
    extremes = np.array([levels.min(), levels.max()], dtype=levels.dtype)
    peak = float(ink(_fraction(extremes)).max())
    if peak - floor < MIN_CONTRAST:
        return None
    return _per_level(levels, lambda v: np.clip((ink(v) - floor) / (peak - floor), 0.0, 1.0))


def _ink_levels(image: Image.Image) -> tuple[np.ndarray, bool]:
    """The levels the ink is read from (alpha, or gray on white), and whether dark is ink."""
    alpha = _alpha(image)
    if alpha is not None and np.median(_fraction(alpha)) < 0.5:
        return alpha, False
    gray = _gray_levels(image)
    return gray, float(np.median(_fraction(_border(gray)))) > 0.5


_LEVEL_FRACTIONS = np.arange(256, dtype=np.float32) / 255.0
"""Each 8-bit level over 255.0, exactly as dividing a float32 image by 255.0 gives it."""


def _fraction(levels: np.ndarray) -> np.ndarray:
    """0-1 float32 values of 8-bit levels; other levels (16-bit or float images) already are."""
    return _LEVEL_FRACTIONS[levels] if levels.dtype == np.uint8 else levels


def _per_level(levels: np.ndarray, step: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`step` applied to every pixel's 0-1 value, through a table for 8-bit levels (OpenCV's
    lookup is several times faster than numpy's indexing)."""
    if levels.dtype == np.uint8:
        return cv2.LUT(levels, step(_LEVEL_FRACTIONS)).reshape(levels.shape)
    return step(levels)


def has_transparency(image: Image.Image) -> bool:
    """Whether the image's mode or palette can hold transparent pixels."""
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info


def _alpha(image: Image.Image) -> np.ndarray | None:
    """The 8-bit alpha levels, None when the image is opaque."""
    if not has_transparency(image):
        return None
    alpha = np.asarray(image.convert("RGBA").getchannel("A"))
    return alpha if alpha.min() < 255 else None


def gray_on_white(image: Image.Image) -> np.ndarray:
    """Luminance in 0-1 with any transparency composited onto white, as a paint program shows it."""
    return _fraction(_gray_levels(image))


def _gray_levels(image: Image.Image) -> np.ndarray:
    """`gray_on_white` as 8-bit levels, or as 0-1 float32 for 16-bit and float images."""
    if image.mode.startswith("I") or image.mode == "F":
        return _wide_levels(image)
    if _alpha(image) is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"))


def _wide_levels(image: Image.Image) -> np.ndarray:
    """A 16-bit or float image as 0-1 float32. A float file can hold pixels with no value
    (NaN, as a mask in scientific images) and infinities: a pixel with no value takes the
    median of the others (most likely the paper) rather than deciding the scale or
    becoming ink; infinities are the brightest and darkest values."""
    with np.errstate(invalid="ignore"):  # Widening a signalling NaN raises the flag.
        values = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(values)
    known = values[finite]
    brightest = float(known.max()) if known.size else 0.0
    top = 65535.0 if image.mode.startswith("I;16") or brightest > 255 else 255.0
    fill = float(np.median(known)) if known.size else top
    values = np.nan_to_num(values, nan=fill, posinf=top, neginf=0.0)
    return np.clip(values / top, 0.0, 1.0).astype(np.float32)


def _border(values: np.ndarray) -> np.ndarray:
    return np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])


def _remove_edge_lines(ink: np.ndarray) -> np.ndarray:
    """Clear rows and columns near an edge that are almost all ink: frames, not digit strokes.

    Rows go first, and the columns are measured without them, so that a frame's top and
    bottom edges do not make every column look full. Most drawings have none: no copy then.
    """
    mask = ink >= NOISE_FLOOR
    rows = _edge_lines(_inked_per_line(mask, axis=1), mask.shape[1])
    mask[rows] = False
    cols = _edge_lines(_inked_per_line(mask, axis=0), mask.shape[0])
    if not (rows.any() or cols.any()):
        return ink
    ink = ink.copy()
    ink[rows, :] = 0.0
    ink[:, cols] = 0.0
    return ink


def _edge_lines(counts: np.ndarray, length: int) -> np.ndarray:
    """Which lines (rows or columns, with `counts` inked pixels of `length`) are frame lines."""
    band = max(1, round(EDGE_BAND * len(counts)))
    near_edge = np.zeros(len(counts), dtype=bool)
    near_edge[:band] = near_edge[-band:] = True
    return near_edge & (counts / length >= EDGE_LINE_FILL)


def _remove_specks(ink: np.ndarray) -> np.ndarray:
    """Drop faint noise and small stray marks while keeping every sizeable piece of the digit."""
    mask = ink >= NOISE_FLOOR
    count, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
    if count <= 2:  # The background and at most one piece: nothing to weigh.
        return np.where(mask, ink, 0.0)
    # Exact whatever order the pieces are numbered in: float32 ink of at least NOISE_FLOOR is
    # a multiple of 2**-26, so sums over a working copy (at most 2**18 pixels) lose no bit.
    mass = np.bincount(labels[mask], weights=ink[mask], minlength=count)
    keep = mass >= SPECK_FRACTION * mass.sum()  # The background (0) has no mass: never kept.
    return np.where(mask if keep[1:].all() else keep[labels], ink, 0.0)


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    mask = ink >= NOISE_FLOOR
    rows = np.flatnonzero(_inked_per_line(mask, axis=1))
    cols = np.flatnonzero(_inked_per_line(mask, axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _inked_per_line(mask: np.ndarray, axis: int) -> np.ndarray:
    """How many pixels of each row (`axis` 1) or column (0) are set: `mask.sum(axis)`, by
    OpenCV, which is ten times faster at it."""
    counts = cv2.reduce(mask.view(np.uint8), axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
    return counts.ravel()


def _fit_digit_box(ink: np.ndarray) -> np.ndarray:
    """Scale the longer side to 20 px, keeping the aspect ratio, with MNIST's pen width.

    The stroke is measured and thickened or thinned at 4x the final size, where one step of
    dilation is a quarter pixel, then reduced with a box filter: the anti-aliasing MNIST has.
    """
    fine = _resize(ink, DIGIT_BOX * OVERSAMPLE)
    fine = _match_stroke_width(fine, STROKE_TARGET * OVERSAMPLE)
    height, width = fine.shape
    size = (max(1, round(width / OVERSAMPLE)), max(1, round(height / OVERSAMPLE)))
    image = Image.fromarray(np.uint8(np.round(fine * 255)))
    small = np.asarray(image.resize(size, Image.Resampling.BOX), dtype=np.float32)
    return small / max(1.0, float(small.max()))


def _resize(ink: np.ndarray, longer_side: int) -> np.ndarray:
    height, width = ink.shape
    scale = longer_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(np.uint8(np.round(ink * 255)))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255.0


def _match_stroke_width(ink: np.ndarray, target: float) -> np.ndarray:
    """Thicken hairlines (paint programs draw 1 px lines) and thin marker strokes to `target`."""
    width = _stroke_width(_pad(np.uint8(ink >= 0.5), 1))
    radius = round((target - width) / 2)
    if radius == 0:
        return ink
    footprint = _disk(abs(radius))
    if radius > 0:
        return cv2.dilate(_pad(ink, radius), footprint)
    # Pixels past the edge are left out of the minimum; the reflected ones that version 1 took
    # in lie inside the disk anyway (it is symmetric and convex), so the result is the same.
    return cv2.erode(ink, footprint)


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width: ink area over half the length of the ink's outline (mask 0/1)."""
    outline = cv2.dilate(mask, _CROSS) > mask
    return 2.0 * np.count_nonzero(mask) / max(1, np.count_nonzero(outline))


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _pad(values: np.ndarray, width: int) -> np.ndarray:
    """`values` with `width` zeros around it (np.pad's result, without its overhead)."""
    return cv2.copyMakeBorder(values, width, width, width, width, cv2.BORDER_CONSTANT, value=0)


@cache
def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return np.uint8(x * x + y * y <= radius * radius + radius)


def _centre_in_frame(digit: np.ndarray) -> np.ndarray:
    """Place the digit in a 28x28 frame with its centre of mass at the centre, as MNIST did."""
    height, width = digit.shape
    centre_y, centre_x = _centre_of_mass(digit)
    top = min(max(round(MNIST_SIZE / 2 - centre_y), 0), MNIST_SIZE - height)
    left = min(max(round(MNIST_SIZE / 2 - centre_x), 0), MNIST_SIZE - width)
    frame = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    frame[top : top + height, left : left + width] = digit
    return np.uint8(np.round(frame * 255))


def _centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    """(row, column) of the ink's centre, summed in the order scipy's `center_of_mass` sums
    (version 1 used it), so that a digit halfway between two pixels rounds the same way."""
    total = digit.sum()
    rows = np.arange(digit.shape[0], dtype=float)[:, np.newaxis]
    cols = np.arange(digit.shape[1], dtype=float)
    return (digit * rows).sum() / total, (digit * cols).sum() / total
