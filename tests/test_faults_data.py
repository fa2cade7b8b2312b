"""MNIST files and downloads that fail in every way a disk, a user or a mirror can make them.

tests/test_data.py covers each fault at the library level on tiny files. This file adds what
it cannot: the command line (one line naming the file and the fix, exit 1, no traceback),
objects that are not files at all (a FIFO, an endless device), a file unreadable to a real
unprivileged user, files that decompress without end, and a download killed mid-way.
Folders are the real MNIST by symlink with one file broken; nothing is copied.
"""

from __future__ import annotations

import functools
import gzip
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_DIR, ROOT

from handwritten import data
from handwritten.cli import main
from handwritten.errors import DataError

pytestmark = pytest.mark.integration

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
NOBODY = 65534
CHILD_TIMEOUT = 30


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep every test off the user's cache, and any download on 127.0.0.1."""
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "*")


def mnist_folder(root: Path, broken: str | None = None) -> Path:
    """A folder with the real MNIST files as symlinks, less `broken` (its .gz) if named."""
    folder = root / "mnist"
    folder.mkdir(mode=0o755)
    for name in data.IDX_FILES.values():
        if name != broken:
            (folder / f"{name}.gz").symlink_to(MNIST_DIR / f"{name}.gz")
    return folder


def payload(name: str) -> bytes:
    return gzip.decompress((MNIST_DIR / f"{name}.gz").read_bytes())


def flip_one_byte(raw: bytes) -> bytes:
    middle = len(raw) // 2
    return raw[:middle] + bytes([raw[middle] ^ 1]) + raw[middle + 1 :]


def wrong_magic(raw: bytes) -> bytes:
    return b"\x00\x00\x08\x03" + raw[4:]


def one_label_short(raw: bytes) -> bytes:
    """A well-formed labels file of 9,999 labels: header and length agree, counts do not."""
    return raw[:4] + (9999).to_bytes(4, "big") + raw[8:-1]


# Each fault: the MNIST file it breaks, the name it is stored under, how, and the advice.
FAULTS: dict[str, tuple[str, str, Callable[[Path, str], None], str]] = {
    "truncated-gz": (
        TRAIN_IMAGES,
        ".gz",
        lambda path, name: path.write_bytes((MNIST_DIR / f"{name}.gz").read_bytes()[:50_000]),
        "not a complete gzip file",
    ),
    "garbage-in-gz": (
        TRAIN_LABELS,
        ".gz",
        lambda path, name: path.write_bytes(
            (MNIST_DIR / f"{name}.gz").read_bytes()[:10] + os.urandom(5000)
        ),
        "not a complete gzip file",
    ),
    "wrong-magic": (
        TEST_LABELS,
        "",
        lambda path, name: path.write_bytes(wrong_magic(payload(name))),
        "magic number 0x00000803, expected 0x00000801",
    ),
    "checksum-mismatch": (
        TEST_IMAGES,
        ".gz",
        lambda path, name: path.write_bytes(
            gzip.compress(flip_one_byte(payload(name)), compresslevel=1)
        ),
        "SHA-256",
    ),
    "label-count": (
        TEST_LABELS,
        "",
        lambda path, name: path.write_bytes(one_label_short(payload(name))),
        "SHA-256",
    ),
    "empty": (TRAIN_LABELS, "", lambda path, name: path.write_bytes(b""), "is empty"),
    "empty-gz": (TEST_IMAGES, ".gz", lambda path, name: path.write_bytes(b""), "is empty"),
    "folder": (TRAIN_IMAGES, "", lambda path, name: path.mkdir(), "is a folder"),
    "dangling-symlink": (
        TEST_LABELS,
        ".gz",
        lambda path, name: path.symlink_to(path.parent / "gone"),
        "cannot be read (No such file or directory)",
    ),
    "fifo": (TRAIN_LABELS, "", lambda path, name: os.mkfifo(path), "a pipe, device or socket"),
    "endless-device": (
        TRAIN_IMAGES,
        "",
        lambda path, name: path.symlink_to("/dev/zero"),
        "a pipe, device or socket",
    ),
}


