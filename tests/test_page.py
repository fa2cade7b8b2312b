"""Finding the digits of a number on a page: synthetic photos the tests draw themselves, and
the real development set in ../shared/numbers."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from handwritten import page
from handwritten.preprocess import ink_to_mnist

# Digits as pen strokes in a unit box (x right, y down): enough to test where digits are.
STROKES = {
    "1": [[(0.55, 0.0), (0.55, 1.0)]],
    "7": [[(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)]],
    "4": [[(0.7, 1.0), (0.7, 0.0), (0.0, 0.65), (1.0, 0.65)]],
    "2": [[(0.0, 0.25), (0.3, 0.0), (0.8, 0.0), (1.0, 0.25), (0.0, 1.0), (1.0, 1.0)]],
    "5": [
        [(1.0, 0.0), (0.1, 0.0)],
        [(0.1, 0.05), (0.05, 0.45), (0.9, 0.5), (1.0, 0.95), (0.0, 1.0)],
    ],
}


def paper(size=(900, 500), shade=(225, 220, 205), gradient=60, vignette=True) -> Image.Image:
    """Paper lit from one side, darker towards the corners, with a little grain."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 1.0 - gradient / 255.0 * (x / width)
    if vignette:
        r = np.hypot((x - width / 2) / width, (y - height / 2) / height)
        light *= 1.0 - 0.5 * r**2
    noise = np.random.default_rng(0).normal(0, 3, (height, width, 1))
    pixels = np.array(shade, np.float32) * light[..., None] + noise
    return Image.fromarray(np.uint8(np.clip(pixels, 0, 255)))


def write(
    image: Image.Image, text: str, left: int, top: int, height: int, pen: int, ink=(30, 30, 60)
) -> list[tuple[int, int, int, int]]:
    """Draw the digits of `text` and return each one's box (where its ink is)."""
    width = int(0.6 * height)
    boxes = []
    x = left
    for digit in text:
        alone = Image.new("L", image.size, 0)
        for target, colour in ((image, ink), (alone, 255)):
            draw = ImageDraw.Draw(target)
            if digit == "0":
                draw.ellipse((x, top, x + width, top + height), outline=colour, width=pen)
            for stroke in STROKES.get(digit, []):
                points = [(x + u * width, top + v * height) for u, v in stroke]
                draw.line(points, fill=colour, width=pen, joint="curve")
        boxes.append(alone.getbbox())
        x += int(1.2 * width)
    return boxes


def assert_boxes(found: list[page.DigitBox], expected: list[tuple[int, int, int, int]], slack):
    assert len(found) == len(expected)
    lefts = [d.box[0] for d in found]
    assert lefts == sorted(lefts)
    for digit, box in zip(found, expected, strict=True):
        assert all(abs(a - b) <= slack for a, b in zip(digit.box, box, strict=True)), (
            digit.box,
            box,
        )
        assert digit.ink.dtype == np.float32
        assert digit.ink.min() >= 0.0
        assert digit.ink.max() <= 1.0
        assert ink_to_mnist(digit.ink).shape == (28, 28)


def test_lit_unevenly_paper_with_vignetting():
    image = paper()
    boxes = write(image, "17420", 150, 180, 120, 7)
    assert_boxes(page.find_digits(image), boxes, slack=12)


def test_ruled_lines_crossing_the_digits_are_removed():
    image = paper(vignette=False)
    draw = ImageDraw.Draw(image)
    for y in range(60, 500, 70):
        draw.line((0, y, 900, y + 6), fill=(120, 140, 190), width=3)
    boxes = write(image, "2471", 200, 150, 140, 7)
    assert_boxes(page.find_digits(image), boxes, slack=15)


def test_page_edge_table_and_shadow_are_not_digits():
    image = Image.new("RGB", (1000, 700), (60, 45, 35))  # the table
    sheet = paper((800, 520))
    image.paste(sheet, (110, 120))
    draw = ImageDraw.Draw(image, "RGBA")
    draw.ellipse((500, 520, 1300, 1100), fill=(0, 0, 0, 110))  # a hand's shadow
    boxes = write(image, "740", 260, 260, 110, 6)
    assert_boxes(page.find_digits(image), boxes, slack=12)


def test_specks_and_dots_are_ignored():
    image = paper(vignette=False)
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(1)
    for x, y in rng.integers((0, 0), (900, 500), (60, 2)):
        draw.ellipse((x, y, x + 3, y + 3), fill=(60, 60, 60))
    boxes = write(image, "4127", 180, 170, 130, 7)
    assert_boxes(page.find_digits(image), boxes, slack=12)


def test_light_ink_on_a_dark_board():
    image = Image.new("RGB", (800, 400), (35, 60, 45))
    boxes = write(image, "2570", 120, 120, 140, 8, ink=(235, 235, 225))
    assert_boxes(page.find_digits(image.filter(ImageFilter.GaussianBlur(1))), boxes, slack=12)


