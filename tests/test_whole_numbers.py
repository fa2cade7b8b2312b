"""Numbers read whole: the proposals `numbers` makes, and the shipped sequence reader on them
through the product's paths (`predict --number`, `evaluate --numbers`, the server)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT
from drawings import draw
from fastapi.testclient import TestClient
from PIL import Image, ImageOps
from test_numbers import ONE, ZERO, side_by_side

from handwritten import api, bulk, numbers, page
from handwritten.cli import main
from handwritten.reader import ReadDigit, Reader, Reading
from handwritten.serve import create_app

SHARED = (ROOT / "../shared").resolve()
NUMBERS_FLOOR = 35


def register_cell(text: str = "12") -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A tall register cell: the scanner's black margin down the left, a ruled line down
    the right, and a small number in the middle; and the number's box."""
    cell = np.full((220, 130), 235, np.uint8)
    cell[:, :35] = 10
    cell[:, 118:120] = 60
    cv2.putText(cell, text, (62, 118), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 0.7, 30, 2, cv2.LINE_AA)
    ys, xs = np.nonzero(cell[:, 40:116] < 128)
    box = (40 + xs.min(), ys.min(), 40 + xs.max() + 1, ys.max() + 1)
    return Image.fromarray(cell), box


def on_paper(drawing: Image.Image) -> Image.Image:
    """A drawing as if photographed on paper: light falling off from left to right, so the
    image is no plain canvas and its number goes to the reader."""
    grey = np.asarray(drawing.convert("L"), np.float32)
    light = np.linspace(1.0, 0.75, grey.shape[1])[None, :]
    return Image.fromarray(np.uint8(grey * light))


def inside(inner: tuple[int, ...], outer: tuple[int, ...]) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
    )


def test_a_small_number_in_a_tall_cell_is_proposed_whole_and_as_its_line_of_ink() -> None:
    cell, box = register_cell()
    grey, scale = numbers._working_grey(cell)
    assert scale == 1.0
    proposed = numbers.proposals(cell, grey, scale)
    assert proposed[0] == numbers.Proposal("whole", (0, 0, 130, 220))
    lines = [p.box for p in proposed if p.kind == "ink" and p.box[3] - p.box[1] <= 110]
    assert any(inside(box, line) for line in lines)


def test_the_line_of_ink_in_a_cell_leaves_out_the_margin_and_the_rules() -> None:
    cell, box = register_cell()
    grey, _ = numbers._working_grey(cell)
    (line, *_) = numbers.ink_lines(grey)
    assert inside(box, line)
    assert line[0] >= 35  # right of the scanner's black margin
    assert line[2] <= 118  # left of the ruled line
    assert (line[3] - line[1]) < 0.4 * cell.height


def test_digits_a_digit_apart_are_one_line_and_lines_far_apart_are_two() -> None:
    paper = np.full((200, 300), 240, np.uint8)
    for left in (40, 70):  # one number: two strokes 20 px tall, 22 px apart
        paper[40:60, left : left + 8] = 20
    paper[150:170, 200:208] = 20  # another line, well below
    lines = numbers.ink_lines(paper)
    assert len(lines) == 2 * len(numbers.AROUND_INK)  # each line with each share of paper
    tight = lines[:: len(numbers.AROUND_INK)]
    assert all(inside(box, loose) for box, loose in zip(tight, lines[1::2], strict=True))
    first, second = sorted(tight, key=lambda box: box[1])
    assert first[0] < 40
    assert first[2] > 78
    assert first[3] < 150
    assert second[0] > 150
    assert second[1] > 100


def test_a_ragged_scanner_margin_is_no_line_of_ink() -> None:
    cell, box = register_cell()
    grey = np.array(cell.convert("L"))
    edge = np.random.default_rng(0).integers(30, 42, size=grey.shape[0])
    for row, width in enumerate(edge):  # the margin's edge wanders, so no rule removes it
        grey[row, :width] = 10
    lines = numbers.ink_lines(grey)
    assert lines
    assert inside(box, lines[0])
    assert all(line[0] >= 42 for line in lines)


