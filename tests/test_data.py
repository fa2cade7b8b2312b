"""Tests for handwritten.data: IDX parsing, checksum enforcement, folder choice, downloads.

Unit tests build tiny IDX files and inject their checksums and sizes. Integration tests read
the real MNIST; download tests serve it from a real HTTP server on 127.0.0.1, with mirrors
that fail in each of the ways real ones do. Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handwritten import data
from handwritten.errors import DataError

ROOT = Path(__file__).parents[1]
SHARED = Path(os.environ.get("HANDWRITTEN_DATA_DIR") or ROOT / "../shared/mnist").resolve()
TRAIN_PIXEL_MEAN = 0.1306604762738429
LABELS = "t10k-labels-idx1-ubyte"
OTHER_LABELS = "train-labels-idx1-ubyte"
TINY_SIZES = {"train": 3, "test": 2}
TIMEOUT = 0.5
STALL_SECONDS = 2.0


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Encode an array as IDX: big-endian magic, one count per dimension, then the bytes."""
    if magic is None:
        magic = 0x00000803 if array.ndim == 3 else 0x00000801
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return struct.pack(">I", magic) + dims + array.astype(np.uint8).tobytes()


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@dataclass
class Tiny:
    """A folder of four tiny MNIST-named IDX files plus the checksums that make them valid."""

    directory: Path
    arrays: dict[str, np.ndarray]
    checksums: dict[str, str]

    def path(self, name: str) -> Path:
        return self.directory / (f"{name}.gz" if name.startswith("train") else name)

    def replace(self, name: str, payload: bytes, *, stored: bytes | None = None) -> Path:
        """Swap one file's payload, trusting its checksum so only the check under test fires."""
        path = self.path(name)
        if stored is None:
            stored = gzip.compress(payload) if path.suffix == ".gz" else payload
        path.write_bytes(stored)
        self.checksums[name] = sha256(payload)
        return path

    def read(self) -> data.Mnist:
        return data._read_mnist(self.directory, checksums=self.checksums, sizes=TINY_SIZES)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dead_url: str) -> None:
    """Keep every test off the user's cache and off the internet."""
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv(data.MIRROR_ENV, dead_url)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", TIMEOUT)


@pytest.fixture
def tiny(tmp_path: Path) -> Tiny:
    """Train files gzipped, test files raw, so both encodings are read in every test."""
    rng = np.random.default_rng(0)
    shapes = {
        "train-images-idx3-ubyte": (3, 28, 28),
        "train-labels-idx1-ubyte": (3,),
        "t10k-images-idx3-ubyte": (2, 28, 28),
        "t10k-labels-idx1-ubyte": (2,),
    }
    folder = tmp_path / "tiny"
    folder.mkdir()
    result = Tiny(folder, {}, {})
    for name, shape in shapes.items():
        result.arrays[name] = rng.integers(0, 256, shape, dtype=np.uint8)
        result.replace(name, idx_bytes(result.arrays[name]))
    return result


