"""MNIST on disk: find it, download it once, and refuse anything that is not the real thing.

The IDX payload checksums are the single source of truth: a gzip stream's bytes depend on
the compressor, so mirrors serve different ``.gz`` files, but every faithful copy
decompresses to the same bytes. Every load path verifies them, so a model is never
trained or scored on a corrupt or substituted file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import stat
import struct
import sys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from handwritten import download
from handwritten.errors import DataError

IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

PAYLOAD_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

MIRRORS: tuple[str, ...] = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

SPLIT_SIZES: dict[str, int] = {"train": 60000, "test": 10000}

DOWNLOAD_TIMEOUT = 30.0
"""Seconds a mirror may stay silent before the next one is tried."""

DATA_DIR_ENV = "HANDWRITTEN_DATA_DIR"
MIRROR_ENV = "HANDWRITTEN_MNIST_MIRROR"

_LABELS_MAGIC = 0x00000801
_IMAGES_MAGIC = 0x00000803
_IMAGE_SIDE = 28
MAX_PAYLOAD = 16 + 60000 * _IMAGE_SIDE * _IMAGE_SIDE
"""The largest MNIST file's size once decompressed: reading stops past it, so a gzip bomb or
an endless device under an MNIST name is refused instead of filling memory."""

_REDOWNLOAD = "delete it and run again to re-download"
_REPLACE = "replace it with a good copy of the original MNIST file"
_SET_DATA_DIR = f"set {DATA_DIR_ENV} (or --data-dir) to a folder holding the four MNIST files"


@dataclass(frozen=True)
class Mnist:
    """The four MNIST arrays, verified against the published payload checksums.

    x_train (60000, 28, 28), y_train (60000,), x_test (10000, 28, 28), y_test (10000,), all
    uint8 and writable, as keras.datasets.mnist.load_data returns them, so callers can switch.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Pick the MNIST folder: an explicit choice wins, then the environment, then the cache."""
    return _locate(data_dir)[0]


def load_mnist(data_dir: str | os.PathLike[str] | None = None, *, download: bool = True) -> Mnist:
    """Load verified MNIST, downloading into the cache only when no folder was chosen.

    A folder the user chose is never written to: if it lacks files, that is a mistake in
    the choice, and quietly downloading would hide it.
    """
    directory, chosen = _locate(data_dir)
    if chosen:
        _require_complete(directory)
        return _read_mnist(directory, remedy=_REPLACE)
    missing = _missing(directory)
    if missing and not download:
        raise DataError(
            f"MNIST is not in the cache folder {directory} (missing {', '.join(missing)}); "
            f"allow the download, or {_SET_DATA_DIR}"
        )
    if missing:
        download_mnist(directory, names=missing)
    return _read_mnist(directory, remedy=_REDOWNLOAD)


VALIDATION_SIZE = 5000
VALIDATION_SEED = 42


@dataclass(frozen=True)
class Split:
    """MNIST's 60,000 training images cut into training and validation, and the test set.

    Every choice (recipe, augmentations, thresholds, temperatures) is made on `validation`;
    `test` is scored once, at the end, and reported apart.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    validation_indices: np.ndarray

    def describe(self) -> dict[str, object]:
        """How the split was made, for a model card: enough to cut the same one again."""
        indices = np.ascontiguousarray(self.validation_indices, dtype=np.int64)
        return {
            "from": "MNIST training images",
            "images": len(indices),
            "seed": VALIDATION_SEED,
            "stratified": True,
            "indices_sha256": hashlib.sha256(indices.tobytes()).hexdigest(),
        }


def validation_indices(
    labels: np.ndarray, size: int = VALIDATION_SIZE, seed: int = VALIDATION_SEED
) -> np.ndarray:
    """A seeded, stratified choice of `size` indices: each digit in its share of `labels`.

    The seed is its own, not the training run's, so every model is validated on the same
    images and their figures compare.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quotas = np.floor(counts / len(labels) * size).astype(int)
    largest_remainders = np.argsort(-(counts / len(labels) * size - quotas), kind="stable")
    quotas[largest_remainders[: size - quotas.sum()]] += 1
    chosen = [
        rng.permutation(np.flatnonzero(labels == digit))[:quota]
        for digit, quota in zip(classes, quotas, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def split_mnist(mnist: Mnist, size: int = VALIDATION_SIZE) -> Split:
    """Hold out the validation images from MNIST's training set (see `validation_indices`)."""
    held_out = validation_indices(mnist.y_train, size)
    keep = np.ones(len(mnist.y_train), dtype=bool)
    keep[held_out] = False
    return Split(
        x_train=mnist.x_train[keep],
        y_train=mnist.y_train[keep],
        x_val=mnist.x_train[held_out],
        y_val=mnist.y_train[held_out],
        x_test=mnist.x_test,
        y_test=mnist.y_test,
        validation_indices=held_out,
    )


def checksum_state(data_dir: str | os.PathLike[str] | None = None) -> str:
    """ "verified", "missing" (a file absent) or "mismatch: <file>", without downloading."""
    directory = resolve_data_dir(data_dir)
    if _missing(directory):
        return "missing"
    for name in IDX_FILES.values():
        try:
            _read_idx(_existing(directory, name))
        except DataError:
            return f"mismatch: {name}"
    return "verified"