def test_a_1_as_tall_as_a_tight_crop_is_proposed_with_its_number() -> None:
    """Cut close round "10", the 1 runs down most of the crop, as a rule would: the lines of
    ink taken with the usual rule leave it out, those taken with TALL_RULE_SHARE keep it."""
    crop = np.full((60, 160), 230, np.uint8)
    crop[5:55, 50:56] = 20  # the 1, five sixths of the crop's height
    cv2.ellipse(crop, (90, 30), (16, 24), 0, 0, 360, 20, 6)  # the 0
    grey, scale = numbers._working_grey(Image.fromarray(crop))
    assert all(box[0] > 56 for box in numbers.ink_lines(grey))
    tall = numbers.ink_lines(grey, upright_rules=(numbers.TALL_RULE_SHARE,))
    assert tall
    assert all(box[0] <= 50 for box in tall)
    boxes = [p.box for p in numbers.proposals(Image.fromarray(crop), grey, scale)]
    assert set(tall) <= set(boxes)


def tight_10() -> np.ndarray:
    """ "10" cut tight: the 1 down the left edge, the 0 from the top edge to the bottom."""
    crop = np.full((50, 70), 230, np.uint8)
    crop[4:46, 0:6] = 20
    cv2.ellipse(crop, (40, 25), (11, 27), 0, 0, 360, 20, 4)  # its ends cut off
    return crop


def test_writing_that_touches_an_edge_is_proposed_with_paper_beyond_it() -> None:
    crop = tight_10()
    grey, scale = numbers._working_grey(Image.fromarray(crop))
    beyond = int(numbers.PAPER_AT_EDGE * 50) + 1
    proposed = numbers.proposals(Image.fromarray(crop), grey, scale)
    assert proposed[0].box == (-beyond, -beyond, 70, 50 + beyond)  # the right edge untouched
    cut = numbers._cut(grey, proposed[0].box)
    assert cut.shape == (50 + 2 * beyond, 70 + beyond)
    assert np.array_equal(cut[beyond:-beyond, beyond:], grey)
    assert (cut[:beyond] == 230).all()
    assert (cut[:, :beyond] == 230).all()
    spaced = np.pad(crop, 10, constant_values=230)
    grey, scale = numbers._working_grey(Image.fromarray(spaced))
    for proposal in numbers.proposals(Image.fromarray(spaced), grey, scale):
        assert inside(proposal.box, (0, 0, spaced.shape[1], spaced.shape[0]))


def test_digits_read_beyond_the_edge_are_boxed_inside_the_image(shipped_reader) -> None:
    photo = on_paper(Image.fromarray(tight_10()))
    reading = api.read_number(photo_bytes(photo), api.load("seed"), "10.png", shipped_reader)
    assert reading.proposal in {"whole", "ink"}
    assert reading.digits
    for digit in reading.digits:
        assert inside(digit.box, (0, 0, *photo.size))
        assert digit.box[2] > digit.box[0]
        assert digit.box[3] > digit.box[1]


def photo_bytes(image: Image.Image) -> bytes:
    data = io.BytesIO()
    image.save(data, format="PNG")
    return data.getvalue()


def test_a_crop_is_proposed_without_page_finding_and_blank_paper_not_at_all() -> None:
    row = side_by_side(draw(stroke=ONE), draw(), draw(stroke=ONE))
    assert max(row.size) < numbers.CROP_SIDE
    grey, scale = numbers._working_grey(row)
    assert {p.kind for p in numbers.proposals(row, grey, scale)} == {"whole", "ink"}
    chalk = ImageOps.invert(row)  # light writing on a dark ground: no lines of ink
    grey, scale = numbers._working_grey(chalk)
    assert numbers.ink_lines(grey) == []
    assert {p.kind for p in numbers.proposals(chalk, grey, scale)} == {"whole", "found"}
    for size in ((300, 120), (900, 600)):  # a blank crop, a blank photo
        blank = Image.new("L", size, 230)
        grey, scale = numbers._working_grey(blank)
        assert numbers.proposals(blank, grey, scale) == []