def test_reads_gzipped_and_raw_idx(tiny: Tiny) -> None:
    mnist = tiny.read()
    np.testing.assert_array_equal(mnist.x_train, tiny.arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(mnist.y_train, tiny.arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(mnist.x_test, tiny.arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(mnist.y_test, tiny.arrays["t10k-labels-idx1-ubyte"])
    assert mnist.x_train.dtype == np.uint8
    assert mnist.x_train.flags.writeable


def test_uncompressed_copy_wins_over_gz(tiny: Tiny) -> None:
    name = "train-labels-idx1-ubyte"
    (tiny.directory / name).write_bytes(idx_bytes(tiny.arrays[name]))
    tiny.path(name).write_bytes(b"not gzip at all")
    np.testing.assert_array_equal(tiny.read().y_train, tiny.arrays[name])


def test_checksum_mismatch_is_refused(tiny: Tiny) -> None:
    name = "t10k-images-idx3-ubyte"
    tampered = tiny.arrays[name].copy()
    tampered[0, 0, 0] ^= 1
    expected = tiny.checksums[name]
    path = tiny.replace(name, idx_bytes(tampered))
    tiny.checksums[name] = expected
    with pytest.raises(DataError, match="SHA-256") as caught:
        tiny.read()
    assert str(path) in str(caught.value)
    assert "re-download" in str(caught.value)


def test_wrong_magic(tiny: Tiny) -> None:
    name = "train-labels-idx1-ubyte"
    path = tiny.replace(name, idx_bytes(tiny.arrays[name], magic=0x00000803))
    with pytest.raises(DataError, match=r"magic number 0x00000803, expected 0x00000801") as caught:
        tiny.read()
    assert str(path) in str(caught.value)


def test_truncated_gzip(tiny: Tiny) -> None:
    name = "train-images-idx3-ubyte"
    payload = idx_bytes(tiny.arrays[name])
    path = tiny.replace(name, payload, stored=gzip.compress(payload)[:-30])
    with pytest.raises(DataError, match="not a complete gzip file") as caught:
        tiny.read()
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(gzip.compress(b"")[:10] + bytes(range(256)) * 4, id="garbage-after-header"),
        pytest.param(b"\x00\x01garbage, not gzip" * 8, id="not-gzip"),
    ],
)
def test_garbage_in_gzip(tiny: Tiny, stored: bytes) -> None:
    name = "train-images-idx3-ubyte"
    path = tiny.replace(name, idx_bytes(tiny.arrays[name]), stored=stored)
    with pytest.raises(DataError, match="not a complete gzip file") as caught:
        tiny.read()
    assert str(path) in str(caught.value)


def test_truncated_raw_payload(tiny: Tiny) -> None:
    name = "t10k-images-idx3-ubyte"
    path = tiny.replace(name, idx_bytes(tiny.arrays[name])[:-5])
    with pytest.raises(DataError, match="header promises") as caught:
        tiny.read()
    assert str(path) in str(caught.value)


def test_images_must_be_28_by_28(tiny: Tiny) -> None:
    path = tiny.replace("t10k-images-idx3-ubyte", idx_bytes(np.zeros((2, 27, 29), np.uint8)))
    with pytest.raises(DataError, match="27x29") as caught:
        tiny.read()
    assert str(path) in str(caught.value)


def test_image_and_label_counts_must_agree(tiny: Tiny) -> None:
    tiny.replace("t10k-labels-idx1-ubyte", idx_bytes(np.arange(3, dtype=np.uint8)))
    with pytest.raises(DataError, match=r"holds 2 images but .* holds 3 labels") as caught:
        tiny.read()
    assert str(tiny.path("t10k-images-idx3-ubyte")) in str(caught.value)


def test_split_size_must_match(tiny: Tiny) -> None:
    with pytest.raises(DataError, match="hold 3 examples, expected 60000") as caught:
        data._read_mnist(tiny.directory, checksums=tiny.checksums)
    assert str(tiny.path("train-images-idx3-ubyte")) in str(caught.value)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_empty_file(tiny: Tiny, suffix: str) -> None:
    name = "t10k-labels-idx1-ubyte"
    tiny.path(name).unlink()
    path = tiny.directory / f"{name}{suffix}"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="is empty") as caught:
        tiny.read()
    assert str(path) in str(caught.value)


def test_folder_where_a_file_should_be(tiny: Tiny) -> None:
    path = tiny.path("train-labels-idx1-ubyte")
    path.unlink()
    path.mkdir()
    with pytest.raises(DataError, match="is a folder") as caught:
        tiny.read()
    assert str(path) in str(caught.value)


def test_dangling_symlink(tiny: Tiny, tmp_path: Path) -> None:
    path = tiny.path("train-labels-idx1-ubyte")
    path.unlink()
    path.symlink_to(tmp_path / "nowhere")
    with pytest.raises(DataError, match="cannot be read") as caught:
        tiny.read()
    assert str(path) in str(caught.value)


