"""The collections of handwriting the networks learn from, one small module per source, the
way torchvision's and TensorFlow Datasets' datasets are kept.

Each module records its source's origin, licence and writers, the SHA-256 of every original
file, and parses those files as they are; this package finds the files, verifies them,
renders each sample through the project's one normaliser, and caches the result:

    from handwritten import sources
    sources.names()                 # "mnist", "pendigits", ...
    sources.get("pendigits")        # metadata, no I/O
    sources.load("pendigits")       # Samples: images, labels, chars, writers, split
    sources.status("pendigits")     # counts, licence and checksum state, cheaply

MNIST is found as `data.py` finds it (its data_dir is the MNIST folder). The writers'
collections are read from `data_dir`, else $HANDWRITTEN_WRITERS_DIR (a folder holding one
sub-folder per source, like ../shared/writers), else the cache folder, filled on first use
by downloading each original file from its public home and verifying it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from handwritten import data
from handwritten.errors import DataError
from handwritten.sources import (
    chars74k_hnd,
    hwd_1000,
    mnist,
    numberpad_bridger,
    optdigits_orig,
    pendigits,
    uji_pen2_digits,
    unipen_1a,
    usps,
)
from handwritten.sources._core import (
    MIRROR_ENV,
    WRITERS_DIR_ENV,
    Samples,
    Source,
    checksum_state,
    load_source,
    locate,
    read_cache,
)

__all__ = [
    "LISTED_FILES",
    "MIRROR_ENV",
    "WRITERS_DIR_ENV",
    "Samples",
    "Source",
    "checksums_credit",
    "credit",
    "get",
    "load",
    "names",
    "status",
]

_MODULES: dict[str, ModuleType] = {
    module.SOURCE.name: module
    for module in (
        mnist,
        pendigits,
        unipen_1a,
        uji_pen2_digits,
        chars74k_hnd,
        numberpad_bridger,
        optdigits_orig,
        usps,
        hwd_1000,
    )
}

PathLike = str | os.PathLike[str]


def names() -> list[str]:
    """Every source's name, MNIST first."""
    return list(_MODULES)


def get(name: str) -> Source:
    """A source's metadata; an unknown name is an error listing the known ones."""
    if name not in _MODULES:
        raise DataError(f"no source named {name!r}; the sources are {', '.join(_MODULES)}")
    return _MODULES[name].SOURCE


def load(name: str, data_dir: PathLike | None = None) -> Samples:
    """A source's samples, rendered once and then read from the cache.

    The original files are verified on every load, cached or not: the cache's name is made
    from their recorded checksums, so it is only trusted beside the files it came from.
    """
    source = get(name)
    if name == "mnist":
        return mnist.load(_mnist_dir(data_dir))
    return load_source(source, _MODULES[name].parse, data_dir)


LISTED_FILES = 16
"""A card lists the SHA-256 of each file of a source with up to this many files. A larger
source is recorded by its file count and the SHA-256 of its checksum list, which is what
`sha256sum` prints for the packaged `checksums/<name>.sha256`: listing UNIPEN's and
HWD's 2,396 files made every card of a model trained on them 240 KB, and its .onnx too."""


def credit(name: str) -> dict[str, Any]:
    """What a model's card records of a source it learned from, as the licences ask it to be
    credited: title, creators, licence (and how it is known), home, and its files' SHA-256
    (each file's, or for a source of many files, its checksum list's)."""
    source = get(name)
    entry = {
        "name": source.name,
        "title": source.title,
        "creators": source.creators,
        "licence": source.licence,
        "homepage": source.homepage,
        **checksums_credit(source.files),
    }
    if source.licence_note:
        entry["licence_note"] = source.licence_note
    return entry


def checksums_credit(files: Mapping[str, str]) -> dict[str, Any]:
    """A card's record of a source's files: each file's SHA-256, or for more than
    `LISTED_FILES` files their count and the SHA-256 of their list in `sha256sum` format,
    sorted by path."""
    if len(files) <= LISTED_FILES:
        return {"sha256": dict(files)}
    listing = "".join(f"{digest}  {path}\n" for path, digest in sorted(files.items()))
    return {
        "files": len(files),
        "checksum_list_sha256": hashlib.sha256(listing.encode()).hexdigest(),
    }


def status(name: str, data_dir: PathLike | None = None) -> dict[str, Any]:
    """What `handwritten sources` lists: counts (from the cache when present), licence,
    and the state of the checksums of the files where the source would be read from."""
    source = get(name)
    if name == "mnist":
        where = data.resolve_data_dir(_mnist_dir(data_dir))
        state = data.checksum_state(where)
    else:
        where = locate(source, data_dir)[0]
        state = checksum_state(source, where)
    counts = {"digits": source.digits, "others": source.others, "writers": source.writer_ids}
    cached = read_cache(source) if name != "mnist" else None
    if cached is not None:
        ids = set(cached.writers.tolist()) - {""}
        counts = {
            "digits": int(np.count_nonzero(cached.labels >= 0)),
            "others": int(np.count_nonzero(cached.labels < 0)),
            "writers": len(ids) or None,
        }
    return {
        "name": name,
        **counts,
        "licence": source.licence,
        "checksums": state,
        "where": str(where),
    }


def _mnist_dir(data_dir: PathLike | None) -> PathLike | None:
    """MNIST's folder: `data_dir` itself, or its mnist/ sub-folder when it holds the sources."""
    if data_dir is not None and (Path(data_dir) / "mnist").is_dir():
        return Path(data_dir) / "mnist"
    return data_dir