def test_a_thick_marker_close_up_stays_dark_ink_on_light_paper():
    """A stroke a seventh of the photo wide fills much of a window a sixth wide: the paper beside
    it must not pass for light writing, or only the stroke's outline is found."""
    image = paper((200, 200), gradient=20)
    drawn = Image.new("L", image.size, 0)
    for target, colour in ((image, (30, 30, 40)), (drawn, 255)):
        ImageDraw.Draw(target).ellipse((40, 15, 160, 185), outline=colour, width=28)
    digit = page.find_digit(image)
    assert digit is not None
    height, width = digit.ink.shape
    stroke = np.asarray(drawn.crop(digit.box).resize((width, height), Image.NEAREST)) > 0
    ink = digit.ink > 0.5
    assert (ink & stroke).sum() >= 0.8 * stroke.sum(), "the stroke is ink through and through"
    assert (ink & ~stroke).sum() <= 0.1 * ink.sum(), "the paper beside it is not"


def test_a_broken_stroke_and_a_bar_drawn_apart_stay_one_digit():
    image = paper(vignette=False)
    draw = ImageDraw.Draw(image)
    # A 7 whose stem has a gap, and a 5 whose bar does not touch its body.
    draw.line((200, 150, 290, 150, 262, 230), fill=(20, 20, 20), width=7)
    draw.line((255, 250, 230, 320), fill=(20, 20, 20), width=7)
    draw.line((420, 150, 350, 150), fill=(20, 20, 20), width=7)
    draw.line((345, 175, 340, 220, 420, 230, 430, 300, 340, 315), fill=(20, 20, 20), width=7)
    found = page.find_digits(image)
    assert len(found) == 2
    assert found[0].box[0] < 215
    assert found[0].box[3] > 310
    assert found[1].box[1] < 160
    assert found[1].box[3] > 305


def test_two_touching_digits_are_cut_apart():
    image = paper(vignette=False)
    draw = ImageDraw.Draw(image)
    draw.ellipse((200, 150, 290, 300), outline=(20, 20, 20), width=8)
    draw.ellipse((284, 150, 374, 300), outline=(20, 20, 20), width=8)  # touches the first 0
    write(image, "1", 420, 150, 150, 8, ink=(20, 20, 20))
    found = page.find_digits(image)
    assert len(found) == 3
    cut = found[0].box[2]
    assert 270 <= cut <= 305
    assert found[1].box[0] >= 270


def test_a_wide_zero_is_not_cut():
    image = paper(vignette=False)
    draw = ImageDraw.Draw(image)
    write(image, "2", 150, 150, 120, 8, ink=(20, 20, 20))
    draw.ellipse((260, 160, 460, 270), outline=(20, 20, 20), width=8)  # 0 wider than tall
    assert len(page.find_digits(image)) == 2


def test_small_digits_in_a_12_megapixel_photo():
    image = paper((4000, 3000), gradient=40)
    boxes = write(image, "42071", 1500, 1400, 70, 5)
    assert_boxes(page.find_digits(image), boxes, slack=12)


def test_a_drawing_white_on_black_and_ink_in_alpha():
    image = Image.new("L", (300, 120), 0)
    boxes = write(image, "174", 30, 20, 80, 6, ink=255)
    assert_boxes(page.find_digits(image), boxes, slack=6)
    alpha = Image.new("RGBA", (300, 120), (0, 0, 0, 0))
    write(alpha, "174", 30, 20, 80, 6, ink=(0, 0, 0, 255))
    assert_boxes(page.find_digits(alpha), boxes, slack=6)


def test_blank_paper_has_no_digits():
    image = paper()
    assert page.find_digits(image) == []
    assert page.find_digit(image) is None


def test_blank_evenly_lit_paper_has_no_digits():
    image = paper(vignette=False)
    assert page.find_digits(image) == []
    assert page.find_digit(image) is None


def test_single_digit_on_paper():
    image = paper((400, 500))
    (box,) = write(image, "4", 120, 120, 250, 10)
    digit = page.find_digit(image)
    assert digit is not None
    assert all(abs(a - b) <= 15 for a, b in zip(digit.box, box, strict=True))
    assert ink_to_mnist(digit.ink).shape == (28, 28)


def test_drawings_and_photos_are_told_apart():
    canvas = Image.new("RGB", (300, 300), "white")
    ImageDraw.Draw(canvas).line([(150, 0), (150, 300)], fill="black", width=12)  # off the edge
    assert page.is_plain_canvas(canvas)
    assert page.is_plain_canvas(Image.new("RGBA", (200, 200), (0, 0, 0, 0)))
    assert page.is_plain_canvas(Image.new("L", (28, 28), 128))
    assert not page.is_plain_canvas(paper((400, 300)))


def test_twenty_digits_on_one_line():
    image = paper((2600, 400))
    text = "14702" * 4
    boxes = write(image, text, 60, 120, 140, 9)
    assert_boxes(page.find_digits(image), boxes, slack=8)


def test_digits_of_mixed_sizes_on_a_slanted_line():
    image = paper((1100, 600))
    boxes = []
    for index, (digit, height) in enumerate(zip("7410", (150, 120, 170, 135), strict=True)):
        left, top = 120 + 210 * index, 160 + 25 * index  # the line climbs down to the right
        boxes += write(image, digit, left, top, height, 9)
    assert_boxes(page.find_digits(image), boxes, slack=8)
