"""What every source shares: its metadata, where its files are, their checksums, the cache of
rendered images, and the one way a written sample becomes a 28x28 image.

The original files are the truth: each is checked against the SHA-256 recorded in its source
module before it is parsed, so a model never learns from a corrupt or substituted copy. The
rendered arrays are cached under a name that hashes those checksums with the render and
preprocessing versions, so a change to any of them renders afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from handwritten import download, files
from handwritten.errors import DataError
from handwritten.preprocess import PREPROCESSING_VERSION, to_mnist
from handwritten.sources import _render

WRITERS_DIR_ENV = "HANDWRITTEN_WRITERS_DIR"
MIRROR_ENV = "HANDWRITTEN_WRITERS_MIRROR"
"""A base URL serving `<name>/<file>` for every source: replaces the public homes."""
DOWNLOAD_TIMEOUT = 30.0
RENDER_VERSION = 1
"""Raise it whenever a change to rendering or parsing alters the images any source gives."""
RENDER_SEED = 20231
SAMPLE_FIELDS = ("images", "labels", "chars", "writers", "split")


@dataclass(frozen=True)
class Source:
    """A collection's metadata, as its SOURCE.md gives it: no I/O.

    `files` maps each original file the loader reads (path inside the source's folder) to its
    SHA-256; `downloads` maps it to its public home. `digits`, `others` and `writer_ids` are
    what `load` gives: the counts of digits, of other characters, and of distinct writer ids
    (None where the source has none).
    """

    name: str
    title: str
    creators: str
    licence: str
    licence_note: str
    homepage: str
    how_written: str
    writers_note: str
    files: Mapping[str, str]
    kind: str
    digits: int
    others: int = 0
    writer_ids: int | None = None
    downloads: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Samples:
    """A source's samples, all fields aligned: images (N, 28, 28) uint8 white ink on black,
    made by the project's one normaliser; labels (N,) int64, -1 for a character that is not
    a digit; chars the character written; writers a writer id ("" where unknown); split the
    source's own published split, "train" or "test"."""

    source: str
    images: np.ndarray
    labels: np.ndarray
    chars: np.ndarray
    writers: np.ndarray
    split: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, mask: np.ndarray) -> Samples:
        """A subset (boolean mask or indices), all fields together."""
        return Samples(self.source, *(getattr(self, name)[mask] for name in SAMPLE_FIELDS))


@dataclass(frozen=True)
class Written:
    """One sample as the source holds it, before rendering: a pen trajectory (strokes of
    (x, y) points, x rightwards and y downwards, in the source's units) or a scanned picture."""

    char: str
    writer: str
    split: str
    strokes: tuple[np.ndarray, ...] | None = None
    picture: Image.Image | None = None


def checksum_list(name: str) -> dict[str, str]:
    """The SHA-256 of each file of a source with too many files to list in its module, kept
    beside it in `checksums/<name>.sha256` (the format `sha256sum` writes and checks)."""
    text = resources.files(__package__).joinpath("checksums", f"{name}.sha256").read_text()
    return {path: digest for digest, path in (line.split(maxsplit=1) for line in text.splitlines())}


def label_of(char: str) -> int:
    """The digit a character is, -1 for any other character."""
    return int(char) if len(char) == 1 and char in "0123456789" else -1


# Where the files are ---------------------------------------------------------------------


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()


