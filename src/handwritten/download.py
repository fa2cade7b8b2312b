"""Download a file once, verified: shared by MNIST (`data.py`) and the writers' collections
(`sources/`).

A file only ever appears under its final name after its checksum has been verified, so an
interrupted or corrupt download leaves nothing behind that a later load would trust; an
exclusive lock on the folder (`filelock`, on every platform) makes concurrent processes
fetch each file once.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import filelock

from handwritten.errors import DataError

CHUNK = 1 << 16
FAILURES = (OSError, http.client.HTTPException, ValueError, DataError)
"""What one download attempt can raise that another mirror might not."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks so a large file never sits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def exclusive(directory: Path, what: str, remedy: str) -> Iterator[None]:
    """Hold an exclusive lock on `directory` (made if need be) so processes fetch each file
    once; when the folder cannot be written, the error names `what` was to go there, and
    `remedy` says what else to do."""
    lock = filelock.FileLock(directory / ".lock")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as error:
        raise DataError(
            f"cannot write {what} into {directory} ({error.strerror or error}); make it "
            f"writable, or set XDG_CACHE_HOME to a writable folder, or {remedy}"
        ) from None
    try:
        yield
    finally:
        lock.release()


def remove_partial_downloads(directory: Path) -> None:
    """Delete what a killed download left behind (SIGKILL skips every cleanup).

    Only under the lock: holding it, no other process can be writing one.
    """
    for leftover in directory.rglob(".*.part"):
        leftover.unlink(missing_ok=True)


def fetch_verified(
    url: str,
    final: Path,
    sha256: str,
    timeout: float,
    digest_of: Callable[[Path], str] = file_sha256,
) -> None:
    """Download to a temporary sibling and rename only a verified file into place.

    `digest_of` is what the checksum covers: the file's bytes by default, MNIST's the
    decompressed payload (mirrors compress differently).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    partial = Path(name)
    try:
        print(f"Downloading {url}", file=sys.stderr)
        with (
            os.fdopen(descriptor, "wb") as out,
            urllib.request.urlopen(url, timeout=timeout) as response,
        ):
            copy_with_progress(response, out)
        digest = digest_of(partial)
        if digest != sha256:
            raise DataError(f"SHA-256 is {digest}, expected {sha256}")
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)


def copy_with_progress(response: http.client.HTTPResponse, out: BinaryIO) -> None:
    """Copy the body, showing progress on a terminal; a short body is an error, not EOF."""
    total = int(response.headers.get("Content-Length") or 0)
    done = 0
    show = sys.stderr.isatty()
    while chunk := response.read(CHUNK):
        out.write(chunk)
        done += len(chunk)
        if show:
            print(f"\r  {done / 1e6:.1f} / {total / 1e6:.1f} MB", end="", file=sys.stderr)
    if show:
        print(file=sys.stderr)
    if total and done != total:
        raise DataError(f"connection closed after {done} of {total} bytes")
