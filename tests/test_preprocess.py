"""Preprocessing: every kind of drawing comes out like an MNIST digit, or as a clear error."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from drawings import draw, encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageDraw
from scipy import ndimage

from handwritten.errors import ImageError
from handwritten.predict import load_digit
from handwritten.preprocess import (
    PREPROCESSING_VERSION,
    open_image,
    to_mnist,
)

SAMPLES = sorted((Path(__file__).parents[1] / "digits").glob("*.png"))
VERSION_1_DIGEST = "12a4d1648debe9cca346b1b0c83bfa460896f65468aff422e66242438833004c"
"""SHA-256 of the 28x28 images `test_output_is_pinned_to_its_version` makes, as version 1
made them when the shipped models were trained and measured."""


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two 28x28 images, best over shifts of up to 2 px: 1.0 is the same.

    Centring by centre of mass moves a digit by a pixel when its pen width changes, which is
    not a different picture.
    """
    b = b.astype(float).ravel()
    best = 0.0
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            shifted = np.roll(a.astype(float), (dy, dx), axis=(0, 1)).ravel()
            best = max(best, shifted @ b / (np.linalg.norm(shifted) * np.linalg.norm(b)))
    return float(best)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return to_mnist(draw())


def test_output_looks_like_mnist(reference: np.ndarray) -> None:
    assert reference.shape == (28, 28)
    assert reference.dtype == np.uint8
    assert reference.max() == 255
    rows = np.flatnonzero(reference.max(axis=1) > 0)
    cols = np.flatnonzero(reference.max(axis=0) > 0)
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) in (20, 21)
    centre = ndimage.center_of_mass(reference.astype(float))
    assert np.allclose(centre, (14, 14), atol=1.0)


def test_light_ink_on_dark_reads_like_dark_ink_on_light(reference: np.ndarray) -> None:
    assert similarity(to_mnist(draw(ink=255, paper=0)), reference) > 0.99


@pytest.mark.parametrize("mode", ["RGB", "P", "LA", "CMYK", "1", "I", "F"])
def test_every_pillow_mode_gives_the_same_digit(mode: str, reference: np.ndarray) -> None:
    assert similarity(to_mnist(draw().convert(mode)), reference) > 0.97


def test_16_bit_png(reference: np.ndarray) -> None:
    wide = (np.asarray(draw(), dtype=np.uint16) * 257).astype(np.uint16)
    image = open_image(encode(Image.fromarray(wide)))
    assert image.mode.startswith("I")
    assert similarity(to_mnist(image), reference) > 0.99


@pytest.mark.parametrize("colour", [0, 255])
def test_ink_only_in_the_alpha_channel(colour: int, reference: np.ndarray) -> None:
    alpha = Image.eval(draw(), lambda v: 255 - v)
    image = Image.new("RGBA", alpha.size, (colour, colour, colour, 0))
    image.putalpha(alpha)
    assert similarity(to_mnist(open_image(encode(image))), reference) > 0.99


def test_transparent_margin_around_an_opaque_drawing(reference: np.ndarray) -> None:
    image = draw().convert("RGBA")
    image.putalpha(Image.new("L", image.size, 255))
    image.paste((0, 0, 0, 0), (0, 0, 3, image.height))
    assert similarity(to_mnist(image), reference) > 0.97


@pytest.mark.parametrize(("size", "width"), [(28, 1), (112, 8), (600, 60), (2000, 30)])
def test_canvas_size_and_pen_width_do_not_matter(
    size: int, width: int, reference: np.ndarray
) -> None:
    assert similarity(to_mnist(draw(size=size, width=width)), reference) > 0.9


def test_hairlines_are_thickened_to_mnist_pen_width() -> None:
    thin = to_mnist(draw(size=28, width=1)) >= 128
    thick = to_mnist(draw(size=112, width=8)) >= 128
    assert abs(int(thin.sum()) - int(thick.sum())) < 0.3 * thick.sum()


def test_small_digit_in_a_corner_of_a_large_canvas(reference: np.ndarray) -> None:
    small = draw(size=800, width=6, box=(0.05, 0.75, 0.2, 0.9))
    assert similarity(to_mnist(small), reference) > 0.9


