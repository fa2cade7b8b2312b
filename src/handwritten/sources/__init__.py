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

import os
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
    "MIRROR_ENV",
    "WRITERS_DIR_ENV",
    "Samples",
    "Source",
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


def credit(name: str) -> dict[str, Any]:
    """What a model's card records of a source it learned from, as the licences ask it to be
    credited: title, creators, licence (and how it is known), home, and every file's SHA-256."""
    source = get(name)
    entry = {
        "name": source.name,
        "title": source.title,
        "creators": source.creators,
        "licence": source.licence,
        "homepage": source.homepage,
        "sha256": dict(source.files),
    }
    if source.licence_note:
        entry["licence_note"] = source.licence_note
    return entry


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
