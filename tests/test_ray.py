"""`predict --output --ray ADDRESS` on a real two-node Ray cluster started on this machine.

The head and a second node are real `ray start` processes (one CPU each, their own temp
folder); the second node's raylet is SIGKILLed in the middle of a job to show that no row is
lost or repeated. The drawings are copies of ../shared/user-digits in a temp folder.

Hermetic: every Ray process and `handwritten` run here has a home of its own, so nothing a
user's own Ray left in ~/.ray (such as the token that a local `predict --ray` writes) changes
the cluster, and nothing of the cluster's is left behind. That home holds a token, as a
user's does after a local run: the head then turns token authentication on by itself
(`ray start` does whenever a token is on the machine), the second node is started with
RAY_AUTH_MODE=token (the way round Ray's joining nodes not doing so, see the README), and
`handwritten` must find the token as a user's run would.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, USER_DIGITS
from test_bulk import csv_rows, same_answers

from handwritten import bulk

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
HANDWRITTEN, RAY = BIN / "handwritten", BIN / "ray"


class Cluster:
    """A head and one more node, started with `ray start` in a home of their own; `stop` kills
    what they started, also when starting failed halfway."""

    def __init__(self) -> None:
        # Short: Ray's socket paths must fit in 107 bytes.
        self.temp = Path(tempfile.mkdtemp(prefix="hwray", dir="/tmp"))
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "HOME": str(self.temp / "home")}
        for setting in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
            self.env.pop(setting, None)
        token = self.temp / "home" / ".ray" / "auth_token"
        token.parent.mkdir(parents=True)
        token.write_text(os.urandom(16).hex())

    def start(self) -> None:
        common = ["--num-cpus", "1", "--disable-usage-stats"]
        self._ray("start", "--head", "--port", str(self.port), "--temp-dir", str(self.temp),
                  "--include-dashboard", "false", *common)  # fmt: skip
        before = self.raylets()
        self._ray("start", "--address", self.address, *common, RAY_AUTH_MODE="token")
        (self.worker_raylet,) = self.raylets() - before

    def _ray(self, *args: str, **env: str) -> None:
        done = subprocess.run(
            [str(RAY), *args], capture_output=True, text=True, timeout=180, env=self.env | env
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def handwritten(self, *args: str) -> subprocess.CompletedProcess:
        """The CLI as a user on this cluster's machine runs it."""
        return subprocess.run(
            [str(HANDWRITTEN), *args],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
            env=self.env,
        )

    def raylets(self) -> set[int]:
        ours = _processes()
        return {pid for pid, args in ours if args[0].endswith("/raylet") and self._ours(args)}

    def _ours(self, args: list[str]) -> bool:
        return any(str(self.temp) in arg for arg in args)

    def stop(self) -> None:
        """SIGKILL every process whose command line names this cluster's temp folder, and
        their children (Ray's workers): nothing else on the machine is touched. The second
        node's processes name the head's session folder, inside it."""
        ours = {pid for pid, args in _processes() if self._ours(args)}
        for pid in ours | _descendants(ours):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes() -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0]:
                yield int(entry.name), [a.decode(errors="replace") for a in args]


def _descendants(roots: set[int]) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(stat[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), set(roots)
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def drawings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user-digits")
    for image in sorted((USER_DIGITS / "images").iterdir()):
        shutil.copy(image, folder / image.name)
    (folder / "zz-broken.png").write_text("not a png")
    return folder


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory, drawings: Path, cluster: Cluster) -> Path:
    output = tmp_path_factory.mktemp("local") / "local.csv"
    done = cluster.handwritten("predict", "--model", "seed", "--output", str(output), str(drawings))
    assert done.returncode == 1, done.stderr  # The broken file.
    return output


