"""Small drawings made by the tests themselves, in the styles people's drawings come in."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

# A seven with a long stroke and a bar: asymmetric, so flips and rotations would show.
SEVEN = [(0.2, 0.15), (0.8, 0.15), (0.45, 0.9)]


def draw(
    size: int = 112,
    width: int = 8,
    ink: int = 0,
    paper: int = 255,
    stroke: list[tuple[float, float]] = SEVEN,
    box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0),
) -> Image.Image:
    """A grayscale drawing of `stroke`, placed inside `box` (fractions of the canvas)."""
    image = Image.new("L", (size, size), paper)
    left, top, right, bottom = box
    points = [
        ((left + x * (right - left)) * (size - 1), (top + y * (bottom - top)) * (size - 1))
        for x, y in stroke
    ]
    ImageDraw.Draw(image).line(points, fill=ink, width=width, joint="curve")
    return image


def encode(image: Image.Image, kind: str = "PNG", **options: object) -> bytes:
    """The bytes of `image` saved as `kind` (PNG, JPEG, ...), as a client would send them."""
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()