@pytest.mark.parametrize("edge", ["top", "bottom", "left", "right"])
def test_a_line_along_an_edge_is_ignored(edge: str) -> None:
    image = draw(box=(0.1, 0.1, 0.9, 0.9))
    clean = to_mnist(image)
    width, height = image.size
    line = {
        "top": (0, 0, width, 2),
        "bottom": (0, height - 2, width, height),
        "left": (0, 0, 2, height),
        "right": (width - 2, 0, width, height),
    }[edge]
    image.paste(0, line)
    assert similarity(to_mnist(image), clean) > 0.99


def test_a_stray_speck_is_ignored() -> None:
    image = draw(size=224, width=14, box=(0.0, 0.0, 0.8, 0.8))
    clean = to_mnist(image)
    image.paste(0, (210, 210, 213, 213))
    assert similarity(to_mnist(image), clean) > 0.99


@pytest.mark.parametrize("value", [0, 128, 255])
def test_a_blank_image_is_no_digit(value: int) -> None:
    assert to_mnist(Image.new("L", (64, 64), value)) is None


def test_faint_noise_is_no_digit() -> None:
    noise = np.random.default_rng(0).integers(235, 256, size=(64, 64), dtype=np.uint8)
    assert to_mnist(Image.fromarray(noise)) is None


def test_exif_rotation_is_applied(reference: np.ndarray) -> None:
    rotated = draw().rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    phone_photo = encode(rotated.convert("RGB"), "JPEG", exif=exif, quality=95)
    assert similarity(to_mnist(open_image(phone_photo)), reference) > 0.97


def test_first_frame_of_an_animation(reference: np.ndarray) -> None:
    frames = [draw().convert("P"), Image.new("P", (112, 112), 255)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert similarity(to_mnist(open_image(gif)), reference) > 0.97


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """The start of a PNG that claims `width` x `height`, with no pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)


def test_decompression_bomb_is_refused() -> None:
    bomb = png_header_only(20000, 20000) + png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    with pytest.raises(ImageError, match="too large"):
        open_image(bomb + png_chunk(b"IEND", b""), "bomb.png")


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"", "empty"),
        (b"this is not an image", "text"),
        (png_header_only(30, 30), "truncated"),
    ],
)
def test_unreadable_bytes_are_an_image_error_naming_the_input(payload: bytes, why: str) -> None:
    with pytest.raises(ImageError, match=f"{why}.png"):
        open_image(payload, f"{why}.png")


def test_missing_file_and_folder(tmp_path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        open_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="folder"):
        open_image(tmp_path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_any_grayscale_array_gives_a_digit_or_none(pixels: np.ndarray) -> None:
    result = to_mnist(Image.fromarray(pixels))
    assert result is None or (result.shape == (28, 28) and result.dtype == np.uint8)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_anything_but_image_error(payload: bytes) -> None:
    try:
        result = load_digit(payload, "fuzz.png")
    except ImageError as exc:
        message = str(exc)
        result = None
    else:
        message = "fuzz.png"
    assert "fuzz.png" in message
    assert result is None or result.shape == (28, 28)


def framed_with_specks() -> Image.Image:
    """A thin seven inside a frame near the edges, with three dots: lines and specks to clear."""
    image = draw(size=200, width=3)
    pen = ImageDraw.Draw(image)
    pen.rectangle((6, 6, 193, 193), outline=0, width=3)
    for x, y in [(20, 170), (180, 30), (100, 185)]:
        pen.ellipse((x, y, x + 3, y + 3), fill=0)
    return image


def test_output_is_pinned_to_its_version() -> None:
    """The model cards record PREPROCESSING_VERSION, and their figures were measured with it:
    a change that alters any output byte (a faster step that rounds differently, too) must
    come with a new version. The sample drawings and a few styles, byte for byte."""
    variants = [draw(width=1), draw(width=30), draw(ink=255, paper=0), framed_with_specks()]
    images = [load_digit(path) for path in SAMPLES] + [to_mnist(v) for v in variants]
    digest = hashlib.sha256(b"".join(image.tobytes() for image in images)).hexdigest()
    assert len(SAMPLES) == 10
    assert (PREPROCESSING_VERSION, digest) == (1, VERSION_1_DIGEST)