def test_cluster_run_gives_the_local_runs_rows(
    cluster: Cluster, drawings: Path, local_run: Path, tmp_path: Path
) -> None:
    output = tmp_path / "ray.csv"
    done = cluster.handwritten("predict", "--model", "seed", f"--ray={cluster.address}",
                               "--output", str(output), str(drawings))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "356 rows written, 0 already there; 1 files could not be read" in done.stderr
    assert same_answers(csv_rows(output), csv_rows(local_run))
    assert_only_ours(done.stderr, drawings, output)


def assert_only_ours(stderr: str, drawings: Path, output: Path) -> None:
    """Only what concerns the user on a healthy run: the unreadable file and the summary, no
    line of Ray's own (its core worker's, its token notices)."""
    lines = stderr.strip().splitlines()
    assert lines, "no summary"
    assert all(line.startswith((str(drawings), str(output))) for line in lines), stderr


def test_a_local_ray_gives_the_local_runs_rows(
    cluster: Cluster, drawings: Path, local_run: Path, tmp_path: Path
) -> None:
    """`--ray` with no address starts a Ray of its own for the job (in this test's home,
    beside the cluster, which it must not join)."""
    output = tmp_path / "local-ray.csv"
    done = cluster.handwritten("predict", "--model", "seed", "--output", str(output),
                               str(drawings), "--ray")  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "356 rows written, 0 already there; 1 files could not be read" in done.stderr
    assert same_answers(csv_rows(output), csv_rows(local_run))
    assert_only_ours(done.stderr, drawings, output)


def test_worker_node_killed_midway_loses_and_repeats_no_row(
    cluster: Cluster, drawings: Path, local_run: Path, tmp_path: Path
) -> None:
    output = tmp_path / "ray.csv"
    command = ["predict", "--model", "seed", "--chunk", "10", "--output", str(output),
               f"--ray={cluster.address}", str(drawings)]  # fmt: skip
    with open(tmp_path / "stderr.txt", "w") as errors:
        process = subprocess.Popen(
            [str(HANDWRITTEN), *command], cwd=ROOT, stderr=errors, env=cluster.env
        )
        record = bulk.sidecar(output)
        while process.poll() is None and _committed(record) < 20:
            time.sleep(0.05)
        os.kill(cluster.worker_raylet, signal.SIGKILL)
        killed_at = _committed(record)
        process.wait(timeout=600)
    assert 20 <= killed_at < 356, "the node was not killed in the middle of the job"
    if _committed(record) < 356:  # Ray gave up: the rerun, on the head alone, resumes.
        cluster.handwritten(*command)
    rows = csv_rows(output)
    assert len({row["path"] for row in rows}) == len(rows) == 356
    assert same_answers(rows, csv_rows(local_run))


def _committed(record: Path) -> int:
    try:
        return json.loads(record.read_text()).get("rows", 0)
    except (OSError, ValueError):
        return 0


def test_numbers_are_read_whole_on_the_cluster_as_here(cluster: Cluster, tmp_path: Path) -> None:
    """`--number` with the shipped sequence reader: each Ray task opens the reader's ONNX
    file sent with the job, and the rows are those of a run on this machine."""
    photos = tmp_path / "numbers"
    photos.mkdir()
    for image in sorted((ROOT / "../shared/numbers/images").iterdir())[:8]:
        shutil.copy(image, photos / image.name)
    here, there = tmp_path / "here.csv", tmp_path / "there.csv"
    local = cluster.handwritten("predict", "--number", "--output", str(here), str(photos))
    assert local.returncode == 0, local.stderr
    done = cluster.handwritten("predict", "--number", f"--ray={cluster.address}",
                               "--output", str(there), str(photos))  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows_here, rows_there = csv_rows(here), csv_rows(there)
    assert [r["number"] for r in rows_there] == [r["number"] for r in rows_here]
    assert [r["read_by"] for r in rows_there] == [r["read_by"] for r in rows_here]
    # Some of these are drawings on a plain canvas (read digit by digit); the rest are photos.
    assert {r["read_by"] for r in rows_there} & {"found", "whole", "ink"}
