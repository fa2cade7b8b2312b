"""Write files so that a crash, a kill or a full disk never leaves half a file under its name."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from handwritten.errors import HandwrittenError


class WriteError(HandwrittenError, OSError):
    """A file that cannot be written where asked: a HandwrittenError, whose message the user
    sees, and still an OSError for callers that add their own advice to one (a training run
    that cannot save says where its finished epochs are kept)."""


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    The temporary name keeps the suffix, because Keras picks the format from it. A folder
    that cannot be made or written in is a HandwrittenError naming it.
    """
    make_folder(path.parent)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    except OSError as exc:
        raise WriteError(
            f"{path}: cannot be written in {path.parent} ({exc.strerror}); choose another place."
        ) from None
    os.close(fd)
    temporary = Path(name)
    os.chmod(temporary, 0o666 & ~_umask())
    try:
        yield temporary
        _replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _replace(temporary: Path, path: Path) -> None:
    try:
        os.replace(temporary, path)
    except IsADirectoryError:
        raise WriteError(
            f"{path}: is a folder, so it cannot be written as a file; choose another name."
        ) from None


def make_folder(folder: Path) -> None:
    """Make `folder` and its parents, or say in one line why not: a file in the way (say
    `--output afile/out.csv`) or a folder one may not write in is the user's to fix."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise WriteError(
            f"{folder}: cannot be made, a file is in the way; choose another place."
        ) from None
    except OSError as exc:
        raise WriteError(
            f"{folder}: cannot be made ({exc.strerror}); choose another place."
        ) from None


def _umask() -> int:
    """The process umask, so the final file gets the permissions a plain open() would give."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    """Write indented JSON atomically, with a trailing newline like a hand-edited file."""
    write_text(path, json.dumps(data, indent=2) + "\n")