def test_a_blank_crop_has_no_line_of_ink() -> None:
    assert numbers.ink_lines(np.full((50, 80), 200, np.uint8)) == []


def test_found_digits_are_proposed_with_paper_around_them() -> None:
    big = {"size": 180, "width": 12}
    row = side_by_side(draw(stroke=ONE, **big), draw(**big), draw(stroke=ONE, **big))
    assert max(row.size) >= numbers.CROP_SIDE  # a photo or scan, not a crop
    grey, scale = numbers._working_grey(row)
    (found,) = [p for p in numbers.proposals(row, grey, scale) if p.kind == "found"]
    digits = [d.box for d in page.find_digits(row)]
    assert len(digits) == 3
    assert all(inside(d, found.box) for d in digits)
    assert found.box != (0, 0, *row.size)


def test_a_big_photo_is_cut_from_a_reduced_copy_and_boxes_come_back_in_its_pixels() -> None:
    photo = Image.new("RGB", (4000, 3000), (230, 228, 220))
    grey, scale = numbers._working_grey(photo)
    assert max(grey.shape) == numbers.WORK_SIDE
    assert scale == numbers.WORK_SIDE / 4000


@pytest.fixture(scope="module")
def shipped_reader() -> api.Reader:
    reader = api.load_reader()
    assert reader is not None, "the number reader ships in models/"
    assert reader.path.suffix == ".onnx"  # read without TensorFlow
    return reader


