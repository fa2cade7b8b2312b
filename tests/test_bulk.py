"""Bulk reading: the process pool, results streamed to CSV or Parquet, resuming after a kill.

Unit tests use drawings made here; the kill tests run the real console script on copies of
the people's drawings in ../shared/user-digits and SIGKILL it midway.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from conftest import ROOT, USER_DIGITS, default_sigint
from drawings import draw
from PIL import Image

from handwritten import api, bulk, trust
from handwritten.errors import HandwrittenError

HANDWRITTEN = Path(sys.executable).with_name("handwritten")
STROKES = [
    [(0.2, 0.15), (0.8, 0.15), (0.45, 0.9)],  # a seven
    [(0.5, 0.05), (0.5, 0.95)],  # a one
    [(0.5, 0.1), (0.2, 0.5), (0.5, 0.9), (0.8, 0.5), (0.5, 0.1)],  # a zero
    [(0.2, 0.2), (0.8, 0.2), (0.2, 0.85), (0.8, 0.85)],  # a zed, read as a 2 or a 7
]


@pytest.fixture(scope="module")
def classifier() -> api.Classifier:
    return api.load("seed")


@pytest.fixture(scope="module")
def drawings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 drawings in several strokes and widths, one blank canvas and one broken file:
    enough for the pool to take many tasks, and for several chunks."""
    folder = tmp_path_factory.mktemp("drawings")
    for index in range(150):
        stroke = STROKES[index % len(STROKES)]
        draw(size=64 + index % 5 * 24, width=4 + index % 7, stroke=stroke).save(
            folder / f"{index:03d}.png"
        )
    Image.new("L", (80, 80), 255).save(folder / "150-blank.png")
    (folder / "151-broken.png").write_text("not a png")
    return folder


def expected_rows(folder: Path, classifier: api.Classifier) -> list[dict]:
    """What `predict --json` gives, one by one in this process: the reference."""
    return [prediction.to_json() for prediction in api.predict([folder], classifier)]


def same_answers(got: object, expected: object) -> bool:
    """What a user sees, compared field by field: equal, except that a probability computed in
    another process (another batch, another thread count, another CPU) may differ in its last
    bits, up to `trust.RUNTIME_TOLERANCE`; the thresholds keep that far from people's scores."""
    if isinstance(expected, float) and isinstance(got, float):
        return abs(got - expected) <= trust.RUNTIME_TOLERANCE
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(
            same_answers(got[key], expected[key]) for key in expected
        )
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(map(same_answers, got, expected))
    return got == expected


def test_answers_differing_beyond_the_last_bits_are_not_the_same() -> None:
    row = {"path": "a.png", "digit": 7, "confidence": 0.9, "probabilities": [0.9, 0.1]}
    nudged = {**row, "confidence": 0.9 + trust.RUNTIME_TOLERANCE / 2}
    assert same_answers([nudged], [row])
    assert not same_answers([{**row, "confidence": 0.9 + 2 * trust.RUNTIME_TOLERANCE}], [row])
    assert not same_answers([{**row, "digit": 1}], [row])
    assert not same_answers([{**row, "probabilities": [0.9]}], [row])
    assert not same_answers([row, row], [row])


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as table:
        return [
            {key: _decode(value) for key, value in row.items()} for row in csv.DictReader(table)
        ]


def _decode(text: str):
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def test_read_many_gives_predicts_results_in_order_through_the_pool(
    drawings: Path, classifier: api.Classifier
) -> None:
    results = list(bulk.read_many([drawings], classifier, workers=2, progress=False))
    assert same_answers([r.to_json() for r in results], expected_rows(drawings, classifier))
    assert results[-1].error
    assert "151-broken.png" in results[-1].error
    assert results[-2].digit is None
    assert results[-2].error is None