def broken_folder(tmp_path: Path, fault: str) -> Path:
    """The real MNIST by symlink, with the file FAULTS[fault] names broken that way."""
    name, suffix, breaking, _ = FAULTS[fault]
    folder = mnist_folder(tmp_path, broken=name)
    breaking(folder / f"{name}{suffix}", name)
    return folder / f"{name}{suffix}"


def assert_one_error_line(stderr: str, path: Path, says: str) -> None:
    """The CLI's promise: exactly one line, naming the file, what is wrong and the fix."""
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"handwritten: error: {path} "), stderr
    assert says in stderr
    assert "replace it with a good copy of the original MNIST file" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("fault", [f for f in FAULTS if f not in ("fifo", "endless-device")])
def test_evaluate_names_the_broken_file_in_one_line(
    fault: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = broken_folder(tmp_path, fault)
    assert main(["evaluate", "--data-dir", str(path.parent)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_error_line(err, path, FAULTS[fault][3])


def run_child(script: str, *args: str, memory: int | None = None) -> subprocess.CompletedProcess:
    """Run a Python snippet as a real process; `memory` caps its address space in bytes."""

    def cap() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        cwd=ROOT,
        preexec_fn=cap,
    )


EVALUATE = "import sys; from handwritten.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize("fault", ["fifo", "endless-device"])
def test_a_fifo_or_device_under_an_mnist_name_is_refused_not_read(
    fault: str, tmp_path: Path
) -> None:
    """Before the fix a FIFO blocked open() forever and /dev/zero filled memory: a real child
    process, with a timeout and a memory cap, so a regression fails here instead of hanging."""
    path = broken_folder(tmp_path, fault)
    done = run_child(EVALUATE, "evaluate", "--data-dir", str(path.parent), memory=8 * 2**30)
    assert done.returncode == 1
    assert_one_error_line(done.stderr, path, FAULTS[fault][3])


DROP_TO_NOBODY = """
import os, sys
from handwritten import api, cli, data, evaluate, runtime
os.setgroups([])
os.setgid({uid})
os.setuid({uid})
sys.exit(cli.main(["evaluate", "--data-dir", sys.argv[1]]))
"""


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    """A temporary folder outside pytest's root-only tmp_path, so `nobody` can reach it."""
    folder = Path(tempfile.mkdtemp(prefix="handwritten-faults-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.mark.skipif(os.geteuid() != 0, reason="chmod 000 already stops a normal user: test_data")
def test_unreadable_file_for_an_unprivileged_user(world_readable_tmp: Path) -> None:
    """Root reads any file, so the child imports what it needs as root, then becomes `nobody`
    (setuid) and runs `handwritten evaluate` on a folder with one file mode 000."""
    folder = mnist_folder(world_readable_tmp, broken=TRAIN_IMAGES)
    locked = folder / f"{TRAIN_IMAGES}.gz"
    locked.write_bytes((MNIST_DIR / f"{TRAIN_IMAGES}.gz").read_bytes()[:100])
    locked.chmod(0)
    done = run_child(DROP_TO_NOBODY.format(uid=NOBODY), str(folder))
    assert done.returncode == 1, done.stderr
    assert_one_error_line(done.stderr, locked, "cannot be read (permission denied)")
    assert "make it readable" in done.stderr


# Decompression bombs: files far larger than MNIST once decompressed.


@functools.cache
def gzip_bomb(decompressed_mb: int) -> bytes:
    """Concatenated gzip members of zeros: a few hundred KB on disk, `decompressed_mb` MB read."""
    member = gzip.compress(bytes(64 * 2**20), compresslevel=9)
    return member * (decompressed_mb // 64)


@pytest.mark.parametrize("kind", ["gzip-bomb", "sparse-raw-file"])
def test_a_file_that_never_ends_is_refused_within_bounded_memory(kind: str, tmp_path: Path) -> None:
    if kind == "gzip-bomb":
        path = tmp_path / f"{TRAIN_IMAGES}.gz"
        path.write_bytes(gzip_bomb(512))
    else:
        path = tmp_path / TRAIN_IMAGES
        with path.open("wb") as sparse:
            sparse.truncate(2**30)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="more than any MNIST file") as caught:
            data._read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(path) in str(caught.value)
    assert peak < 3 * data.MAX_PAYLOAD, f"peak {peak / 2**20:.0f} MB while refusing"


# The cache and downloads, through the command line.


def test_cache_folder_that_cannot_be_made_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("the cache folder's parent is a file")
    monkeypatch.setenv("XDG_CACHE_HOME", str(in_the_way))
    assert main(["evaluate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"handwritten: error: cannot write MNIST into {in_the_way}/")
    assert "XDG_CACHE_HOME" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("mirrors", ["dead", "not-a-url", "dead-then-not-a-url"])
def test_every_mirror_failing_is_one_error_listing_each(
    mirrors: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    dead_port: int,
) -> None:
    urls = {
        "dead": f"http://127.0.0.1:{dead_port}/mnist",
        "not-a-url": "::nonsense",
        "dead-then-not-a-url": f"http://127.0.0.1:{dead_port}/a, ::nonsense",
    }[mirrors]
    monkeypatch.setenv(data.MIRROR_ENV, urls)
    assert main(["evaluate"]) == 1
    err = capsys.readouterr().err
    error = err[err.index("handwritten: error: ") :]
    assert error.startswith(f"handwritten: error: could not download {data.resolve_data_dir()}/")
    assert data.MIRROR_ENV in error
    assert "Traceback" not in err
    assert [p.name for p in data.resolve_data_dir().iterdir()] == [".lock"]


@pytest.fixture(scope="module")
def dead_port() -> Iterator[int]:
    """A bound but not listening port: connections are refused at once."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


class _Slow(BaseHTTPRequestHandler):
    """Serves /<mode>/<file>.gz from the real MNIST: `slow` trickles it, `bomb` is a gzip bomb.

    `halfway` is set once half of a slow body is out, so a test can kill its client then.
    """

    halfway = threading.Event()

    def do_GET(self) -> None:
        mode, _, filename = self.path.strip("/").partition("/")
        body = gzip_bomb(512) if mode == "bomb" else (MNIST_DIR / filename).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        step = max(1, len(body) // 40)
        for start in range(0, len(body), step):
            try:
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
            except ConnectionError:
                # The client was killed (the point of the test). Stop here: the default
                # handle_error would print a traceback into whichever test runs by then.
                self.close_connection = True
                return
            if mode == "slow":
                if start >= len(body) // 2:
                    self.halfway.set()
                time.sleep(0.1)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture(scope="module")
def mirror() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


DOWNLOAD = (
    "import sys; from handwritten.data import download_mnist; "
    "download_mnist(sys.argv[1], [sys.argv[2]], names=[sys.argv[3]])"
)


def test_a_download_killed_midway_leaves_nothing_trusted(tmp_path: Path, mirror: str) -> None:
    """SIGKILL skips every cleanup: the partial file must not carry the final name, the lock
    must not outlive the process, and the next download must replace the leftover."""
    _Slow.halfway.clear()
    child = subprocess.Popen(
        [sys.executable, "-c", DOWNLOAD, str(tmp_path), f"{mirror}/slow", TRAIN_LABELS],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _Slow.halfway.wait(CHILD_TIMEOUT)
        assert len(list(tmp_path.glob(".*.part"))) == 1
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=CHILD_TIMEOUT)
    assert child.returncode == -signal.SIGKILL
    assert not (tmp_path / f"{TRAIN_LABELS}.gz").exists()
    data.download_mnist(tmp_path, [f"{mirror}/fast"], names=[TRAIN_LABELS])
    assert sorted(os.listdir(tmp_path)) == [".lock", f"{TRAIN_LABELS}.gz"]
    labels = data._read_idx(tmp_path / f"{TRAIN_LABELS}.gz")
    assert labels.shape == (60000,)


def test_a_gzip_bomb_from_a_mirror_is_cut_short_and_the_next_mirror_used(
    tmp_path: Path, mirror: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data.download_mnist(tmp_path, [f"{mirror}/bomb", f"{mirror}/fast"], names=[TEST_LABELS])
    assert f"decompresses to over {data.MAX_PAYLOAD:,} bytes" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == [".lock", f"{TEST_LABELS}.gz"]
    assert np.array_equal(
        data._read_idx(tmp_path / f"{TEST_LABELS}.gz"),
        data._read_idx(MNIST_DIR / f"{TEST_LABELS}.gz"),
    )
