"""`evaluate --report`: every file written, pictures sized and not blank, and the tables
telling the same story as `evaluate --json` on the same model and data."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import MNIST_DIR
from pictures import picture

from handwritten import models
from handwritten.cli import main
from handwritten.evaluate import score
from handwritten.report import REPORT_FILES, write_report

pytestmark = pytest.mark.integration


def evaluate_with_report(model: str, folder: Path) -> dict:
    """Run `evaluate --json --report` in process; return what it printed."""
    out = io.StringIO()
    args = ["evaluate", "--model", model, "--data-dir", str(MNIST_DIR), "--json"]
    with contextlib.redirect_stdout(out):
        assert main([*args, "--report", str(folder)]) == 0
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("report") / "out"
    return folder, evaluate_with_report("seed", folder)


def test_writes_every_file(report) -> None:
    folder, _ = report
    assert sorted(p.name for p in folder.iterdir()) == sorted(REPORT_FILES)
    assert all((folder / name).stat().st_size > 0 for name in REPORT_FILES)


def test_pictures_are_the_promised_size(report) -> None:
    folder, printed = report
    wrong = printed["n"] - np.trace(printed["confusion"])
    assert wrong > 100, "the grid below is capped at 100 mistakes"
    # Only the cells holding a confusion are coloured: how many depends on the model.
    picture(folder / "confusion.png", (700, 600), min_ink=0.1)
    picture(folder / "mistakes.png", (1000, 1345), min_ink=0.3)


def test_evaluation_json_is_what_evaluate_json_printed(report) -> None:
    folder, printed = report
    assert json.loads((folder / "evaluation.json").read_text()) == printed


def test_per_class_tables_agree_with_evaluate_json(report) -> None:
    folder, printed = report
    rows = json.loads((folder / "per_class.json").read_text())
    with open(folder / "per_class.csv", newline="") as table:
        csv_rows = list(csv.DictReader(table))
    assert len(rows) == len(csv_rows) == 10
    for digit, (row, csv_row) in enumerate(zip(rows, csv_rows, strict=True)):
        precision, recall = printed["precision"][digit], printed["recall"][digit]
        assert row["digit"] == int(csv_row["digit"]) == digit
        assert row["precision"] == float(csv_row["precision"]) == precision
        assert row["recall"] == float(csv_row["recall"]) == recall
        assert row["f1"] == float(csv_row["f1"])
        assert row["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
        assert row["support"] == int(csv_row["support"]) == sum(printed["confusion"][digit])


def test_mistakes_table_lists_every_mistake_worst_first(report, seed_model, mnist) -> None:
    folder, printed = report
    with open(folder / "mistakes.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == printed["n"] - np.trace(printed["confusion"])
    confidences = [float(row["confidence"]) for row in rows]
    assert confidences == sorted(confidences, reverse=True)
    indices = [int(row["index"]) for row in rows]
    assert len(set(indices)) == len(indices)
    probabilities = seed_model.probabilities(mnist.x_test[indices[:5]])
    for row, again in zip(rows, probabilities, strict=False):
        assert int(row["true"]) == mnist.y_test[int(row["index"])] != int(row["predicted"])
        assert int(row["predicted"]) == again.argmax()
        assert float(row["confidence"]) == pytest.approx(again.max(), abs=1e-6)


def test_index_links_only_to_files_in_the_folder(report) -> None:
    folder, printed = report
    page = (folder / "index.html").read_text()
    targets = set(re.findall(r'(?:src|href)="([^"]*)"', page))
    assert targets == set(REPORT_FILES) - {"index.html"}
    assert "://" not in page
    assert f"{printed['accuracy']:.4f}" in page


def test_report_for_any_model_file(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    untrained = tmp_path / "untrained.keras"
    models.build_seed().save(untrained)
    printed = evaluate_with_report(str(untrained), tmp_path / "out")
    assert printed["accuracy"] < 0.5
    picture(tmp_path / "out" / "mistakes.png", (1000, 1345), min_ink=0.3)
    assert str(untrained) in (tmp_path / "out" / "index.html").read_text()


def test_report_without_mistakes(seed_model, mnist, tmp_path: Path) -> None:
    probabilities = seed_model.probabilities(mnist.x_test[:100])
    right = probabilities.argmax(axis=1) == mnist.y_test[:100]
    images, labels, probabilities = (
        mnist.x_test[:100][right],
        mnist.y_test[:100][right],
        probabilities[right],
    )
    result = score(probabilities, labels)
    write_report(tmp_path, result, images, labels, probabilities, model="seed")
    assert (tmp_path / "mistakes.csv").read_text() == "index,true,predicted,confidence\n"
    picture(tmp_path / "mistakes.png", (600, 175), min_ink=0.005)
    assert all(row["recall"] == 1.0 for row in result.per_class())
