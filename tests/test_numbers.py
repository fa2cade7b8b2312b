"""Reading whole numbers through the product's own path: drawings composed here, the real
development photos in ../shared/numbers, the CLI's JSON and preview."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from drawings import draw
from PIL import Image

from handwritten import api
from handwritten.cli import main
from handwritten.preprocess import to_mnist

NUMBERS = (ROOT / "../shared/numbers").resolve()
ONE = [(0.5, 0.05), (0.5, 0.95)]
ZERO = [(0.5, 0.1), (0.2, 0.5), (0.5, 0.9), (0.8, 0.5), (0.5, 0.1)]


def side_by_side(*images: Image.Image, gap: int = 20) -> Image.Image:
    """Compose one image of several single drawings, like a number written on one line."""
    width = sum(image.width for image in images) + gap * (len(images) + 1)
    row = Image.new("L", (width, max(image.height for image in images) + 2 * gap), 255)
    left = gap
    for image in images:
        row.paste(image, (left, gap))
        left += image.width + gap
    return row


@pytest.fixture(scope="module")
def classifier() -> api.Classifier:
    return api.load("seed")


def test_drawn_digits_are_read_in_order_with_their_boxes(classifier, tmp_path: Path) -> None:
    drawings = [draw(stroke=ONE), draw(), draw(stroke=ZERO)]
    row = side_by_side(*drawings)
    row.save(tmp_path / "row.png")
    reading = api.read_number(tmp_path / "row.png", classifier)
    assert reading.size == row.size
    assert len(reading.digits) == 3
    lefts = [digit.box[0] for digit in reading.digits]
    assert lefts == sorted(lefts)
    alone = classifier.probabilities(np.stack([to_mnist(single) for single in drawings]))
    assert [digit.digit for digit in reading.digits] == alone.argmax(axis=1).tolist()
    for digit, slot in zip(reading.digits, range(3), strict=True):
        left = 20 + slot * (112 + 20)
        assert left - 2 <= digit.box[0] <= digit.box[2] <= left + 112 + 2


def test_a_broken_stroke_stays_one_digit(classifier) -> None:
    seven = draw(size=112, width=6)
    seven.paste(255, (65, 40, 90, 44))
    assert len(api.read_number(_png(side_by_side(draw(stroke=ONE), seven)), classifier).digits) == 2


def test_pieces_above_each_other_are_one_digit(classifier) -> None:
    five_like = draw(stroke=[(0.3, 0.5), (0.3, 0.95), (0.7, 0.95)])
    five_like.paste(0, (30, 5, 80, 12))
    assert len(api.read_number(_png(side_by_side(five_like, draw())), classifier).digits) == 2


def test_a_blank_image_has_no_number(classifier) -> None:
    reading = api.read_number(_png(Image.new("L", (200, 60), 255)), classifier)
    assert reading.digits == []
    assert reading.number is None


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_predict_number_json_has_boxes_and_preview(tmp_path: Path, capsys) -> None:
    side_by_side(draw(stroke=ONE), draw()).save(tmp_path / "17.png")
    status = main(["predict", "--number", "--json", "--model", "seed", str(tmp_path / "17.png")])
    assert status == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["size"] == [284, 152]
    assert [len(digit["box"]) for digit in answer["digits"]] == [4, 4]
    preview = ["predict", "--number", "--model", "seed", "--preview", str(tmp_path / "out")]
    assert main([*preview, str(tmp_path / "17.png")]) == 0
    with Image.open(tmp_path / "out" / "17.preview.png") as picture:
        assert picture.width > 284


@pytest.mark.integration
def test_reads_the_development_numbers() -> None:
    """The development photos, through `predict --number`'s own path; the floor sits a few
    numbers under what the shipped model reads, so that it catches a real regression."""
    with open(NUMBERS / "labels.csv", newline="", encoding="utf-8") as table:
        rows = [(NUMBERS / row["file"], row["label"]) for row in csv.DictReader(table)]
    readings = api.read_numbers([path for path, _ in rows], api.load("cnn"))
    exact = sum(r.number == label for r, (_, label) in zip(readings, rows, strict=True))
    print(f"numbers read exactly: {exact} of {len(rows)}")
    assert exact >= 41


def test_evaluate_numbers_counts_exact_readings(classifier, tmp_path: Path) -> None:
    side_by_side(draw(stroke=ONE), draw()).save(tmp_path / "a.png")
    side_by_side(draw(), draw(stroke=ONE)).save(tmp_path / "b.png")
    (tmp_path / "labels.csv").write_text('file,label\na.png,"17"\nb.png,"017"\n')
    result = api.evaluate_numbers(tmp_path, classifier)
    read = {r.path: r.number for r in api.read_numbers([tmp_path], classifier)}
    assert read[str(tmp_path / "b.png")] != "017"  # two digits can never read as three
    assert result["images"] == 2
    assert result["correct"] == (read[str(tmp_path / "a.png")] == "17")
    assert str(tmp_path / "b.png") in {miss["path"] for miss in result["wrong"]}


def test_a_photo_stored_sideways_is_read_upright(classifier) -> None:
    from test_page import paper, write

    upright = paper((900, 500))
    boxes = write(upright, "1740", 150, 150, 160, 10)
    sideways = upright.rotate(90, expand=True)  # as a phone held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show"
    buffer = io.BytesIO()
    sideways.save(buffer, format="JPEG", quality=92, exif=exif)
    reading = api.read_number(buffer.getvalue(), classifier, "sideways.jpg")
    assert reading.size == upright.size
    assert reading.number == api.read_number(_png(upright), classifier).number
    assert len(reading.digits) == 4
    for digit, box in zip(reading.digits, boxes, strict=True):
        assert all(abs(a - b) <= 12 for a, b in zip(digit.box, box, strict=True))