def data_checksums() -> dict[str, str]:
    """Return the payload checksums as a copy, so a model card cannot alter the originals."""
    return dict(PAYLOAD_SHA256)


def download_mnist(
    target_dir: str | os.PathLike[str],
    mirrors: Sequence[str] | None = None,
    *,
    names: Iterable[str] | None = None,
    timeout: float | None = None,
) -> None:
    """Fetch the missing MNIST files into target_dir, trying each mirror in turn.

    Files already present are kept, so a second process that waited on the lock does not
    fetch them again. A file only ever appears under its final name after its payload
    checksum has been verified, so an interrupted or corrupt download leaves nothing behind
    that a later load would trust.
    """
    target = Path(target_dir)
    urls = _mirror_list(mirrors)
    wanted = list(IDX_FILES.values()) if names is None else list(names)
    limit = DOWNLOAD_TIMEOUT if timeout is None else timeout
    with download.exclusive(target, "MNIST", _SET_DATA_DIR):
        download.remove_partial_downloads(target)
        for name in wanted:
            if _find(target, name) is None:
                _download_one(target, name, urls, limit)


def _locate(data_dir: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """Return the MNIST folder and whether the user chose it (so it must not be written)."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), True
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser(), True
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "handwritten" / "mnist", False


def _find(directory: Path, name: str) -> Path | None:
    """Return the uncompressed or gzipped copy of an IDX file, whichever exists."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if os.path.lexists(candidate):
            return candidate
    return None


def _existing(directory: Path, name: str) -> Path:
    """Like _find, but falls back to the plain name so a read error names the file expected."""
    return _find(directory, name) or directory / name


def _missing(directory: Path) -> list[str]:
    return [name for name in IDX_FILES.values() if _find(directory, name) is None]


def _require_complete(directory: Path) -> None:
    if not directory.is_dir():
        raise DataError(
            f"MNIST folder {directory} does not exist or is not a folder; {_SET_DATA_DIR}"
        )
    missing = _missing(directory)
    if missing:
        raise DataError(
            f"MNIST folder {directory} lacks {', '.join(missing)} (as the file or as .gz); "
            f"add them there, or {_SET_DATA_DIR}, or unset {DATA_DIR_ENV} to download "
            "into the cache"
        )


def _read_mnist(
    directory: Path,
    *,
    checksums: Mapping[str, str] = PAYLOAD_SHA256,
    sizes: Mapping[str, int] = SPLIT_SIZES,
    remedy: str = _REDOWNLOAD,
) -> Mnist:
    """Read and verify all four files; checksums and sizes are injectable for tiny fixtures."""
    x_train, y_train = _read_split(directory, "train", checksums, sizes["train"], remedy)
    x_test, y_test = _read_split(directory, "test", checksums, sizes["test"], remedy)
    return Mnist(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def _read_split(
    directory: Path, split: str, checksums: Mapping[str, str], size: int, remedy: str
) -> tuple[np.ndarray, np.ndarray]:
    paths = [_existing(directory, IDX_FILES[f"{split}_{part}"]) for part in ("images", "labels")]
    images, labels = (_read_idx(path, checksums=checksums, remedy=remedy) for path in paths)
    if len(images) != len(labels):
        raise DataError(
            f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels; "
            f"{remedy} (for both files)"
        )
    if len(images) != size:
        raise DataError(
            f"{paths[0]} and {paths[1]} hold {len(images)} examples, expected {size} "
            f"for the MNIST {split} split; {remedy} (for both files)"
        )
    return images, labels


def _read_idx(
    path: Path, *, checksums: Mapping[str, str] = PAYLOAD_SHA256, remedy: str = _REDOWNLOAD
) -> np.ndarray:
    """Read one IDX file, trusting its contents only once header and checksum agree."""
    name = path.name.removesuffix(".gz")
    payload = _read_payload(path, remedy)
    header_size, shape = _parse_header(payload, path, name, remedy)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != checksums[name]:
        raise DataError(
            f"{path} is corrupt or not the original MNIST {name}: SHA-256 of its decompressed "
            f"contents is {digest}, expected {checksums[name]}; {remedy}"
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def _read_payload(path: Path, remedy: str) -> bytes:
    """Return the decompressed bytes, turning every way a file can be unreadable into advice."""
    try:
        with _open_regular(path, remedy) as raw:
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix == ".gz" else raw
            payload = stream.read(MAX_PAYLOAD + 1)
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not an MNIST file; {remedy}") from None
    except PermissionError:
        raise DataError(
            f"{path} cannot be read (permission denied); make it readable, or {remedy}"
        ) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(f"{path} is not a complete gzip file ({error}); {remedy}") from None
    except OSError as error:
        raise DataError(f"{path} cannot be read ({error.strerror or error}); {remedy}") from None
    if len(payload) > MAX_PAYLOAD:
        raise DataError(
            f"{path} holds over {MAX_PAYLOAD:,} bytes once decompressed, more than any MNIST "
            f"file; {remedy}"
        )
    return payload


def _open_regular(path: Path, remedy: str) -> BinaryIO:
    """Open a regular file for reading; a FIFO would block open() forever, a device never end.

    O_NONBLOCK makes opening a FIFO return at once, so fstat can refuse it; it changes nothing
    for a regular file.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    mode = os.fstat(descriptor).st_mode
    if stat.S_ISREG(mode):
        return os.fdopen(descriptor, "rb")
    os.close(descriptor)
    kind = "a folder" if stat.S_ISDIR(mode) else "a pipe, device or socket"
    raise DataError(f"{path} is {kind}, not an MNIST file; {remedy}")


def _parse_header(
    payload: bytes, path: Path, name: str, remedy: str
) -> tuple[int, tuple[int, ...]]:
    """Check an IDX header against what MNIST's file of that name must hold."""
    is_labels = "-labels-" in name
    magic, ndim = (_LABELS_MAGIC, 1) if is_labels else (_IMAGES_MAGIC, 3)
    header_size = 4 + 4 * ndim
    if not payload:
        raise DataError(f"{path} is empty; {remedy}")
    if len(payload) < header_size:
        raise DataError(f"{path} is too short ({len(payload)} bytes) to be an IDX file; {remedy}")
    (found,) = struct.unpack(">I", payload[:4])
    if found != magic:
        kind = "labels" if is_labels else "images"
        raise DataError(
            f"{path} has magic number 0x{found:08x}, expected 0x{magic:08x} for MNIST {kind}; "
            f"{remedy}"
        )
    shape = struct.unpack(f">{ndim}I", payload[4:header_size])
    if not is_labels and shape[1:] != (_IMAGE_SIDE, _IMAGE_SIDE):
        raise DataError(f"{path} holds {shape[1]}x{shape[2]} images, MNIST's are 28x28; {remedy}")
    expected = header_size + int(np.prod(shape))
    if len(payload) != expected:
        raise DataError(
            f"{path} is {len(payload)} bytes once decompressed but its header promises "
            f"{expected} (truncated or padded); {remedy}"
        )
    return header_size, shape


def _mirror_list(mirrors: Sequence[str] | None) -> list[str]:
    """Return base URLs, each ending in "/"; the environment replaces the defaults."""
    if mirrors is None:
        configured = re.split(r"[\s,]+", os.environ.get(MIRROR_ENV, "").strip())
        mirrors = [url for url in configured if url] or MIRRORS
    return [url if url.endswith("/") else f"{url}/" for url in mirrors]


def _download_one(directory: Path, name: str, mirrors: Sequence[str], timeout: float) -> None:
    final = directory / f"{name}.gz"
    failures = []
    for mirror in mirrors:
        url = f"{mirror}{name}.gz"
        try:
            download.fetch_verified(
                url, final, PAYLOAD_SHA256[name], timeout, digest_of=_gzip_payload_sha256
            )
        except download.FAILURES as error:
            failures.append(f"  {url}: {error}")
            print(f"failed: {error}", file=sys.stderr)
        else:
            return
    raise DataError(
        f"could not download {final}; every mirror failed:\n"
        + "\n".join(failures)
        + f"\nCheck your network or set {MIRROR_ENV} to a mirror serving {name}.gz, "
        f"or {_SET_DATA_DIR}"
    )


def _gzip_payload_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    size = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(download.CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if size > MAX_PAYLOAD:
                    raise DataError(f"decompresses to over {MAX_PAYLOAD:,} bytes, not MNIST")
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(f"not a complete gzip file ({error})") from None
    return digest.hexdigest()


def load_digit_folders(root: str | os.PathLike) -> tuple[tuple[np.ndarray, np.ndarray], list[str]]:
    """Read the user's own labelled digits from `root/0/*.png` ... `root/9/*.png`.

    Each image goes through the same preprocessing as prediction, so the model learns from
    exactly what it will be shown. Returns ((images, labels), problems): a file that cannot
    be used is reported in `problems` by name and skipped; a tree with nothing usable is an
    error, since training would silently ignore it.
    """
    from handwritten.errors import ImageError
    from handwritten.predict import find_images, load_digit

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--extra-data {root}: not a folder; make one with subfolders 0 to 9.")
    folders = {digit: root / str(digit) for digit in range(10) if (root / str(digit)).is_dir()}
    if not folders:
        found = ", ".join(sorted(p.name for p in root.iterdir())) or "nothing"
        raise DataError(
            f"--extra-data {root}: no digit folders (found {found}); put each image in "
            f"{root}/<digit>/, for example {root}/7/my-seven.png."
        )
    images, labels, problems = [], [], []
    for digit, folder in folders.items():
        for path in find_images([folder]):
            try:
                image = load_digit(path)
            except ImageError as exc:
                problems.append(str(exc))
                continue
            if image is None:
                problems.append(f"{path}: no digit found (the image has no ink)")
                continue
            images.append(image)
            labels.append(digit)
    if not images:
        raise DataError(f"--extra-data {root}: no usable images in the digit folders 0 to 9.")
    return (np.stack(images), np.array(labels, dtype=np.uint8)), problems
