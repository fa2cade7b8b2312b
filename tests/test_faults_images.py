"""Untrusted images: whatever bytes arrive, preprocessing gives a digit, no digit, or ImageError.

tests/test_preprocess.py checks that real drawings come out right. This file attacks the same
entry point, `load_digit(bytes, name)`, the one the CLI and the server share: random
and mutated encodings (Hypothesis), every Pillow mode in every format that can store it,
headers claiming huge canvases (refused from the header, not decoded), animations, 16-bit and
float pixels, CMYK, every EXIF orientation and broken EXIF, truncation, and objects that are
not files. fuzz/fuzz_images.py drives the same function with coverage guidance (`make fuzz`);
its seed corpus, fuzz/corpus, is replayed here so anything it once found stays fixed.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from drawings import draw, encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from handwritten.errors import ImageError
from handwritten.predict import load_digit
from handwritten.preprocess import MAX_INPUT_PIXELS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on corrupt metadata.

CORPUS = ROOT / "fuzz" / "corpus"
NAME = "upload.png"
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def read(data: bytes) -> np.ndarray | None:
    """load_digit, checking its promise: a 28x28 uint8 digit, None, or ImageError that
    names the input. Any other exception propagates and fails the test."""
    try:
        result = load_digit(data, NAME)
    except ImageError as error:
        result, message = None, str(error)
    else:
        message = f"{NAME}: read"
    assert message.startswith(f"{NAME}: "), message
    assert result is None or (result.shape == (28, 28) and result.dtype == np.uint8)
    return result


def same_digit(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Cosine similarity over 0.95: the same picture up to resampling noise."""
    if a is None or b is None:
        return False
    a, b = a.astype(float).ravel(), b.astype(float).ravel()
    return a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.95


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return read(encode(draw(), "PNG"))


# Random and mutated bytes.


def seeds() -> list[bytes]:
    return [path.read_bytes() for path in sorted(CORPUS.iterdir())]


def test_the_seed_corpus_is_small_and_varied() -> None:
    sizes = [len(seed) for seed in seeds()]
    assert len(sizes) >= 10
    assert sum(sizes) < 16 * 1024


@pytest.mark.parametrize("seed", sorted(CORPUS.iterdir()), ids=lambda path: path.name)
def test_every_seed_in_the_fuzz_corpus(seed: Path) -> None:
    read(seed.read_bytes())


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    read(data)


@st.composite
def mutated_seeds(draw_from: st.DrawFn) -> bytes:
    """A valid file from the corpus with a few bytes flipped, cut, or spliced in."""
    data = bytearray(draw_from(st.sampled_from(seeds())))
    for _ in range(draw_from(st.integers(1, 6))):
        at = draw_from(st.integers(0, len(data)))
        action = draw_from(st.sampled_from(["flip", "cut", "insert", "set"]))
        if action == "flip" and at < len(data):
            data[at] ^= 1 << draw_from(st.integers(0, 7))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw_from(st.binary(min_size=1, max_size=16))
        elif at < len(data):
            data[at] = draw_from(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
    return bytes(data)


@FUZZ
@given(mutated_seeds())
def test_mutated_valid_files(data: bytes) -> None:
    read(data)


# Every mode in every format that can store it.


@st.composite
def images_in_any_mode(draw_from: st.DrawFn) -> Image.Image:
    mode = draw_from(st.sampled_from(Image.MODES))
    size = (draw_from(st.integers(1, 48)), draw_from(st.integers(1, 48)))
    length = len(Image.new(mode, size).tobytes())
    return Image.frombytes(mode, size, draw_from(st.binary(min_size=length, max_size=length)))


@settings(FUZZ, max_examples=120)
@given(images_in_any_mode(), st.sampled_from(FORMATS))
def test_any_mode_stored_in_any_format(image: Image.Image, kind: str) -> None:
    try:
        data = encode(image, kind)
    except (OSError, ValueError, KeyError):
        return  # This format cannot hold this mode; nothing to read.
    read(data)


def _as_mode(mode: str) -> Image.Image:
    if mode.startswith("I;16"):
        wide = np.asarray(draw(), dtype=np.uint16) * 257
        return Image.fromarray(wide.astype(wide.dtype.newbyteorder(">" if "B" in mode else "<")))
    if mode in ("La", "RGBa", "PA"):
        return draw().convert({"La": "LA", "RGBa": "RGBA", "PA": "P"}[mode]).convert(mode)
    if mode in ("LAB", "HSV"):
        return draw().convert("RGB").convert(mode)
    return draw().convert(mode)


def _stored(mode: str) -> bytes | None:
    """The drawing in `mode` as TIFF (which holds the most modes), else PNG, else None."""
    for kind in ("TIFF", "PNG"):
        try:
            return encode(_as_mode(mode), kind)
        except (OSError, ValueError, KeyError):
            continue
    return None


# HSV, La and RGBa: Pillow writes them in no format, so no file can bring them here.
STORABLE_MODES = [mode for mode in Image.MODES if _stored(mode) is not None]


def test_every_mode_but_three_can_arrive_in_a_file() -> None:
    assert sorted(set(Image.MODES) - set(STORABLE_MODES)) == ["HSV", "La", "RGBa"]


@pytest.mark.parametrize("mode", STORABLE_MODES)
def test_a_drawing_in_each_mode_reads_as_the_same_digit(mode: str, reference: np.ndarray) -> None:
    assert same_digit(read(_stored(mode)), reference)


@settings(FUZZ, max_examples=60)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=16, max_size=16))
def test_float_pixels_including_nan_and_infinity(values: list[float]) -> None:
    pixels = np.resize(np.array(values, dtype=np.float32), (24, 24))
    read(encode(Image.fromarray(pixels, "F"), "TIFF"))