@pytest.mark.parametrize(("seconds", "pooled"), [(3600.0, False), (0.0, True)])
def test_files_are_read_here_for_a_while_and_the_rest_by_the_pool(
    drawings: Path,
    classifier: api.Classifier,
    monkeypatch: pytest.MonkeyPatch,
    seconds: float,
    pooled: bool,
) -> None:
    """A job done within IN_PROCESS_SECONDS starts no pool; past it, the pool reads the rest,
    and either way the results are the same, in order."""
    started = []
    real_pooled = bulk._pooled

    def pooled_and_noted(*args: object) -> object:
        started.append(args)
        return real_pooled(*args)

    monkeypatch.setattr(bulk, "IN_PROCESS_SECONDS", seconds)
    monkeypatch.setattr(bulk, "_pooled", pooled_and_noted)
    results = list(bulk.read_many([drawings], classifier, progress=False))
    assert same_answers([r.to_json() for r in results], expected_rows(drawings, classifier))
    assert bool(started) is pooled


def test_csv_rows_are_the_json_fields_of_every_image_once(
    tmp_path: Path, drawings: Path, classifier: api.Classifier
) -> None:
    done = bulk.write_results([drawings], classifier, tmp_path / "r.csv", chunk=40)
    expected = expected_rows(drawings, classifier)
    assert (done.written, done.skipped, done.errors) == (152, 0, 1)
    with open(tmp_path / "r.csv", encoding="utf-8") as table:
        assert next(csv.reader(table)) == list(expected[0])
    assert same_answers(csv_rows(tmp_path / "r.csv"), expected)


def test_parquet_folder_holds_the_same_rows_as_the_csv(
    tmp_path: Path, drawings: Path, classifier: api.Classifier
) -> None:
    import pyarrow.parquet as pq

    bulk.write_results([drawings], classifier, tmp_path / "r.parquet", chunk=40)
    assert sorted(p.name for p in (tmp_path / "r.parquet").iterdir()) == [
        f"part-00000{i}.parquet" for i in range(4)
    ]
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.schema.field("digit").type == "int64"
    rows = [
        {
            k: json.loads(v) if isinstance(v, str) and v.startswith("[") else v
            for k, v in row.items()
        }
        for row in table.to_pylist()
    ]
    assert same_answers(rows, expected_rows(drawings, classifier))


def test_a_rerun_cuts_what_a_kill_left_after_the_last_commit(
    tmp_path: Path, drawings: Path, classifier: api.Classifier
) -> None:
    """The states a kill leaves (bytes after the committed length, a part file renamed in
    but not recorded, a half-written temporary) are cut back, then the job finishes."""
    reference = tmp_path / "reference.csv"
    bulk.write_results([drawings], classifier, reference, chunk=40)
    resumed, parts = tmp_path / "r.csv", tmp_path / "r.parquet"
    for output in (resumed, parts):
        bulk.write_results([drawings], classifier, output, chunk=40)
        _rewind_record(output, rows=80, parts=2)
    resumed.write_bytes(resumed.read_bytes()[: _recorded(resumed)["bytes"]] + b"/torn/row,7,0.9")
    (parts / ".part-000002.x1.parquet").write_bytes(b"PAR1 half")
    done = bulk.write_results([drawings], classifier, resumed, chunk=40)
    assert (done.written, done.skipped) == (72, 80)
    assert same_answers(csv_rows(resumed), csv_rows(reference))
    bulk.write_results([drawings], classifier, parts, chunk=40)
    import pyarrow.parquet as pq

    assert pq.read_table(parts).column("path").to_pylist() == [
        row["path"] for row in csv_rows(reference)
    ]


def _recorded(output: Path) -> dict:
    return json.loads(bulk.sidecar(output).read_text())


def _rewind_record(output: Path, rows: int, parts: int) -> None:
    """Put the job record back to an earlier commit, as if a kill had come right after the
    data of later chunks reached the disk but before their commit."""
    record = _recorded(output)
    if output.suffix == ".csv":
        with open(output, "rb") as table:
            lines = table.read().split(b"\n")
        record["bytes"] = len(b"\n".join(lines[: rows + 1])) + 1
    committed = table_rows(output)[:rows]
    prefix = ""
    for row in committed:
        prefix = bulk.chain(prefix, row["path"])
    errors = sum(bool(row["error"]) for row in committed)
    record.update(rows=rows, parts=parts, last=committed[-1]["path"], prefix=prefix, errors=errors)
    bulk.sidecar(output).write_text(json.dumps(record))


