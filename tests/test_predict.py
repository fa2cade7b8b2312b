"""Prediction on files: people's drawings, the samples, and every kind of bad file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from drawings import draw
from PIL import Image, ImageDraw

from handwritten.predict import find_images, predict_files, read_numbers

SAMPLES = ROOT / "digits"


def test_find_images_expands_folders_and_keeps_files(tmp_path: Path) -> None:
    for name in ["b.png", "a.JPG", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    extra = tmp_path / "elsewhere.bmp"
    assert find_images([tmp_path, extra]) == [tmp_path / "a.JPG", tmp_path / "b.png", extra]


def test_bad_files_get_their_own_error_and_the_rest_are_read(tmp_path: Path, seed_model) -> None:
    draw().save(tmp_path / "good.png")
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    whole = (tmp_path / "good.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 3])
    results = {Path(p.path).name: p for p in predict_files([tmp_path], seed_model)}

    good = results["good.png"]
    assert good.error is None
    assert good.digit == int(np.argmax(good.probabilities))
    assert sum(good.probabilities) + (good.not_a_digit or 0) == pytest.approx(1.0, abs=1e-5)
    assert good.status in ("digit", "unsure")
    assert re.fullmatch(r".*good\.png: \d( or \d)*\?? \(.*\d+\.\d%\)", good.describe())

    blank = results["blank.png"]
    assert (blank.digit, blank.error, blank.probabilities) == (None, None, None)
    assert blank.status == "no-ink"
    assert blank.describe().endswith("blank.png: no digit found")

    for name in ["empty.png", "text.png", "cut.png"]:
        assert (results[name].digit, results[name].status) == (None, "error")
        assert name in results[name].error
        assert results[name].to_json()["error"] == results[name].error


def test_a_missing_path_is_an_error_line(tmp_path: Path, seed_model) -> None:
    [result] = predict_files([tmp_path / "gone.png"], seed_model)
    assert "no such file" in result.error


def test_sample_drawings_are_read(seed_model) -> None:
    results = predict_files([SAMPLES], seed_model)
    assert len(results) == 10
    right = sum(p.digit == int(Path(p.path).name[5]) for p in results)
    print(f"sample drawings: {right}/10 right with the seed model")
    assert right >= 8


@pytest.mark.integration
def test_people_drawings_with_the_seed_model(user_digits, seed_model, tmp_path: Path) -> None:
    results = predict_files([path for path, _ in user_digits], seed_model)
    right = sum(p.digit == label for p, (_, label) in zip(results, user_digits, strict=True))
    accuracy = right / len(user_digits)
    print(f"../shared/user-digits: {right}/{len(user_digits)} = {accuracy:.1%} with the seed model")
    assert accuracy >= 0.85


def test_folder_copies_are_read_in_name_order(tmp_path: Path, seed_model) -> None:
    for name in ["digit3-pencil.png", "digit7-alpha.png"]:
        shutil.copy(SAMPLES / name, tmp_path / name)
    results = predict_files([tmp_path], seed_model)
    assert [Path(p.path).name for p in results] == ["digit3-pencil.png", "digit7-alpha.png"]


def compose_number(paths: list[Path]) -> Image.Image:
    """Paste single drawings side by side on white, as if written on one line."""
    singles = []
    for path in paths:
        with Image.open(path) as image:
            rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, "white")
        singles.append(Image.alpha_composite(white, rgba).convert("L"))
    row = Image.new("L", (sum(s.width for s in singles) + 8 * len(singles), 40), 255)
    for index, single in enumerate(singles):
        row.paste(single, (4 + index * (single.width + 8), 6))
    return row


@pytest.mark.integration
def test_read_a_year_composed_from_people_drawings(user_digits, seed_model, tmp_path) -> None:
    readable = {}
    for path, label in user_digits:
        [single] = predict_files([path], seed_model)
        if single.digit == label and single.confidence > 0.9 and Image.open(path).size == (28, 28):
            readable.setdefault(label, path)
    year = [1, 9, 8, 4]
    composed = tmp_path / "year.png"
    compose_number([readable[d] for d in year]).save(composed)
    [reading] = read_numbers([composed], seed_model)
    assert reading.number == "1984"
    assert [d["digit"] for d in reading.to_json()["digits"]] == year
    assert reading.describe().startswith(f"{composed}: 1984 ({reading.status}, least sure digit")


def test_read_number_of_a_bad_file(tmp_path: Path, seed_model) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG")
    [reading] = read_numbers([tmp_path / "bad.png"], seed_model)
    assert reading.number is None
    assert "bad.png" in reading.error
    assert reading.to_json()["number"] is None
    assert reading.to_json()["status"] == "error"


@pytest.mark.integration
def test_people_drawings_with_the_default_cnn(user_digits, cnn_model) -> None:
    results = predict_files([path for path, _ in user_digits], cnn_model)
    right = sum(p.digit == label for p, (_, label) in zip(results, user_digits, strict=True))
    accuracy = right / len(user_digits)
    print(f"../shared/user-digits: {right}/{len(user_digits)} = {accuracy:.1%} with the cnn")
    assert accuracy >= 0.95


def test_sample_drawings_read_by_the_cnn(cnn_model) -> None:
    results = predict_files([SAMPLES], cnn_model)
    right = sum(p.digit == int(Path(p.path).name[5]) for p in results)
    print(f"sample drawings: {right}/10 right with the cnn")
    assert right >= 9


class FixedRows:
    """A classifier answering each digit of a number with the next of the given rows."""

    card = None

    def __init__(self, rows: list[list[float]]) -> None:
        self.rows = np.array(rows, dtype=np.float32)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return self.rows[: len(images)]


def three_digits(tmp_path: Path) -> Path:
    row = Image.new("L", (300, 100), 255)
    drawing = ImageDraw.Draw(row)
    for left in (20, 120, 220):
        drawing.line([(left + 30, 15), (left + 30, 85)], fill=0, width=8)
    row.save(tmp_path / "three.png")
    return tmp_path / "three.png"


SURE_4 = [0.0] * 4 + [1.0] + [0.0] * 6
DOUBTED_6_OR_5 = [0, 0, 0, 0, 0, 0.4, 0.55, 0, 0, 0, 0.05]
NOT_A_DIGIT_BUT_8 = [0, 0, 0, 0, 0, 0, 0, 0, 0.18, 0.02, 0.8]


def test_every_position_of_a_number_gets_its_best_digit(tmp_path: Path) -> None:
    """A piece called "not a digit" is still a position: unsure, with its best digit, not
    "?"; the number holds the best reading and its status says it is unsure."""
    classifier = FixedRows([SURE_4, DOUBTED_6_OR_5, NOT_A_DIGIT_BUT_8])
    [reading] = read_numbers([three_digits(tmp_path)], classifier)
    answer = reading.to_json()
    assert answer["number"] == "468"
    assert answer["status"] == "unsure"
    statuses = [(d["status"], d["digit"], d["alternatives"]) for d in answer["digits"]]
    assert statuses == [("digit", 4, []), ("unsure", 6, [5]), ("unsure", 8, [9])]
    assert answer["digits"][2]["not_a_digit"] == pytest.approx(0.8)
    assert "unsure of 2: 6 or 5?" in reading.describe()
    assert "3: 8 or 9?" in reading.describe()


def test_a_number_whose_every_digit_is_sure_is_sure(tmp_path: Path) -> None:
    [reading] = read_numbers([three_digits(tmp_path)], FixedRows([SURE_4] * 3))
    assert (reading.status, reading.number) == ("sure", "444")


def test_a_blank_image_holds_no_number(tmp_path: Path) -> None:
    Image.new("L", (300, 100), 255).save(tmp_path / "blank.png")
    [reading] = read_numbers([tmp_path / "blank.png"], FixedRows([SURE_4]))
    assert reading.to_json()["status"] == "no-number"
    assert reading.number is None
