"""Write the fuzzer's seed corpus: one tiny file per kind of image people and attackers send.

Seeds give the fuzzer a head start inside each decoder (a valid PNG, a GIF animation, a CMYK
JPEG, ...) instead of making it rediscover every file signature from random bytes. All are
drawn here, none copied from elsewhere, and together they stay a few KB. Run
`python fuzz/make_corpus.py` to rewrite fuzz/corpus/.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CORPUS = Path(__file__).parent / "corpus"


def seven(size: int = 24, mode: str = "L") -> Image.Image:
    """A small dark seven on white, converted to `mode`."""
    image = Image.new("L", (size, size), 255)
    corners = [(0.2 * size, 0.15 * size), (0.8 * size, 0.15 * size), (0.45 * size, 0.9 * size)]
    ImageDraw.Draw(image).line(corners, fill=0, width=max(1, size // 12))
    return image.convert(mode)


def encode(image: Image.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` but carries one row: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


def animated_gif() -> bytes:
    frames = [seven(mode="P"), Image.new("P", (24, 24), 255)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)


def phone_photo() -> bytes:
    """A JPEG stored on its side with EXIF orientation 6, as phones save them."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(seven().rotate(90, expand=True).convert("RGB"), "JPEG", exif=exif, quality=60)


def sixteen_bit_png() -> bytes:
    wide = np.asarray(seven(), dtype=np.uint16) * 257
    return encode(Image.fromarray(wide), "PNG")


def alpha_ink() -> bytes:
    """Ink only in the alpha channel, as a canvas exported with a transparent background."""
    image = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    image.putalpha(Image.eval(seven(), lambda value: 255 - value))
    return encode(image, "PNG")


SEEDS: dict[str, Callable[[], bytes]] = {
    "seven.png": lambda: encode(seven(), "PNG"),
    "seven-1bit.png": lambda: encode(seven(mode="1"), "PNG"),
    "seven-palette.png": lambda: encode(seven(16, mode="P"), "PNG"),
    "seven-16bit.png": sixteen_bit_png,
    "seven-alpha.png": alpha_ink,
    "one-pixel.png": lambda: encode(Image.new("L", (1, 1), 0), "PNG"),
    "bomb-20000x20000.png": lambda: png_claiming(20000, 20000),
    "animated.gif": animated_gif,
    "seven.jpg": lambda: encode(seven().convert("RGB"), "JPEG", quality=50),
    "seven-cmyk.jpg": lambda: encode(seven(mode="CMYK"), "JPEG", quality=50),
    "phone-exif-6.jpg": phone_photo,
    "seven.bmp": lambda: encode(seven(12), "BMP"),
    "seven.webp": lambda: encode(seven(), "WEBP", quality=50),
    "seven-lab.tif": lambda: encode(seven(12, mode="RGB").convert("LAB"), "TIFF"),
    "seven-float.tif": lambda: encode(seven(16, mode="F"), "TIFF"),
}


def main() -> int:
    CORPUS.mkdir(exist_ok=True)
    for name, make in SEEDS.items():
        (CORPUS / name).write_bytes(make())
    total = sum(path.stat().st_size for path in CORPUS.iterdir())
    print(f"wrote {len(SEEDS)} seeds to {CORPUS}, {total:,} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