def test_resolve_data_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.resolve_data_dir() == tmp_path / "home/.cache/handwritten/mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.resolve_data_dir() == tmp_path / "xdg/handwritten/mnist"
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "env"))
    assert data.resolve_data_dir() == tmp_path / "env"
    assert data.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert data.resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"


def test_data_checksums_is_a_copy() -> None:
    checksums = data.data_checksums()
    assert checksums == data.PAYLOAD_SHA256
    assert set(checksums) == set(data.IDX_FILES.values())
    checksums[LABELS] = "0" * 64
    assert data.PAYLOAD_SHA256[LABELS] != "0" * 64


def test_default_mirrors_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.MIRROR_ENV)
    assert data._mirror_list(None) == list(data.MIRRORS)
    assert all(url.startswith("https://") and url.endswith("/") for url in data.MIRRORS)


def test_mirror_env_replaces_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.MIRROR_ENV, " http://a/x, http://b/y/\n http://c ")
    assert data._mirror_list(None) == ["http://a/x/", "http://b/y/", "http://c/"]


def test_chosen_folder_missing_files_never_downloads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mirror: Mirror
) -> None:
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    (chosen / f"{LABELS}.gz").write_bytes(b"")
    monkeypatch.setenv(data.MIRROR_ENV, mirror.url("good"))
    monkeypatch.setenv(data.DATA_DIR_ENV, str(chosen))
    with pytest.raises(DataError, match=data.DATA_DIR_ENV) as caught:
        data.load_mnist()
    message = str(caught.value)
    assert str(chosen) in message
    assert "train-images-idx3-ubyte" in message
    assert LABELS not in message
    assert mirror.requests == []
    assert sorted(os.listdir(chosen)) == [f"{LABELS}.gz"]