def test_the_reader_answers_every_position_with_a_box_inside_the_image(
    shipped_reader, tmp_path: Path, capsys
) -> None:
    row = on_paper(side_by_side(draw(stroke=ONE), draw(), draw(stroke=ONE)))
    row.save(tmp_path / "171.png")
    assert main(["predict", "--number", "--json", str(tmp_path / "171.png")]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["read_by"] in {"found", "whole", "ink"}
    assert answer["number"] == "".join(str(d["digit"]) for d in answer["digits"])
    assert answer["status"] in {"sure", "unsure"}
    for digit in answer["digits"]:
        left, top, right, bottom = digit["box"]
        assert 0 <= left < right <= row.width
        assert 0 <= top < bottom <= row.height
        assert digit["status"] in {"digit", "unsure"}
        assert digit["digit"] not in digit["alternatives"]
    lefts = [d["box"][0] for d in answer["digits"]]
    assert lefts == sorted(lefts)


def test_none_reads_digit_by_digit_as_before(shipped_reader, tmp_path: Path, capsys) -> None:
    on_paper(side_by_side(draw(stroke=ONE), draw())).save(tmp_path / "17.png")
    command = ["predict", "--number", "--json", "--model", "seed", str(tmp_path / "17.png")]
    assert main([*command, "--reader", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["read_by"] == "digits"
    assert main(command) == 0
    assert json.loads(capsys.readouterr().out)["read_by"] != "digits"


def test_one_digit_drawn_on_a_plain_canvas_is_read_digit_by_digit(shipped_reader, tmp_path) -> None:
    side_by_side(draw()).save(tmp_path / "7.png")
    classifier = api.load("seed")
    reading = api.read_number(tmp_path / "7.png", classifier, None, shipped_reader)
    alone = api.read_number(tmp_path / "7.png", classifier)
    assert reading.proposal == "digits"
    assert reading.number == alone.number == "7"
    assert [p.box for p in reading.digits] == [p.box for p in alone.digits]


def test_a_row_drawn_on_a_plain_canvas_goes_to_the_reader(shipped_reader, tmp_path) -> None:
    side_by_side(draw(stroke=ZERO), draw(), draw(stroke=ZERO)).save(tmp_path / "070.png")
    reading = api.read_number(tmp_path / "070.png", api.load("seed"), None, shipped_reader)
    assert reading.proposal in {"whole", "ink"}
    assert reading.number == "070"


def test_a_drawn_1_the_reader_passes_over_is_read_digit_by_digit(shipped_reader, tmp_path):
    """The reader takes a lone upright stroke beside a number for a cell's rule; on a plain
    canvas, where there are no rules, page finding's cut digits are read instead."""
    side_by_side(draw(stroke=ONE), draw(), draw(stroke=ZERO)).save(tmp_path / "170.png")
    with Image.open(tmp_path / "170.png") as drawing:
        alone = numbers.read_number(drawing, shipped_reader)
    assert alone is not None
    assert len(alone.reading.digits) < 3
    reading = api.read_number(tmp_path / "170.png", api.load("seed"), None, shipped_reader)
    assert reading.proposal == "digits"
    assert len(reading.digits) == 3


def test_a_reader_file_that_is_missing_is_named(tmp_path: Path, capsys) -> None:
    side_by_side(draw(stroke=ONE), draw()).save(tmp_path / "17.png")
    missing = tmp_path / "nothing.keras"
    status = main(["predict", "--number", "--reader", str(missing), str(tmp_path / "17.png")])
    assert status == 1
    err = capsys.readouterr().err
    assert str(missing) in err
    assert "train-reader" in err


def test_the_server_reads_numbers_with_the_same_reader_as_the_cli(shipped_reader) -> None:
    row = on_paper(side_by_side(draw(stroke=ONE), draw(), draw()))
    data = io.BytesIO()
    row.save(data, format="PNG")
    with TestClient(create_app(model="seed")) as client:
        reply = client.post(
            "/api/predict-number", content=data.getvalue(), headers={"Content-Type": "image/png"}
        )
    assert reply.status_code == 200
    here = api.read_number(data.getvalue(), api.load("seed"), "row.png", shipped_reader)
    body = reply.json()
    assert body["number"] == here.number
    assert [d["box"] for d in body["digits"]] == [list(p.box) for p in here.positions()]


@pytest.mark.integration
def test_reads_the_development_numbers_whole(shipped_reader) -> None:
    """The development photos, through `predict --number`'s own path with the shipped reader;
    the floor sits under what it reads, so that it catches a real regression."""
    with open(SHARED / "numbers" / "labels.csv", newline="", encoding="utf-8") as table:
        rows = [(SHARED / "numbers" / row["file"], row["label"]) for row in csv.DictReader(table)]
    readings = api.read_numbers([path for path, _ in rows], api.load(), shipped_reader)
    exact = sum(r.number == label for r, (_, label) in zip(readings, rows, strict=True))
    print(f"numbers read exactly by the reader: {exact} of {len(rows)}")
    assert exact >= NUMBERS_FLOOR


def test_bulk_rows_read_numbers_whole_in_the_workers_as_predict_does(
    shipped_reader, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, strokes in {"a": (ONE, None), "b": (None, ONE, None), "c": (ONE,)}.items():
        drawn = side_by_side(*[draw() if s is None else draw(stroke=s) for s in strokes])
        on_paper(drawn).save(folder / f"{name}.png")
    classifier = api.load("seed")
    expected = {r.path: r.to_json() for r in api.read_numbers([folder], classifier, shipped_reader)}
    output = tmp_path / "rows.csv"
    done = bulk.write_results(
        [folder], classifier, output, number=True, reader=shipped_reader, workers=2
    )
    assert done.written == 3
    with open(output, newline="") as table:
        rows = list(csv.DictReader(table))
    assert {row["path"]: row["number"] for row in rows} == {
        path: answer["number"] for path, answer in expected.items()
    }
    assert {row["read_by"] for row in rows} <= {"found", "whole", "ink"}
    job = json.loads((tmp_path / "rows.csv.job.json").read_text())
    assert job["reader_sha256"] == hashlib.sha256(shipped_reader.path.read_bytes()).hexdigest()


def test_models_lists_the_number_reader_with_its_figures(shipped_reader, capsys) -> None:
    assert main(["models"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("number reader")]
    validation = shipped_reader.card["validation"]
    assert "handwritten-reader.keras" in line
    assert f"{validation['exact_rate']:.1%}" in line


def reading(text: str, digit_confidences: list[float], mean: float) -> Reading:
    digits = [
        ReadDigit(int(c), confidence, [0.1] * 10, [], (i / 10, (i + 1) / 10))
        for i, (c, confidence) in enumerate(zip(text, digit_confidences, strict=True))
    ]
    return Reading(digits, mean)


def doubted_frames(rng: np.random.Generator, label: str) -> tuple[list[Reading], str]:
    """A number's proposals as a reader might read them: the right reading with every digit
    sure but many doubtful frames around it (a faint, noisy crop), and a cut through the
    number, clean but with one digit it doubts. Mean times least digit prefers the cut."""
    right = reading(label, list(rng.uniform(0.93, 0.99, len(label))), rng.uniform(0.5, 0.65))
    cut = label[1:]
    doubts = [*rng.uniform(0.93, 0.99, len(cut) - 1), rng.uniform(0.7, 0.85)]
    wrong = reading(cut, list(rng.permutation(doubts)), rng.uniform(0.97, 0.995))
    return list(rng.permutation(np.array([right, wrong], dtype=object))), label


def test_the_chooser_learns_which_of_the_readers_confidences_tell_the_number() -> None:
    rng = np.random.default_rng(5)
    labels = ["".join(map(str, rng.integers(0, 10, rng.integers(2, 7)))) for _ in range(200)]
    chooser = numbers.fit_chooser([doubted_frames(rng, label) for label in labels[:150]])
    assert chooser["features"] == list(numbers.CHOOSER_FEATURES)
    assert chooser["proposals"] == 300
    assert chooser["right_proposals"] == 150
    figures = numbers.choice_figures([doubted_frames(rng, x) for x in labels[150:]], chooser)
    assert figures["images"] == figures["among_proposals"] == 50
    assert figures["chooser"] >= 48
    assert figures["product_rule"] <= 5


def test_read_number_chooses_by_the_chooser_its_readers_card_carries(shipped_reader) -> None:
    """The same proposals, read by the same network, choose otherwise when the card's
    chooser weighs otherwise: one that only counts digits takes the longest reading, one
    that counts them against it the shortest."""
    image = on_paper(side_by_side(draw(stroke=ONE), draw(), draw(stroke=ONE)))
    grey, scale = numbers._working_grey(image)
    found = numbers.proposals(image, grey, scale)
    lengths = {len(r.text) for r in shipped_reader.read([numbers._cut(grey, p.box) for p in found])}
    assert len(lengths - {0}) > 1  # the proposals read the number at different lengths
    for weight, length in ((50.0, max(lengths)), (-50.0, min(lengths - {0}))):
        counting = {"mean": [0.0] * 4, "scale": [1.0] * 4, "weights": [0, 0, 0, weight]}
        card = {**shipped_reader.card, "chooser": {**counting, "bias": 0.0}}
        counter = Reader(shipped_reader._run, card, shipped_reader.path)
        assert len(numbers.read_number(image, counter).reading.text) == length


@pytest.mark.integration
def test_fit_chooser_keeps_its_fit_and_figures_in_the_card_and_the_onnx_copy(
    shipped_reader, tmp_path: Path, capsys
) -> None:
    for suffix in (".keras", ".card.json", ".onnx"):
        source = shipped_reader.path.with_suffix(suffix)
        if suffix == ".card.json":
            source = shipped_reader.path.with_name("handwritten-reader.card.json")
        (tmp_path / f"reader{suffix}").write_bytes(source.read_bytes())
    args = ["fit-chooser", "--reader", str(tmp_path / "reader.keras"), "--images", "12"]
    assert main([*args, "--checks", "6", "--sources", "pendigits"]) == 0
    assert "of 6 generated validation numbers" in capsys.readouterr().out
    card = json.loads((tmp_path / "reader.card.json").read_text())
    chooser = card["chooser"]
    assert chooser["fitted_on"] == "12 generated images, seed 44"
    assert chooser["validation"]["images"] == 6
    assert chooser["validation"]["chooser"] <= chooser["validation"]["among_proposals"]
    assert api.load_reader(tmp_path / "reader.keras").card["chooser"] == chooser