def csv_paths(output: Path) -> list[str]:
    if output.suffix == ".csv":
        return [row["path"] for row in csv_rows(output)]
    import pyarrow.parquet as pq

    return pq.read_table(output).column("path").to_pylist()


def test_number_mode_rows_are_the_readings(tmp_path: Path, classifier: api.Classifier) -> None:
    from test_numbers import ONE, ZERO, side_by_side

    folder = tmp_path / "numbers"
    folder.mkdir()
    for index in range(3):
        digits = [draw(stroke=ONE if (index >> bit) & 1 else ZERO) for bit in range(3)]
        side_by_side(*digits).save(folder / f"n{index}.png")
    bulk.write_results([folder], classifier, tmp_path / "n.csv", number=True)
    expected = [reading.to_json() for reading in api.read_numbers([folder], classifier)]
    rows = csv_rows(tmp_path / "n.csv")
    assert same_answers([{**row, "number": str(row["number"])} for row in rows], expected)
    assert [len(row["digits"]) for row in rows] == [3, 3, 3]


def test_output_of_another_job_is_refused(
    tmp_path: Path, drawings: Path, classifier: api.Classifier
) -> None:
    output = tmp_path / "r.csv"
    bulk.write_results([drawings], classifier, output)
    with pytest.raises(HandwrittenError, match=r"started by another job .*--number"):
        bulk.write_results([drawings], classifier, output, number=True)
    with pytest.raises(HandwrittenError, match=r"started by another job .*handwritten-cnn"):
        bulk.write_results([drawings], api.load("cnn"), output)
    assert len(csv_rows(output)) == 152


def test_changed_inputs_are_refused_not_resumed_wrongly(
    tmp_path: Path, drawings: Path, classifier: api.Classifier
) -> None:
    folder = tmp_path / "in"
    shutil.copytree(drawings, folder)
    output = tmp_path / "r.parquet"
    bulk.write_results([folder], classifier, output, chunk=50)
    _rewind_record(output, rows=50, parts=1)
    (folder / "000.png").unlink()
    with pytest.raises(HandwrittenError, match=r"inputs changed .*first 50 rows \(up to .*049"):
        bulk.write_results([folder], classifier, output, chunk=50)


def test_bad_outputs_are_named_with_the_fix(tmp_path: Path, classifier: api.Classifier) -> None:
    draw().save(tmp_path / "seven.png")
    with pytest.raises(HandwrittenError, match=r"results.txt: unknown format; .*\.csv .*\.parquet"):
        bulk.write_results([tmp_path], classifier, tmp_path / "results.txt")
    (tmp_path / "mine.csv").write_text("a,b\n")
    with pytest.raises(HandwrittenError, match=r"mine\.csv: exists but was not written by"):
        bulk.write_results([tmp_path], classifier, tmp_path / "mine.csv")
    assert (tmp_path / "mine.csv").read_text() == "a,b\n"
    (tmp_path / "empty").mkdir()
    with pytest.raises(HandwrittenError, match="empty: no image files found"):
        bulk.write_results([tmp_path / "empty"], classifier, tmp_path / "r.csv")
    assert not (tmp_path / "r.csv").exists()


def run(*args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(HANDWRITTEN), *args], capture_output=True, text=True, timeout=300, cwd=ROOT, **options
    )


def test_cli_names_options_that_do_not_go_together(tmp_path: Path) -> None:
    done = run("predict", "digits/", "--ray")
    assert done.returncode == 1
    assert "--ray writes its rows to a file: add --output" in done.stderr
    done = run("predict", "--json", "--output", str(tmp_path / "r.csv"), "digits/")
    assert "--json, --preview and --show print or draw" in done.stderr
    done = run("predict", "--output", str(tmp_path / "r.json"), "digits/")
    assert "r.json: unknown format" in done.stderr
    assert "Traceback" not in done.stderr