def test_chosen_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as caught:
        data.load_mnist(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(caught.value)


def test_no_download_when_forbidden(mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.MIRROR_ENV, mirror.url("good"))
    with pytest.raises(DataError, match="allow the download") as caught:
        data.load_mnist(download=False)
    assert str(data.resolve_data_dir()) in str(caught.value)
    assert mirror.requests == []


# Integration: the real MNIST.


@pytest.fixture(scope="module")
def real() -> data.Mnist:
    return data.load_mnist(SHARED)


@pytest.mark.integration
def test_real_mnist_shapes_and_dtypes(real: data.Mnist) -> None:
    assert real.x_train.shape == (60000, 28, 28)
    assert real.y_train.shape == (60000,)
    assert real.x_test.shape == (10000, 28, 28)
    assert real.y_test.shape == (10000,)
    for array in (real.x_train, real.y_train, real.x_test, real.y_test):
        assert array.dtype == np.uint8


@pytest.mark.integration
def test_real_mnist_labels_and_pixels(real: data.Mnist) -> None:
    for labels in (real.y_train, real.y_test):
        assert set(np.unique(labels)) == set(range(10))
    assert real.x_train.mean(dtype=np.float64) / 255 == pytest.approx(TRAIN_PIXEL_MEAN, rel=1e-12)


@pytest.mark.integration
def test_real_mnist_from_env(monkeypatch: pytest.MonkeyPatch, real: data.Mnist) -> None:
    monkeypatch.setenv(data.DATA_DIR_ENV, str(SHARED))
    np.testing.assert_array_equal(data.load_mnist().y_train, real.y_train)


# Downloads: a real HTTP server on 127.0.0.1 with good and bad mirrors.


def _gz(name: str) -> bytes:
    return (SHARED / f"{name}.gz").read_bytes()


def _flipped(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]


def _wrong_payload(name: str) -> bytes:
    """A well-formed gzip of a payload one byte off, so only the SHA-256 can catch it."""
    return gzip.compress(_flipped(gzip.decompress(_gz(name))))


class _Handler(BaseHTTPRequestHandler):
    """Serves /<mode>/<file>.gz, where mode decides how this mirror misbehaves."""

    server: _MirrorServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        mode, _, filename = self.path.strip("/").partition("/")
        name = filename.removesuffix(".gz")
        if mode in ("404", "500"):
            self.send_error(int(mode))
        elif mode == "stall":
            time.sleep(STALL_SECONDS)
        elif mode == "short":
            self._send(_gz(name)[:1000], length=len(_gz(name)))
        else:
            self._send(self._body(mode, name), pause=0.1 if mode == "slow" else 0.0)

    def _body(self, mode: str, name: str) -> bytes:
        bodies = {
            "random": lambda: os.urandom(len(_gz(name))),
            "flipped": lambda: _flipped(_gz(name)),
            "wrongpayload": lambda: _wrong_payload(name),
            "shortlength": lambda: _gz(name)[:1000],
        }
        return bodies.get(mode, lambda: _gz(name))()

    def _send(self, body: bytes, *, length: int | None = None, pause: float = 0.0) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        step = max(1, len(body) // 8)
        for start in range(0, len(body), step):
            self.wfile.write(body[start : start + step])
            time.sleep(pause)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


class _MirrorServer(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[str]


@dataclass
class Mirror:
    base: str
    requests: list[str]

    def url(self, mode: str) -> str:
        return f"{self.base}/{mode}"

    def asked(self, mode: str, name: str = LABELS) -> bool:
        return f"/{mode}/{name}.gz" in self.requests


@pytest.fixture(scope="session")
def dead_url() -> Iterator[str]:
    """A bound but non-listening port: connections are refused, with no race for the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/dead"


@pytest.fixture(scope="module")
def mirror_server() -> Iterator[_MirrorServer]:
    server = _MirrorServer(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def mirror(mirror_server: _MirrorServer) -> Mirror:
    mirror_server.requests.clear()
    host, port = mirror_server.server_address[:2]
    return Mirror(f"http://{host}:{port}", mirror_server.requests)


def _cache() -> Path:
    return data.resolve_data_dir()


@pytest.mark.integration
def test_download_then_load(
    monkeypatch: pytest.MonkeyPatch, mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(data.MIRROR_ENV, mirror.url("good"))
    mnist = data.load_mnist()
    assert mnist.x_train.shape == (60000, 28, 28)
    assert mnist.x_train.mean(dtype=np.float64) / 255 == pytest.approx(TRAIN_PIXEL_MEAN, rel=1e-12)
    expected = sorted(f"{name}.gz" for name in data.IDX_FILES.values())
    assert sorted(os.listdir(_cache())) == [".lock", *expected]
    assert f"Downloading {mirror.url('good')}/train-images-idx3-ubyte.gz" in capsys.readouterr().err
    data.load_mnist()
    assert len(mirror.requests) == 4


@pytest.mark.integration
@pytest.mark.parametrize(
    "bad",
    ["dead", "404", "500", "random", "flipped", "wrongpayload", "short", "shortlength", "stall"],
)
def test_bad_first_mirror_falls_through(tmp_path: Path, mirror: Mirror, bad: str) -> None:
    first = os.environ[data.MIRROR_ENV] if bad == "dead" else mirror.url(bad)
    started = time.monotonic()
    data.download_mnist(tmp_path, [first, mirror.url("good")], names=[LABELS], timeout=TIMEOUT)
    assert time.monotonic() - started < STALL_SECONDS
    assert sorted(os.listdir(tmp_path)) == [".lock", f"{LABELS}.gz"]
    assert data._read_idx(tmp_path / f"{LABELS}.gz").shape == (10000,)
    assert mirror.asked("good")
    assert bad == "dead" or mirror.asked(bad)


@pytest.mark.integration
def test_all_mirrors_bad(tmp_path: Path, mirror: Mirror) -> None:
    bad = [os.environ[data.MIRROR_ENV], *(mirror.url(m) for m in ("404", "flipped", "short"))]
    with pytest.raises(DataError, match=data.MIRROR_ENV) as caught:
        data.download_mnist(tmp_path, bad, names=[OTHER_LABELS, LABELS])
    message = str(caught.value)
    assert str(tmp_path / f"{OTHER_LABELS}.gz") in message
    for url in bad:
        assert f"{url}/{OTHER_LABELS}.gz" in message
    assert "connection closed after 1000 of" in message
    assert sorted(os.listdir(tmp_path)) == [".lock"]


@pytest.mark.integration
def test_env_mirrors_tried_in_order(monkeypatch: pytest.MonkeyPatch, mirror: Mirror) -> None:
    monkeypatch.setenv(data.MIRROR_ENV, f"{mirror.url('404')}, {mirror.url('good')}")
    data.download_mnist(_cache(), names=[LABELS])
    assert mirror.requests == [f"/404/{LABELS}.gz", f"/good/{LABELS}.gz"]


@pytest.mark.integration
def test_corrupt_cached_file_is_reported_then_redownloaded(
    monkeypatch: pytest.MonkeyPatch, mirror: Mirror
) -> None:
    monkeypatch.setenv(data.MIRROR_ENV, mirror.url("good"))
    cache = _cache()
    cache.mkdir(parents=True)
    for name in data.IDX_FILES.values():
        (cache / f"{name}.gz").symlink_to(SHARED / f"{name}.gz")
    corrupt = cache / f"{LABELS}.gz"
    corrupt.unlink()
    corrupt.write_bytes(_wrong_payload(LABELS))
    with pytest.raises(DataError, match="delete it and run again to re-download") as caught:
        data.load_mnist()
    assert str(corrupt) in str(caught.value)
    assert mirror.requests == []
    corrupt.unlink()
    assert data.load_mnist().y_test.shape == (10000,)
    assert mirror.requests == [f"/good/{LABELS}.gz"]


@pytest.mark.integration
def test_concurrent_processes_share_one_download(tmp_path: Path, mirror: Mirror) -> None:
    script = (
        "import sys; from pathlib import Path; from handwritten.data import download_mnist; "
        "download_mnist(Path(sys.argv[1]), [sys.argv[2]], names=sys.argv[3:])"
    )
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    names = [OTHER_LABELS, LABELS]
    command = [sys.executable, "-c", script, str(tmp_path), mirror.url("slow"), *names]
    workers = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err.decode()
    assert sorted(mirror.requests) == sorted(f"/slow/{n}.gz" for n in (OTHER_LABELS, LABELS))
    assert sorted(os.listdir(tmp_path)) == sorted([".lock", f"{OTHER_LABELS}.gz", f"{LABELS}.gz"])
    for name in (OTHER_LABELS, LABELS):
        data._read_idx(tmp_path / f"{name}.gz")


def _digit_tree(root: Path) -> Path:
    from drawings import draw

    for digit in (1, 7):
        (root / str(digit)).mkdir(parents=True)
        draw().save(root / str(digit) / "a.png")
    (root / "7" / "broken.png").write_text("not an image")
    Image.new("L", (40, 40), 255).save(root / "1" / "blank.png")
    return root


def test_digit_folders_are_read_with_bad_files_named(tmp_path: Path) -> None:
    (images, labels), problems = data.load_digit_folders(_digit_tree(tmp_path / "mine"))
    assert images.shape == (2, 28, 28)
    assert images.dtype == np.uint8
    assert sorted(labels.tolist()) == [1, 7]
    assert len(problems) == 2
    assert any("broken.png" in problem for problem in problems)
    assert any("blank.png" in problem and "no digit" in problem for problem in problems)


@pytest.mark.parametrize(
    ("layout", "complaint"),
    [
        ("missing", "not a folder"),
        ("misnamed", "no digit folders (found seven)"),
        ("empty-digits", "no usable images"),
    ],
)
def test_unusable_digit_trees_are_clear_errors(tmp_path: Path, layout: str, complaint: str) -> None:
    root = tmp_path / "mine"
    if layout == "misnamed":
        (root / "seven").mkdir(parents=True)
    elif layout == "empty-digits":
        (root / "3").mkdir(parents=True)
    with pytest.raises(DataError, match=re.escape(complaint)):
        data.load_digit_folders(root)
