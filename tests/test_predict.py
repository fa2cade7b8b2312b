"""Prediction on files: people's drawings, the samples, and every kind of bad file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from drawings import draw
from PIL import Image

from handwritten.predict import find_images, predict_files

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
    assert sum(good.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert re.fullmatch(r".*good\.png: \d \(\d+\.\d%\)", good.describe())

    blank = results["blank.png"]
    assert (blank.digit, blank.error, blank.probabilities) == (None, None, None)
    assert blank.describe().endswith("blank.png: no digit found")

    for name in ["empty.png", "text.png", "cut.png"]:
        assert results[name].digit is None
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