def locate(source: Source, data_dir: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """The source's folder and whether the user chose it (a chosen folder is never written).

    A chosen folder may hold one sub-folder per source (like ../shared/writers) or be the
    source's own folder.
    """
    chosen = data_dir if data_dir is not None else os.environ.get(WRITERS_DIR_ENV) or None
    if chosen is None:
        return cache_home() / "handwritten" / "writers" / source.name, False
    folder = Path(chosen).expanduser()
    return (folder / source.name if (folder / source.name).is_dir() else folder), True


def _set_folder(source: Source) -> str:
    return (
        f"set {WRITERS_DIR_ENV} to a folder holding a {source.name}/ folder with the original "
        "files, or unset it to download them into the cache"
    )


def checksum_state(source: Source, folder: Path) -> str:
    """ "verified", "missing" (some file absent) or "mismatch: <file>"."""
    if any(not (folder / name).is_file() for name in source.files):
        return "missing"
    for name, expected in source.files.items():
        try:
            digest = download.file_sha256(folder / name)
        except OSError:
            return f"mismatch: {name}"
        if digest != expected:
            return f"mismatch: {name}"
    return "verified"


def verified_folder(source: Source, data_dir: str | os.PathLike[str] | None) -> Path:
    """The folder holding the source's original files, every one verified; files missing
    from the cache are downloaded first, files missing from a chosen folder are an error."""
    folder, chosen = locate(source, data_dir)
    missing = [name for name in source.files if not (folder / name).is_file()]
    if missing and chosen:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise DataError(
            f"{source.name}: {folder} lacks {shown}; put the original files there "
            f"({source.homepage}), or {_set_folder(source)}"
        )
    if missing:
        _download(source, folder, missing)
    remedy = (
        f"replace it with the original file ({source.homepage})"
        if chosen
        else "delete it and run again to re-download it"
    )
    for name, expected in source.files.items():
        _verify(folder / name, expected, source, remedy)
    return folder


def _verify(path: Path, expected: str, source: Source, remedy: str) -> None:
    try:
        digest = download.file_sha256(path)
    except OSError as error:
        raise DataError(f"{path} cannot be read ({error.strerror or error}); {remedy}") from None
    if digest != expected:
        raise DataError(
            f"{path} is corrupt or not the original {source.name} file: its SHA-256 is "
            f"{digest}, expected {expected}; {remedy}"
        )


def _download(source: Source, folder: Path, names: Sequence[str]) -> None:
    mirror = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
    with download.exclusive(folder, source.name, _set_folder(source)):
        download.remove_partial_downloads(folder)
        for name in names:
            if (folder / name).is_file():
                continue  # another process fetched it while this one waited on the lock
            url = f"{mirror}/{source.name}/{name}" if mirror else source.downloads[name]
            try:
                download.fetch_verified(url, folder / name, source.files[name], DOWNLOAD_TIMEOUT)
            except download.FAILURES as error:
                raise DataError(
                    f"could not download {folder / name} from {url} ({error}); check your "
                    f"network, or set {MIRROR_ENV} to a server holding {source.name}/{name}, "
                    f"or {_set_folder(source)}"
                ) from None


# Parsing ------------------------------------------------------------------------------------


@contextlib.contextmanager
def parsing(path: Path, source: str) -> Iterator[None]:
    """Turn every way an original file can fail to parse into an error naming it and the fix."""
    try:
        yield
    except DataError:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, zlib.error) as error:
        raise DataError(
            f"{path} cannot be read as a {source} file ({type(error).__name__}: {error}); "
            "replace it with the original (`handwritten sources` says where it comes from)"
        ) from None


def malformed(path: Path, line: int | None, problem: str) -> DataError:
    where = f"{path}, line {line}" if line else str(path)
    return DataError(
        f"{where}: {problem}; replace the file with the original "
        "(`handwritten sources` says where it comes from)"
    )


# Rendering and the cache ------------------------------------------------------------------


def load_source(
    source: Source,
    parse: Callable[[Path], Sequence[Written]],
    data_dir: str | os.PathLike[str] | None = None,
) -> Samples:
    """Verify (downloading into the cache first if need be), then read the rendered samples
    from the cache, or parse, render and cache them."""
    folder = verified_folder(source, data_dir)
    cached = read_cache(source)
    if cached is not None:
        return cached
    samples = render(source, parse(folder))
    write_cache(samples, source)
    return samples


def render(source: Source, written: Sequence[Written]) -> Samples:
    """Every sample through the project's one normaliser, as user input: a trajectory drawn
    the way people's drawings reach the model, a picture as a scan. A sample that leaves no
    ink is dropped."""
    images, kept = [], []
    for index, item in enumerate(written):
        picture = item.picture
        if picture is None:
            picture = _render.trajectory_image(item.strokes or (), _rng(source.name, index))
        image = to_mnist(picture)
        if image is not None:
            images.append(image)
            kept.append(item)
    return Samples(
        source=source.name,
        images=np.stack(images) if images else np.zeros((0, 28, 28), np.uint8),
        labels=np.array([label_of(item.char) for item in kept], dtype=np.int64),
        chars=np.array([item.char for item in kept], dtype=str),
        writers=np.array([item.writer for item in kept], dtype=str),
        split=np.array([item.split for item in kept], dtype=str),
    )


def _rng(name: str, index: int) -> np.random.Generator:
    """Each sample's own generator: the same pen and paper every run, whatever else is drawn."""
    return np.random.default_rng([RENDER_SEED, zlib.crc32(name.encode()), index])


def cache_path(source: Source) -> Path:
    key = json.dumps(
        {
            "files": sorted(source.files.items()),
            "render": RENDER_VERSION,
            "preprocessing": PREPROCESSING_VERSION,
        }
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_home() / "handwritten" / "rendered" / f"{source.name}-{digest}.npz"


def read_cache(source: Source) -> Samples | None:
    """The rendered samples, None when absent or unreadable (they are then rendered again)."""
    path = cache_path(source)
    try:
        with np.load(path, allow_pickle=False) as stored:
            return Samples(source.name, *(stored[name] for name in SAMPLE_FIELDS))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def write_cache(samples: Samples, source: Source) -> None:
    """Store the rendered arrays atomically; a cache that cannot be written is only slower."""
    with contextlib.suppress(OSError), files.atomic_path(cache_path(source)) as temporary:
        np.savez(temporary, **{name: getattr(samples, name) for name in SAMPLE_FIELDS})