def test_progress_bar_only_when_stderr_is_a_terminal(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    # A terminal of 24 by 80 characters: without a size, tqdm draws a bar of no width.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        [str(HANDWRITTEN), "predict", "--output", str(tmp_path / "t.csv"), "digits/"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    shown = _read_all(controller)
    assert process.wait(timeout=120) == 0
    assert "10/10" in shown
    assert "image/s" in shown
    piped = run("predict", "--output", str(tmp_path / "p.csv"), "digits/")
    assert "image/s" not in piped.stderr
    assert "10 rows written" in piped.stderr


def _read_all(descriptor: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 4096)
        except OSError:  # The other end closed: Linux says EIO.
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(descriptor)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture(scope="module")
def user_drawings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 355 real drawings, copied: the kill tests must never touch ../shared."""
    folder = tmp_path_factory.mktemp("user-digits")
    for image in sorted((USER_DIGITS / "images").iterdir()):
        shutil.copy(image, folder / image.name)
    return folder


@pytest.mark.integration
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_killed_midway_and_rerun_gives_each_image_once(
    tmp_path: Path, user_drawings: Path, suffix: str
) -> None:
    reference = tmp_path / f"reference{suffix}"
    done = run("predict", "--model", "seed", "--output", str(reference), str(user_drawings))
    assert done.returncode == 0, done.stderr
    output = tmp_path / f"results{suffix}"
    command = ["predict", "--model", "seed", "--chunk", "20", "--output", str(output)]
    killed = kill_when_committed([*command, str(user_drawings)], output, rows=60)
    assert 60 <= killed < 355, "the kill came too late to test a resume"
    done = run(*command, str(user_drawings))
    assert done.returncode == 0, done.stderr
    assert f"{355 - killed} rows written, {killed} already there" in done.stderr
    assert table_rows(output) == table_rows(reference)
    paths = [row["path"] for row in table_rows(output)]
    assert len(paths) == len(set(paths)) == 355


def kill_when_committed(args: list[str], output: Path, rows: int) -> int:
    """Start the console script, SIGKILL it once `rows` are committed; the rows it had."""
    process = subprocess.Popen([str(HANDWRITTEN), *args], cwd=ROOT, stderr=subprocess.DEVNULL)
    record = bulk.sidecar(output)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if record.is_file() and json.loads(record.read_text() or "{}").get("rows", 0) >= rows:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait(timeout=60)
    return json.loads(record.read_text())["rows"]


def table_rows(output: Path) -> list[dict]:
    if output.suffix == ".csv":
        return csv_rows(output)
    import pyarrow.parquet as pq

    return pq.read_table(output).to_pylist()


class Interrupting:
    """A classifier that raises KeyboardInterrupt (as Ctrl-C does) on its `after`-th batch,
    and optionally runs `meanwhile` on its first: an interruption or a second writer at a
    known point of a job, with no timing involved."""

    def __init__(self, classifier: api.Classifier, after: int | None = None, meanwhile=None):
        self.classifier, self.after, self.meanwhile, self.calls = classifier, after, meanwhile, 0
        self.path, self.card = classifier.path, classifier.card

    def probabilities(self, images):
        self.calls += 1
        if self.meanwhile is not None and self.calls == 1:
            self.meanwhile()
        if self.calls == self.after:
            raise KeyboardInterrupt
        return self.classifier.probabilities(images)


def interrupted_run(paths: list, classifier: api.Classifier, output: Path, chunks: int) -> None:
    """Run a job with chunks of 40 rows and interrupt it after `chunks` are committed."""
    with pytest.raises(KeyboardInterrupt):
        bulk.write_results(paths, Interrupting(classifier, after=chunks + 1), output, chunk=40)
    assert _recorded(output)["rows"] == 40 * chunks


def test_a_second_writer_on_the_same_output_is_refused_while_the_first_runs(
    tmp_path: Path, drawings: Path, classifier: api.Classifier
) -> None:
    """Issue 25, item 11: two runs on one output wrote every row twice and both succeeded."""
    output, refusals = tmp_path / "r.csv", []

    def second_writer() -> None:
        with pytest.raises(HandwrittenError) as refused:
            bulk.write_results([drawings], classifier, output, chunk=40)
        refusals.append(str(refused.value))

    first = Interrupting(classifier, meanwhile=second_writer)
    done = bulk.write_results([drawings], first, output, chunk=40)
    assert refusals == [
        f"{output}: another `predict --output` is writing it now (it holds r.csv.lock); wait "
        "for that run to finish, or choose another --output."
    ]
    assert (done.written, done.skipped) == (152, 0)
    assert csv_rows(output) == expected_rows(drawings, classifier)
    again = bulk.write_results([drawings], classifier, output, chunk=40)
    assert (again.written, again.skipped) == (0, 152)


def test_an_interrupted_run_leaves_the_output_unlocked_for_its_rerun(
    tmp_path: Path, drawings: Path, classifier: api.Classifier
) -> None:
    output = tmp_path / "r.parquet"
    interrupted_run([drawings], classifier, output, chunks=1)
    done = bulk.write_results([drawings], classifier, output, chunk=40)
    assert (done.written, done.skipped) == (112, 40)


def test_a_file_renamed_inside_the_committed_rows_is_refused(
    tmp_path: Path, drawings: Path, classifier: api.Classifier
) -> None:
    """Issue 25, item 12: only the last committed path was checked, so renaming an earlier
    file (its place in the sorted listing unchanged) was resumed: a row for a file that is
    gone, none for its new name."""
    folder = tmp_path / "in"
    shutil.copytree(drawings, folder)
    output = tmp_path / "r.csv"
    interrupted_run([folder], classifier, output, chunks=2)
    (folder / "010.png").rename(folder / "010a.png")
    with pytest.raises(HandwrittenError, match=r"inputs changed .*first 80 rows \(up to .*079"):
        bulk.write_results([folder], classifier, output, chunk=40)
    (folder / "010a.png").rename(folder / "010.png")
    with open(folder / "020.png", "ab") as grown:
        grown.write(b"\0")
    with pytest.raises(HandwrittenError, match="inputs changed"):
        bulk.write_results([folder], classifier, output, chunk=40)


def test_a_resumed_run_counts_the_unreadable_files_of_the_whole_job(
    tmp_path: Path, drawings: Path, classifier: api.Classifier, capsys: pytest.CaptureFixture
) -> None:
    """Issue 25, item 13: a resumed run reported only its own rows' errors and exited 0,
    though the output held an error row; so did a rerun of a finished job with errors."""
    from handwritten.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "000-broken.png").write_text("not a png")
    for index in range(1, 60):
        shutil.copy(drawings / f"{index:03d}.png", folder / f"{index:03d}.png")
    output = tmp_path / "r.csv"
    interrupted_run([folder], classifier, output, chunks=1)
    command = ["predict", "--model", "seed", "--chunk", "40", "--output", str(output), str(folder)]
    assert main(command) == 1
    assert "20 rows written, 40 already there; 1 files could not be read" in capsys.readouterr().err
    assert main(command) == 1
    assert "0 rows written, 60 already there; 1 files could not be read" in capsys.readouterr().err


def test_a_folder_written_with_or_without_its_slash_is_one_job(
    tmp_path: Path, drawings: Path, classifier: api.Classifier
) -> None:
    """Issue 25, item 19: `predict big` and `predict big/` were different jobs."""
    output = tmp_path / "r.csv"
    interrupted_run([f"{drawings}/"], classifier, output, chunks=1)
    done = bulk.write_results([f"{drawings}/."], classifier, output, chunk=40)
    assert (done.written, done.skipped) == (112, 40)
    assert csv_rows(output) == expected_rows(drawings, classifier)


@pytest.fixture(scope="module")
def many_drawings(user_drawings: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,775 drawings (the 355, linked five times): a job long enough to be interrupted
    while its pool of workers runs."""
    folder = tmp_path_factory.mktemp("many")
    for copy in range(5):
        for image in user_drawings.iterdir():
            os.link(image, folder / f"{copy}-{image.name}")
    return folder


def interrupt_when_committed(
    args: list[str], output: Path, rows: int, gaps: list[float]
) -> tuple[int, str]:
    """Start the console script in its own process group; once `rows` are committed, send
    Ctrl-C to the whole group (as a terminal does), then again after each of `gaps` seconds.
    The exit status and stderr; stderr goes to a file, as workers left behind would hold a
    pipe open."""
    errors = output.with_name("stderr.txt")
    with open(errors, "w") as stderr:
        process = subprocess.Popen(
            [str(HANDWRITTEN), *args],
            cwd=ROOT,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=default_sigint,
        )
    record = bulk.sidecar(output)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if record.is_file() and json.loads(record.read_text() or "{}").get("rows", 0) >= rows:
            break
        time.sleep(0.01)
    for gap in [0.0, *gaps]:
        time.sleep(gap)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
    try:
        status = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        status = None
    return status, errors.read_text()


@pytest.mark.integration
@pytest.mark.parametrize("gaps", [[0.0], [0.05], [0.2, 0.2]], ids=["at-once", "50ms", "thrice"])
def test_ctrl_c_once_or_twice_ends_the_run_with_130_and_no_traceback(
    tmp_path: Path, many_drawings: Path, gaps: list[float]
) -> None:
    """Issue 25, item 10: a second Ctrl-C 50 ms after the first left the process waiting on
    its workers until killed, or ended in a KeyboardInterrupt traceback."""
    output = tmp_path / "r.csv"
    command = ["predict", "--model", "seed", "--chunk", "20", "--output", str(output)]
    status, errors = interrupt_when_committed([*command, str(many_drawings)], output, 100, gaps)
    assert status in (130, -signal.SIGINT), errors
    assert "Traceback" not in errors
    assert errors.strip().splitlines()[0] == "handwritten: interrupted"
    done = run(*command, str(many_drawings))
    assert done.returncode == 0, done.stderr
    paths = [row["path"] for row in csv_rows(output)]
    assert paths == [str(path) for path in sorted(many_drawings.iterdir())]


def test_a_record_of_an_earlier_version_resumes_on_its_last_path(
    tmp_path: Path, drawings: Path, classifier: api.Classifier
) -> None:
    """A job interrupted before the prefix hash existed: its last path is what it can check."""
    output = tmp_path / "r.csv"
    interrupted_run([drawings], classifier, output, chunks=2)
    older = {k: v for k, v in _recorded(output).items() if k not in ("prefix", "errors")}
    bulk.sidecar(output).write_text(json.dumps(older))
    done = bulk.write_results([drawings], classifier, output, chunk=40)
    assert (done.written, done.skipped) == (72, 80)
    assert csv_rows(output) == expected_rows(drawings, classifier)
    bulk.sidecar(output).write_text(json.dumps({**older, "last": "elsewhere.png"}))
    with pytest.raises(HandwrittenError, match="inputs changed"):
        bulk.write_results([drawings], classifier, output, chunk=40)


@pytest.mark.parametrize("where", ["/proc/r.csv", "taken.csv"])
def test_an_output_whose_lock_cannot_be_made_is_refused_by_name(
    where: str, tmp_path: Path, drawings: Path, classifier: api.Classifier
) -> None:
    """Found by the CLI property tests: the lock file that cannot be made (a folder where no
    file may be created, or a folder in its place) was a FileNotFoundError traceback."""
    output = Path(where) if where.startswith("/") else tmp_path / where
    if not where.startswith("/"):
        (tmp_path / "taken.csv.lock").mkdir()
    with pytest.raises(HandwrittenError, match=rf"^--output {output}: its lock file .* cannot be"):
        bulk.write_results([drawings], classifier, output)
