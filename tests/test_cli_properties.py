"""The command line under random flags, empty and odd values, interruptions and two writers.

What issue 25 asked for after finding, by hand, what the image and API fuzzing missed. Every
run must end with no traceback and a documented exit status (0 done, 1 an error or an
unreadable image, 2 a wrong argument, 130 interrupted), and what it wrote must be valid or
refused. Most runs call `cli.main` in this process, which is what the console script does;
interruptions and two writers need real processes, as signals and process groups are what
they are about. Examples are few and the inputs small, to keep the suite within its time.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT, USER_DIGITS, default_sigint
from drawings import draw
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from handwritten import bulk, predict
from handwritten.cli import build_parser, main

HANDWRITTEN = Path(sys.executable).with_name("handwritten")
STATUSES = {0, 1, 2}
ODD_TEXT = [
    "",
    " ",
    "-1",
    "0",
    "1",
    "2.5",
    "x",
    "é",
    "٣",
    "\uff11",  # a fullwidth 1
    "a\nb",
    "\u202e",
    "/proc/version",
    "afile",
    "afile/x",
    "dir/",
    ".png",
    ".csv",
    "out.csv",
    "out.parquet",
    "out.txt",
    "9" * 30,
]
odd_values = st.sampled_from(ODD_TEXT) | st.text(max_size=8).filter(lambda t: "\0" not in t)
QUICK = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def options_of(command: str) -> dict[str, bool]:
    """Every option of a subcommand, as argparse knows them (so new ones are covered), and
    whether it takes a value."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    return {
        option: action.nargs != 0
        for action in subparsers.choices[command]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


