"""The command line: real processes for the console script, in-process runs for the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_DIR, ROOT, default_sigint
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
    assert "must be a whole number above 0, not 0" in capsys.readouterr().err


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


@pytest.mark.parametrize(
    "make_args",
    [
        lambda afile: ["predict", "--preview", str(afile), "digits/digit3-pencil.png"],
        lambda afile: ["predict", "--preview", "/proc/version", "digits/digit3-pencil.png"],
        lambda afile: ["predict", "--output", str(afile / "out.csv"), "digits/"],
        lambda afile: ["predict", "--output", str(afile / "deeper/out.parquet"), "digits/"],
        lambda afile: ["gallery", "--output", str(afile / "g.png"), "--data-dir", str(MNIST_DIR)],
    ],
    ids=["preview-file", "preview-proc", "output-csv", "output-parquet", "gallery"],
)
def test_a_folder_that_cannot_be_made_is_named_not_a_traceback(
    make_args, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 25, item 14: FileExistsError and NotADirectoryError tracebacks."""
    monkeypatch.chdir(ROOT)
    afile = tmp_path / "afile"
    afile.write_text("in the way")
    assert main(make_args(afile)) == 1
    error = capsys.readouterr().err
    assert error.startswith("handwritten: error: ")
    assert "cannot be made, a file is in the way; choose another place." in error
    assert afile.read_text() == "in the way"


def test_a_folder_one_may_not_write_in_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 25, item 14: PermissionError where the folder exists but is not writable."""
    monkeypatch.chdir(ROOT)
    assert main(["predict", "--preview", "/proc/self", "digits/digit3-pencil.png"]) == 1
    assert "digit3-pencil.preview.png: cannot be written in /proc/self (" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--model", "", "digits/"], "argument --model: must not be empty"),
        (["train", "--seed", "-1"], "argument --seed: must be a whole number from 0 to 4294967295"),
        (["tune", "x", "--output", "y.keras", "--seed", str(2**32)], "from 0 to 4294967295"),
        (["predict", ""], "argument PATH: must be a file or folder name, not ''"),
        (["predict", "--preview", "", "digits/"], "argument --preview: must be a file or"),
        (["predict", "--output", " ", "digits/"], "argument --output: must be a file or"),
        (["train", "--augment", ""], "argument --augment: must not be empty"),
        (["evaluate", "--drawings", ""], "argument --drawings: must be a file or folder name"),
        (["predict", "--chunk", "", "x"], "argument --chunk: must be a whole number above 0, not"),
        (["serve", "--port", "http"], "argument --port: must be a port number from 1 to 65535"),
        (["gallery", "--digit", "x"], "argument --digit: must be a digit from 0 to 9, not 'x'"),
        (["gallery", "--output", ".png"], "argument --output: must be a .png file, not '.png'"),
    ],
)
def test_empty_and_odd_values_are_refused_in_words(
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 25, items 14, 18 and 19: an empty model, path or list meant the default or this
    folder; a negative seed ended in NumPy's ValueError; argparse named `_positive_int`.
    Run in an empty folder: taken, `predict --preview ''` wrote there, `train` trained."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error
    assert "invalid" not in error


def test_an_empty_model_name_is_refused_by_the_api() -> None:
    from handwritten import api
    from handwritten.errors import ModelError

    with pytest.raises(ModelError, match="empty name"):
        api.load("")
    for folder in (".", "/"):  # Found by the CLI property tests: ValueError from pathlib.
        with pytest.raises(ModelError, match=f"^{folder}: is a folder, not a model file"):
            api.load(folder)


def test_a_file_name_with_a_newline_stays_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Issue 25, item 19: the one-line-per-image text output broke on such a name."""
    draw().save(tmp_path / "seven\nfake: 1 (100.0%).png")
    (tmp_path / "broken\r.png").write_text("not a png")
    assert main(["predict", "--model", "seed", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path}/broken\\r.png: error: ")
    assert lines[1].startswith(f"{tmp_path}/seven\\nfake: 1 (100.0%).png: ")


def test_train_refuses_its_output_before_tensorflow_loads() -> None:
    """Issue 25, item 19: the refusal came after TensorFlow's oneDNN start-up lines."""
    done = run("train", "--output", "README.md")
    assert done.returncode == 1
    assert (
        done.stderr
        == "handwritten: error: --output README.md: exists; pass --force to overwrite it.\n"
    )


@pytest.mark.parametrize("name", [os.fsdecode(b"bad\xff.png"), "a$\\frac$.png"])
def test_odd_file_names_are_previewed_and_written_to_csv_and_parquet(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Found by the CLI property tests: a file name that is not UTF-8 ended in a
    UnicodeEncodeError writing CSV or Parquet, and in Matplotlib's error in a preview title,
    as did a name that reads as TeX."""
    folder = tmp_path / "in"
    folder.mkdir()
    draw().save(folder / name)
    for option in (
        ["--preview", str(tmp_path / "p")],
        ["--number", "--preview", str(tmp_path / "n")],
    ):
        assert main(["predict", "--model", "seed", *option, str(folder)]) == 0
    assert (tmp_path / "p" / f"{Path(name).stem}.preview.png").is_file()
    assert (tmp_path / "n" / f"{Path(name).stem}.preview.png").is_file()
    for output in (tmp_path / "r.csv", tmp_path / "r.parquet"):
        assert main(["predict", "--model", "seed", "--output", str(output), str(folder)]) == 0
    shown = str(folder / name).encode("utf-8", "backslashreplace").decode()
    assert (
        (tmp_path / "r.csv")
        .read_text(encoding="utf-8")
        .splitlines()[1]
        .startswith(f"{shown},digit,")
    )
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "r.parquet").column("path").to_pylist() == [shown]
    capsys.readouterr()


def test_a_folder_in_place_of_a_file_to_write_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Found by hand after the property tests: a folder where the job record (or a gallery)
    goes ended in IsADirectoryError from os.replace."""
    (tmp_path / "r.csv.job.json").mkdir()
    (tmp_path / "g.png").mkdir()
    command = ["predict", "--output", str(tmp_path / "r.csv"), str(ROOT / "digits")]
    assert main(command) == 1
    assert main(["gallery", "--output", str(tmp_path / "g.png"), "--data-dir", str(MNIST_DIR)]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert errors == [
        f"handwritten: error: {tmp_path / name}: is a folder, so it cannot be written as a file; "
        "choose another name."
        for name in ("r.csv.job.json", "g.png")
    ]


LOST_INTERRUPT = """
import os, signal, weakref
from handwritten.cli import CtrlC

ctrl_c = CtrlC()


class Lock:
    pass


def released(reference):
    os.kill(os.getpid(), signal.SIGINT)  # Lands here, in a weakref callback.
    sum(range(10_000))


lock = Lock()
reference = weakref.ref(lock, released)
try:
    del lock
    for _ in range(10**9):  # Plain code, busy: the interrupt must come here.
        pass
    print("ran on")
except KeyboardInterrupt:
    print("interrupted", ctrl_c.pressed)
"""


def test_a_ctrl_c_that_lands_in_a_weakref_callback_still_stops_the_command() -> None:
    """Python cannot raise from a weakref callback; it printed "Exception ignored" with a
    traceback and the command ran on. The interrupt must come again, from plain code."""
    ran = subprocess.run(
        [sys.executable, "-c", LOST_INTERRUPT],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=default_sigint,
    )
    assert (ran.stdout, ran.stderr) == ("interrupted True\n", "")
