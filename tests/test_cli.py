"""The command line: real processes for the console script, in-process runs for the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_DIR, ROOT
from drawings import draw

from handwritten.cli import main

HANDWRITTEN = Path(sys.executable).with_name("handwritten")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(HANDWRITTEN), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_console_script_predicts_the_samples_as_json_lines(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_text("not a png")
    done = run("predict", "--json", "digits/", str(tmp_path / "broken.png"))
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 11
    assert set(lines[0]) == {
        "path",
        "status",
        "digit",
        "confidence",
        "alternatives",
        "probabilities",
        "not_a_digit",
        "error",
    }
    assert all(len(line["probabilities"]) == 10 for line in lines[:10])
    assert lines[10]["digit"] is None
    assert "broken.png" in lines[10]["error"]
    assert done.returncode == 1
    assert "Traceback" not in done.stderr


def test_console_script_reports_a_user_mistake_without_a_traceback() -> None:
    done = run("predict", "--model", "nowhere.keras", "digits/")
    assert done.returncode == 1
    assert done.stderr.startswith("handwritten: error: nowhere.keras: no such model file")
    assert "Traceback" not in done.stderr
    assert "oneDNN" not in done.stderr


def test_predict_plain_output(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    draw().save(tmp_path / "seven.png")
    assert main(["predict", str(tmp_path / "seven.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{tmp_path / 'seven.png'}: ")
    assert out.rstrip().endswith("%)")


def test_predict_with_no_images_found(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert main(["predict", str(tmp_path)]) == 1
    assert "no image files found" in capsys.readouterr().err


def test_predict_preview_writes_one_picture_per_image(tmp_path: Path) -> None:
    draw().save(tmp_path / "seven.png")
    assert main(["predict", "--preview", str(tmp_path / "out"), str(tmp_path / "seven.png")]) == 0
    preview = tmp_path / "out" / "seven.preview.png"
    from PIL import Image

    with Image.open(preview) as image:
        assert image.size == (900, 300)
        assert len(np.unique(np.asarray(image.convert("L")))) > 10


def test_show_without_a_display_says_what_to_do(capsys: pytest.CaptureFixture) -> None:
    assert main(["predict", "--show", "digits/digit3-pencil.png"]) == 1
    assert "--preview" in capsys.readouterr().err


@pytest.mark.integration
def test_evaluate_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", "--model", "seed", "--data-dir", str(MNIST_DIR), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 10000
    assert result["accuracy"] >= 0.97
    assert 0 < result["loss"] < 0.2


def test_evaluate_with_a_data_dir_lacking_mnist(capsys, tmp_path: Path) -> None:
    assert main(["evaluate", "--data-dir", str(tmp_path)]) == 1
    assert str(tmp_path) in capsys.readouterr().err


def test_train_refuses_to_overwrite(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    output = tmp_path / "model.keras"
    output.write_bytes(b"keep me")
    assert main(["train", "--output", str(output), "--data-dir", str(MNIST_DIR)]) == 1
    assert "--force" in capsys.readouterr().err
    assert output.read_bytes() == b"keep me"


def test_train_names_a_source_it_cannot_keep(capsys: pytest.CaptureFixture, tmp_path) -> None:
    output = tmp_path / "model.keras"
    for sources, complaint in (
        ("mnist,nosuch", "--sources: no source named nosuch"),
        ("mnist,optdigits-orig", "--sources: optdigits-orig is not among"),
    ):
        command = ["train", "--model", "lean", "--sources", sources, "--output", str(output)]
        assert main([*command, "--data-dir", str(MNIST_DIR)]) == 1
        assert complaint in capsys.readouterr().err
    assert not output.exists()


def test_argument_errors_exit_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "positive" in capsys.readouterr().err


@pytest.mark.integration
def test_an_onnx_copied_alone_reads_the_drawings_like_the_shipped_model(tmp_path: Path) -> None:
    from conftest import USER_DIGITS

    from handwritten.registry import resolve_model
    from handwritten.runtime import onnx_path

    alone = tmp_path / "empty" / "copy.onnx"
    alone.parent.mkdir()
    alone.write_bytes(onnx_path(resolve_model("cnn")).read_bytes())
    drawings = str(USER_DIGITS / "images")
    copied = run("predict", "--json", "--model", str(alone), drawings)
    shipped = run("predict", "--json", "--model", "cnn", "--runtime", "keras", drawings)
    assert copied.returncode == shipped.returncode == 0, copied.stderr + shipped.stderr
    assert "warning" not in copied.stderr
    digits = [
        [json.loads(line)["digit"] for line in done.stdout.splitlines()]
        for done in (copied, shipped)
    ]
    assert len(digits[0]) == 355
    assert digits[0] == digits[1]