@pytest.mark.parametrize(
    "command", ["train", "tune", "evaluate", "predict", "gallery", "serve", "export", "models"]
)
@QUICK
@given(data=st.data())
def test_any_flags_with_odd_values_parse_or_are_refused_in_words(
    command: str, data: st.DataObject, capsys: pytest.CaptureFixture
) -> None:
    """Parsing alone, for every command: a value is taken, or refused with status 2 in words
    (never an internal name such as `_positive_int`); a blank value is never taken (an empty
    path meant this folder, an empty model or list the default; only --ray's is documented)."""
    takes_value = options_of(command)
    argv, values = [command], []
    for option in data.draw(st.lists(st.sampled_from(sorted(takes_value)), max_size=4)):
        value = data.draw(odd_values) if takes_value[option] else None
        argv += [option] if value is None else [option, value]
        values += [] if value is None or option == "--ray" else [value]
    if command in ("predict", "tune"):
        positional = data.draw(st.lists(odd_values, max_size=2))
        argv, values = argv + positional, values + positional
    try:
        build_parser().parse_args(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    else:
        status = None
    assert status is not None or all(value.strip() for value in values), argv
    if status is not None:
        assert status == 2
        error = capsys.readouterr().err
        assert f"handwritten {command}: error: " in error or (
            "handwritten: error: unrecognized arguments: " in error
        )
        assert " value: " not in error  # argparse's "invalid <function name> value: ..."


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few drawings, a blank, a broken file, odd names and an empty folder."""
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "digits").mkdir()
    for index, size in enumerate((64, 90, 120)):
        draw(size=size).save(folder / "digits" / f"{index}.png")
    draw().save(folder / "new\nline.png")
    draw().save(folder / "é ٣.jpg")
    draw().save(folder / NOT_UTF8)
    draw().save(folder / "a$\\frac$.png")
    Image.new("L", (40, 40), 255).save(folder / "blank.png")
    (folder / "broken.png").write_text("not a png")
    (folder / "empty").mkdir()
    (folder / "afile").write_text("in the way")
    (folder / "model.keras").write_text("not a model")
    return folder


NOT_UTF8 = os.fsdecode(b"bad\xff.png")  # A Latin-1 name from an old archive.
INPUT_NAMES = [
    "digits",
    "digits/",
    "new\nline.png",
    "é ٣.jpg",
    NOT_UTF8,
    "a$\\frac$.png",
    "blank.png",
    "broken.png",
]
input_paths = st.sampled_from([*INPUT_NAMES, "empty", "missing.png", "afile", "", "."])
PREDICT_FLAGS = {
    "--json": None,
    "--number": None,
    "--preview": odd_values,
    "--output": st.sampled_from(
        ["out.csv", "out.parquet", "é/out.csv", "a\nb.parquet", "/proc/r.csv"]
    )
    | odd_values,
    "--chunk": st.integers(1, 4).map(str) | odd_values,
    "--model": st.sampled_from(["seed", "", "nowhere.keras", "model.keras", "afile", "."]),
    "--runtime": st.sampled_from(["onnx", "auto", "x", ""]),
}


@st.composite
def predict_commands(draw_from: st.DrawFn) -> list[str]:
    argv = ["predict", *draw_from(st.lists(input_paths, min_size=1, max_size=3))]
    for flag in draw_from(st.lists(st.sampled_from(sorted(PREDICT_FLAGS)), max_size=4)):
        value = PREDICT_FLAGS[flag]
        argv += [flag] if value is None else [flag, draw_from(value)]
    if "--model" not in argv:
        argv += ["--model", "seed", "--runtime", "onnx"]
    if draw_from(st.booleans()):  # Half the runs write a file: resuming is the riskiest part.
        argv += ["--output", draw_from(PREDICT_FLAGS["--output"])]
    return argv


@contextlib.contextmanager
def in_a_copy_of(folder: Path):
    """Run in a fresh copy of `folder`, so each example starts from the same files."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "work"
        shutil.copytree(folder, copy)
        with contextlib.chdir(copy):
            yield copy


@QUICK
@given(argv=predict_commands())
def test_predict_with_random_flags_ends_in_a_documented_status(
    argv: list[str], inputs: Path, capsys: pytest.CaptureFixture
) -> None:
    """No traceback (an exception would fail the test here), a documented status, and an
    --output that is complete: every image once, in order, or the run refused."""
    with in_a_copy_of(inputs) as here:
        try:
            status = main(argv)
        except SystemExit as exit_info:
            status = exit_info.code
        captured = capsys.readouterr()
        assert status in STATUSES, (argv, captured.err)
        event(f"status {status}" + (", rows written" if "rows written" in captured.err else ""))
        if status == 2:
            assert "handwritten predict: error: " in captured.err
        for line in captured.err.splitlines():
            assert not line.startswith("Traceback"), captured.err
        if status in (0, 1) and "rows written" in captured.err:
            args = build_parser().parse_args(argv)
            assert written_paths(here / args.output) == [
                as_written(path) for path in predict.iter_images(args.paths)
            ]


def as_written(path: Path) -> str:
    """A path as an output holds it: bytes that are not UTF-8 escaped, as --json does."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def written_paths(output: Path) -> list[str]:
    if output.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(output).column("path").to_pylist()
    with open(output, newline="", encoding="utf-8") as table:
        return [row["path"] for row in csv.DictReader(table)]


CELLS = st.sampled_from(["a.png", "b.png", "7", "0", "12", "-1", "3.0", "", " ", "é", "x;y"])
SEPARATORS = st.sampled_from([",", ";", "\t"])
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])


@st.composite
def labels_tables(draw_from: st.DrawFn) -> bytes:
    """A labels.csv as people might write it: any header, separator, cells and encoding."""
    separator = draw_from(SEPARATORS)
    header = draw_from(st.sampled_from(["file,label", "file,kind", "File,Label", "label,file"]))
    rows = draw_from(st.lists(st.lists(CELLS | st.text(max_size=4), max_size=4), max_size=4))
    lines = [header.replace(",", separator), *(separator.join(row) for row in rows)]
    text = "\n".join(lines) + draw_from(st.sampled_from(["", "\n", "\r\n"]))
    return text.encode(draw_from(ENCODINGS), errors="replace")


@QUICK
@given(table=labels_tables(), option=st.sampled_from(["--drawings", "--numbers", "--nondigits"]))
def test_evaluate_on_any_labels_csv_scores_or_names_the_problem(
    table: bytes, option: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        folder = Path(scratch)
        for name in ("a.png", "b.png"):
            draw().save(folder / name)
        (folder / "labels.csv").write_bytes(table)
        status = main(["evaluate", "--model", "seed", "--runtime", "onnx", option, str(folder)])
    captured = capsys.readouterr()
    assert status in (0, 1)
    event(f"status {status}")
    if status == 1:
        assert captured.err.startswith(f"handwritten: error: {folder}")
        assert captured.err.count("\n") == 1
    else:
        assert captured.out.startswith(f"{folder}: ")


@pytest.fixture(scope="module")
def many_drawings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,065 drawings (the people's 355, three times over): a job long enough to interrupt
    while its pool of workers runs. Copied: nothing may write beside ../shared."""
    folder = tmp_path_factory.mktemp("many")
    for image in sorted((USER_DIGITS / "images").iterdir()):
        shutil.copy(image, folder / image.name)
        for copy in (1, 2):
            os.link(folder / image.name, folder / f"{copy}-{image.name}")
    return folder


def started(args: list[str], stderr_file: Path) -> subprocess.Popen:
    with open(stderr_file, "w") as stderr:
        return subprocess.Popen(
            [str(HANDWRITTEN), *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=default_sigint,
        )


def wait_for_rows(process: subprocess.Popen, output: Path, rows: int) -> None:
    """Until `rows` are committed, or the run ended: the job's own progress, not a clock."""
    record = bulk.sidecar(output)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(record.read_text()).get("rows", 0) >= rows:
                return
        time.sleep(0.005)


def ended(process: subprocess.Popen) -> int:
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail("the run did not end within 60 s of its interruption")


SLOW = settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.integration
@SLOW
@given(
    rows=st.integers(0, 600),
    gaps=st.lists(st.sampled_from([0.0, 0.01, 0.05, 0.3]), max_size=2),
    suffix=st.sampled_from([".csv", ".parquet"]),
)
def test_interrupted_anywhere_then_rerun_gives_every_image_once(
    rows: int, gaps: list[float], suffix: str, many_drawings: Path, tmp_path: Path
) -> None:
    """Ctrl-C to the process group (once or more) once `rows` are committed: status 130 (or
    death by SIGINT, which a shell reports as 130; or 0 if the job had finished), never a
    traceback; then a rerun completes the output with every image once, in order."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        output = Path(scratch) / f"r{suffix}"
        command = ["predict", "--model", "seed", "--chunk", "20", "--output", str(output)]
        process = started([*command, str(many_drawings)], Path(scratch) / "stderr")
        wait_for_rows(process, output, rows)
        for gap in [0.0, *gaps]:
            time.sleep(gap)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
        status = ended(process)
        errors = (Path(scratch) / "stderr").read_text()
        assert status in (0, 130, -signal.SIGINT), errors
        assert "Traceback" not in errors
        done = subprocess.run(
            [str(HANDWRITTEN), *command, str(many_drawings)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert written_paths(output) == [str(p) for p in sorted(many_drawings.iterdir())]


@pytest.mark.integration
@SLOW
@given(rows=st.integers(0, 600))
def test_two_writers_on_one_output_never_mix_their_rows(
    rows: int, many_drawings: Path, tmp_path: Path
) -> None:
    """A second run started on the same output once `rows` are committed is refused (or, if
    the first has finished, finds nothing left to do); the first completes the output."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        output = Path(scratch) / "r.csv"
        command = ["predict", "--model", "seed", "--output", str(output), str(many_drawings)]
        first = started(command, Path(scratch) / "first")
        wait_for_rows(first, output, rows)
        second = subprocess.run(
            [str(HANDWRITTEN), *command], capture_output=True, text=True, timeout=240
        )
        assert ended(first) == 0, (Path(scratch) / "first").read_text()
        if second.returncode == 1:
            assert second.stderr == (
                f"handwritten: error: {output}: another `predict --output` is writing it now "
                "(it holds r.csv.lock); wait for that run to finish, or choose another "
                "--output.\n"
            )
        else:
            assert second.returncode == 0, second.stderr
            assert ": 0 rows written, 1065 already there; 0 files" in second.stderr
        assert written_paths(output) == [str(p) for p in sorted(many_drawings.iterdir())]