def test_float_pixels_without_value_are_paper(reference: np.ndarray) -> None:
    """A float drawing with a NaN border (quiet and signalling) reads as the same digit, and
    reading it raises no floating-point warning."""
    pixels = np.asarray(draw(), dtype=np.float32)
    signalling = np.array([0x7FA00000], np.uint32).view(np.float32)[0]
    pixels[:3], pixels[-3:], pixels[:, :2] = np.nan, signalling, np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        digit = read(encode(Image.fromarray(pixels, "F"), "TIFF"))
    assert same_digit(digit, reference)


def test_16_bit_tiff_in_both_byte_orders(reference: np.ndarray) -> None:
    wide = np.asarray(draw(), dtype=np.uint16) * 257
    for order in "<>":
        image = Image.fromarray(wide.astype(wide.dtype.newbyteorder(order)))
        assert same_digit(read(encode(image, "TIFF")), reference), order


def test_cmyk_jpeg(reference: np.ndarray) -> None:
    data = encode(draw().convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert same_digit(read(data), reference)


# Canvas sizes, from one pixel to decompression bombs.


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def claiming(kind: str, width: int, height: int) -> bytes:
    """A tiny real file of `kind` whose header is patched to claim width x height."""
    if kind == "PNG":
        header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
        rows = zlib.compress(b"\0" * 1024)
        return (
            b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", rows)
            + png_chunk(b"IEND", b"")
        )
    data = bytearray(encode(Image.new("L" if kind != "WEBP" else "RGB", (3, 3)), kind))
    if kind == "GIF":
        data[6:10] = struct.pack("<HH", width, height)
        descriptor = data.index(b"\x2c")
        data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", width, height)
    elif kind == "BMP":
        data[18:26] = struct.pack("<ii", width, height)
    elif kind == "JPEG":
        frame = data.index(b"\xff\xc0")
        data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    elif kind == "WEBP":
        frame = data.index(b"\x9d\x01\x2a")
        data[frame + 3 : frame + 7] = struct.pack("<HH", width, height)
    elif kind == "TIFF":
        for tag, value in ((256, width), (257, height)):
            entry = data.index(struct.pack("<HHI", tag, 4, 1))  # Pillow writes LONGs.
            data[entry + 8 : entry + 12] = struct.pack("<I", value)
    return bytes(data)


HUGE = [(20000, 20000), (7000, 7000), (16383, 16383), (65535, 700)]


@pytest.mark.parametrize(
    ("kind", "size"),
    # A WebP header holds at most 16383 a side.
    [(k, size) for k in FORMATS for size in HUGE if k != "WEBP" or max(size) <= 16383],
)
def test_a_header_claiming_a_huge_canvas_is_refused_before_decoding(
    kind: str, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """7000x7000 is over this program's limit but under Pillow's own: only _check_size stops
    it. Refusal must come from the header: peak memory stays far below one decoded frame."""
    width, height = size
    data = claiming(kind, width, height)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Only to read the header back.
    assert Image.open(io.BytesIO(data)).size == size
    monkeypatch.undo()
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match="too large to read safely"):
            load_digit(data, NAME)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_INPUT_PIXELS // 10


@pytest.mark.parametrize("kind", FORMATS)
def test_one_pixel_images(kind: str) -> None:
    for value in (0, 255):
        assert read(encode(Image.new("RGB", (1, 1), (value,) * 3), kind)) is None


def test_extreme_aspect_ratios_are_read() -> None:
    for size in ((20000, 1), (1, 20000), (5000, 3)):
        image = Image.new("L", size, 255)
        image.paste(0, (0, 0, max(1, size[0] // 2), max(1, size[1] // 2)))
        read(encode(image, "PNG"))


# Animations: only the first frame counts.


def animation(kind: str, frames: list[Image.Image]) -> bytes:
    first, *rest = frames
    options = {"duration": 100} if kind != "TIFF" else {}
    return encode(first, kind, save_all=True, append_images=rest, **options)


@pytest.mark.parametrize("kind", ["GIF", "PNG", "WEBP", "TIFF"])
def test_only_the_first_frame_of_an_animation_is_read(kind: str, reference: np.ndarray) -> None:
    mode = "P" if kind == "GIF" else "RGB"
    frames = [draw().convert(mode), Image.new(mode, (112, 112), 255), draw(ink=255, paper=0)]
    data = animation(kind, [frame.convert(mode) for frame in frames])
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    assert same_digit(read(data), reference)


# Phone photos: EXIF orientation.

# The stored picture for each orientation: what undoes the turn exif_transpose applies.
STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", STORED)
def test_every_exif_orientation_is_applied(orientation: int, reference: np.ndarray) -> None:
    turn = STORED[orientation]
    stored = draw() if turn is None else draw().transpose(turn)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored.convert("RGB"), "JPEG", exif=exif, quality=95)
    assert same_digit(read(data), reference)


@settings(FUZZ, max_examples=80)
@given(st.integers(0, 65535) | st.sampled_from([0, 9, 255]), st.binary(max_size=64))
def test_odd_orientations_and_broken_exif_never_escape(orientation: int, junk: bytes) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    valid = encode(draw().convert("RGB"), "JPEG", exif=exif)
    read(valid)
    app1 = valid.index(b"Exif\0\0")
    read(valid[: app1 + 6] + junk + valid[app1 + 6 + len(junk) :])


# Truncation, at every kind of boundary.


@FUZZ
@given(st.sampled_from(FORMATS), st.floats(0.0, 1.0, exclude_max=True))
def test_a_truncated_file_is_an_error_or_the_whole_picture(
    reference: np.ndarray, kind: str, fraction: float
) -> None:
    """Never half a picture read as a digit: a cut through the pixels is an ImageError; a cut
    after them (a PNG's IEND, a trailer) still holds the whole drawing."""
    data = encode(draw().convert("RGB"), kind)
    result = read(data[: int(len(data) * fraction)])
    assert result is None or same_digit(result, reference)


def test_a_tiff_whose_strip_offset_is_a_fraction_is_refused_by_name() -> None:
    """Found by test_mutated_valid_files: a StripOffsets tag retyped as RATIONAL makes Pillow
    raise TypeError while decoding, which must reach the user as an ImageError."""
    data = bytearray(encode(draw().convert("F"), "TIFF"))
    assert data[:2] == b"II"
    directory = struct.unpack_from("<I", data, 4)[0]
    entries = struct.unpack_from("<H", data, directory)[0]
    for entry in range(directory + 2, directory + 2 + 12 * entries, 12):
        if struct.unpack_from("<H", data, entry)[0] == 273:  # StripOffsets
            struct.pack_into("<H", data, entry + 2, 5)  # RATIONAL
    with pytest.raises(ImageError, match=NAME):
        load_digit(bytes(data), NAME)


# Paths that are not image files.


def test_a_fifo_or_device_named_like_an_image_is_refused(tmp_path: Path) -> None:
    """Opening a FIFO blocks until a writer comes: a real `handwritten predict` process with a
    timeout, so a regression fails here instead of hanging the suite."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    device = tmp_path / "zeros.png"
    device.symlink_to("/dev/zero")
    done = subprocess.run(
        [Path(sys.executable).with_name("handwritten"), "predict", str(fifo), str(device)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{fifo}: error: {fifo}: is a pipe, device or socket, not an image file.",
        f"{device}: error: {device}: is a pipe, device or socket, not an image file.",
    ]
    assert "Traceback" not in done.stderr
