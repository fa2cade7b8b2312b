"""Corrections from the page: when the model reads a drawing wrong, the person taps the right
digit and the server keeps the drawing, labelled, for `handwritten tune` to learn from.

Only `handwritten serve --collect DIR` saves anything; without it the page shows no digit
buttons (it asks /api/config) and POST /api/corrections answers 404. The folder is a tree
`handwritten tune DIR` reads as it is:

    DIR/<digit>/<name>.png         the drawing as it was sent (tune normalises it again)
    DIR/<digit>/seen/<name>.png    the 28x28 image the model saw, to look at; tune reads
                                   only the files of a digit folder, never its subfolders

`<name>` is the time and a random part (20250101-120000-1a2b3c4d5e6f). Each file is written
whole under a temporary name and then linked to its final name, which, unlike a rename,
never replaces a file: a reader never sees half a drawing, and no correction overwrites
another. Each upload is capped (MAX_FILE_BYTES), and so is the folder, in bytes on disk
(MAX_FOLDER_BYTES, whole blocks) and in files (MAX_FOLDER_FILES), checked under a lock every
worker process shares: when full, nothing is written and the page says so. Decoding a
correction takes its turn with /api/predict's (one image at a time per worker), so a burst
of large uploads cannot decode dozens of images at once.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import anyio
import filelock
import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from PIL import Image
from pydantic import BaseModel, Field

from handwritten import files
from handwritten.errors import HandwrittenError, ImageError
from handwritten.http_errors import ErrorOut
from handwritten.predict import load_digit

MAX_FILE_BYTES = 4 * 2**20
"""A drawing from the page is a few KB; an opened photo of one digit rarely passes 4 MB."""
MAX_FOLDER_BYTES = 256 * 2**20
"""Thousands of corrections: far more than tuning needs, far less than a disk."""
MAX_FOLDER_FILES = 20_000
"""Ten thousand corrections (each is two files): an inode cap, as tiny files use few bytes."""
SEEN = "seen"
LOCK = ".lock"
WINDOWS_CLUSTER = 4096
USAGE = ".usage"
"""What the folder takes on disk, as `bytes files`: the running count the saves add to."""
SUFFIXES = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "GIF": ".gif",
    "BMP": ".bmp",
    "WEBP": ".webp",
}
"""Formats kept as sent, under a suffix `handwritten tune` reads. MPO is a JPEG with more
images after the first, as many phone cameras write; Pillow names it apart."""
DIGITS = "0123456789"
"""The only digits a `digit` field may hold: `str.isdigit` also takes superscripts and
Arabic-Indic or full-width digits, which `int` reads or refuses."""


class FolderFullError(HandwrittenError):
    """The collect folder has reached its cap."""


@dataclass(frozen=True)
class Saved:
    """Where one correction went: the drawing as sent and the image the model saw."""

    drawing: Path
    seen: Path


@dataclass(frozen=True)
class Usage:
    """What part of the disk the folder takes: bytes in whole blocks, and entries (inodes).

    A 77-byte drawing takes a whole block (4 or 8 KiB) and an inode; counting its size
    instead would let a 256 MiB cap grow to many GiB of disk and inodes.
    """

    bytes: int
    files: int

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.bytes + other.bytes, self.files + other.files)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.bytes - other.bytes, self.files - other.files)


@dataclass(frozen=True)
class Collection:
    """The `serve --collect` folder and its caps.

    What the folder takes is counted once, by walking it, when the server starts
    (`count_at_start`); each save then adds what it wrote to that count, kept in USAGE
    inside the folder so every worker process adds to the same one. Drawings moved away
    while the server runs are counted again only at its next start.
    """

    folder: Path
    max_file_bytes: int = MAX_FILE_BYTES
    max_folder_bytes: int = MAX_FOLDER_BYTES
    max_folder_files: int = MAX_FOLDER_FILES

    def count_at_start(self) -> Usage:
        """Walk the folder once and record what it takes, for the saves to add to."""
        with _locked(self.folder):
            usage = _usage_of(self.folder)
            _record(self.folder, usage)
            return usage

    def save(self, drawing: bytes, suffix: str, seen: np.ndarray, digit: int) -> Saved:
        """Keep both images under one new name in the digit's folder, or neither."""
        view = _png(seen)
        digit_folder = self.folder / str(digit)
        folders = [digit_folder, digit_folder / SEEN]
        with _locked(self.folder):
            used = _recorded(self.folder)
            before = _usage_of_paths(folders)
            self._check_room(used, _room_for(drawing, view, before, self.folder))
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}"
            original = _write_new(digit_folder / f"{name}{suffix}", drawing)
            try:
                saved = Saved(original, _write_new(digit_folder / SEEN / f"{name}.png", view))
            except BaseException:
                original.unlink(missing_ok=True)
                raise
            grown = _usage_of_paths(folders) - before
            _record(self.folder, used + grown + _usage_of_paths([saved.drawing, saved.seen]))
            return saved

    def _check_room(self, used: Usage, needed: Usage) -> None:
        after = used + needed
        if after.bytes > self.max_folder_bytes or after.files > self.max_folder_files:
            raise FolderFullError(
                f"the corrections folder is full ({used.bytes:,} of {self.max_folder_bytes:,} "
                f"bytes on disk, {used.files:,} of {self.max_folder_files:,} files), so this "
                "one was not saved; whoever runs the server can tune on it (`handwritten "
                "tune DIR`), move its drawings elsewhere and restart the server."
            )


def open_collection(folder: str | os.PathLike) -> Collection:
    """The collection in `folder`, made if missing, with the default caps, counted."""
    collection = Collection(prepare_folder(Path(folder)))
    collection.count_at_start()
    return collection


def prepare_folder(folder: Path) -> Path:
    """Make the --collect folder (or check the one there) before the server starts, so a
    bad one is one clear error, not a failure at the first correction."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HandwrittenError(
            f"--collect {folder}: cannot make that folder ({exc.strerror or exc}); "
            "choose a folder you can write to."
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HandwrittenError(f"--collect {folder}: not writable; choose a folder you can write.")
    return folder.resolve()


def _write_new(path: Path, data: bytes) -> Path:
    """Write `data` whole under `path`, which must not exist yet.

    atomic_path writes a temporary file beside `path`; `os.link` then gives it its final
    name, failing if that name is taken. atomic_path's own rename of the temporary onto
    `path`, a second name of the same file by then, changes nothing (POSIX), and it removes
    the temporary name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.atomic_path(path) as temporary:
        temporary.write_bytes(data)
        os.link(temporary, path)
    return path


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One correction at a time across worker processes, so the cap holds exactly."""
    with filelock.FileLock(folder / LOCK):
        yield


def _usage_of(folder: Path) -> Usage:
    """What everything under `folder` but the count itself takes on disk; a file someone
    removes meanwhile (after tuning) counts nothing."""
    paths = [
        Path(root) / name for root, folders, names in os.walk(folder) for name in folders + names
    ]
    return _usage_of_paths([path for path in paths if path != folder / USAGE])


def _usage_of_paths(paths: list[Path]) -> Usage:
    usage = Usage(0, 0)
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            usage += Usage(_disk_bytes(path.lstat()), 1)
    return usage


def _disk_bytes(info: os.stat_result) -> int:
    """The whole blocks a file takes where the system says (POSIX), else its size rounded up
    to NTFS's default 4 KiB cluster (Windows reports no blocks)."""
    blocks = getattr(info, "st_blocks", None)
    if blocks is not None:
        return blocks * 512
    return -(-info.st_size // WINDOWS_CLUSTER) * WINDOWS_CLUSTER


def _room_for(drawing: bytes, view: bytes, folders: Usage, folder: Path) -> Usage:
    """The most one save can add: its two files in whole blocks, and a block for each of
    its two folders, which a new entry can make or grow (the folders that do not exist yet
    are files too)."""
    block = os.statvfs(folder).f_frsize or 512
    blocks = sum(-(-len(data) // block) for data in (drawing, view)) + 2
    return Usage(blocks * block, 2 + 2 - folders.files)


def _record(folder: Path, usage: Usage) -> None:
    files.write_text(folder / USAGE, f"{usage.bytes} {usage.files}\n")


def _recorded(folder: Path) -> Usage:
    """The count the saves keep; walked again if it is missing or unreadable (the folder
    predates it, or a test made the collection by hand)."""
    try:
        size, count = (folder / USAGE).read_text().split()
        return Usage(int(size), int(count))
    except (OSError, ValueError):
        usage = _usage_of(folder)
        _record(folder, usage)
        return usage


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


class ConfigOut(BaseModel):
    """What the page needs to know about this server before it shows its buttons."""

    collecting: bool = Field(
        description="whether corrections are saved (`handwritten serve --collect DIR`); the "
        "page offers its row of digit buttons only then"
    )


class CorrectionOut(BaseModel):
    """A correction kept: where its two images are, relative to the collect folder."""

    digit: int = Field(ge=0, le=9, description="the digit the person said it is")
    drawing: str = Field(description="the drawing as sent, e.g. 7/20250101-120000-1a2b3c.png")
    seen: str = Field(description="the 28x28 image the model saw, e.g. 7/seen/...png")


CORRECTION_ERRORS = {
    400: {"model": ErrorOut, "description": "An empty file, or bytes that are not an image"},
    404: {"model": ErrorOut, "description": "The server was started without --collect"},
    413: {"model": ErrorOut, "description": f"A file over {MAX_FILE_BYTES:,} bytes"},
    415: {"model": ErrorOut, "description": "An image format kept only as PNG, JPEG, ..."},
    422: {"model": ErrorOut, "description": "No `file` or no `digit` 0-9, or a blank image"},
    507: {"model": ErrorOut, "description": "The collect folder is full: nothing was written"},
}

router = APIRouter(prefix="/api", tags=["corrections"])


@router.get("/config", response_model=ConfigOut, summary="What this server offers the page")
async def config(request: Request) -> ConfigOut:
    return ConfigOut(collecting=request.app.state.collection is not None)


router.add_api_route("/config", config, methods=["HEAD"], include_in_schema=False)


@router.post(
    "/corrections",
    response_model=CorrectionOut,
    status_code=201,
    responses=CORRECTION_ERRORS,
    summary="Keep a drawing the model read wrong, with the right digit",
)
async def correct(
    request: Request,
    file: Annotated[UploadFile | None, File(description="the drawing, as it was sent")] = None,
    digit: Annotated[str | None, Form(description="the right digit, 0 to 9")] = None,
) -> CorrectionOut:
    """Send the drawing as the multipart field `file` (as /api/predict takes it) and the
    digit it really is as the field `digit`. Saved only under `serve --collect DIR`."""
    collection: Collection | None = request.app.state.collection
    if collection is None:
        raise HTTPException(
            404,
            "corrections are not kept here: the server was started without --collect; "
            "start it with `handwritten serve --collect DIR` to keep them in DIR.",
        )
    label = _digit(digit)
    if file is None:
        raise HTTPException(422, "the upload has no field named `file`; send the drawing as it.")
    data = await file.read(collection.max_file_bytes + 1)
    if len(data) > collection.max_file_bytes:
        raise HTTPException(
            413,
            f"{file.filename or 'file'}: over the {collection.max_file_bytes:,}-byte limit for a "
            "correction; send the drawing itself, or a smaller picture of it.",
        )
    saved = await anyio.to_thread.run_sync(
        _keep, collection, data, file.filename or "file", label, limiter=request.app.state.reader
    )
    return CorrectionOut(
        digit=label,
        drawing=saved.drawing.relative_to(collection.folder).as_posix(),
        seen=saved.seen.relative_to(collection.folder).as_posix(),
    )


def _digit(text: str | None) -> int:
    value = (text or "").strip()
    if len(value) != 1 or value not in DIGITS:
        raise HTTPException(
            422, f"field `digit`: {text!r} is not a digit; send the right digit, 0 to 9."
        )
    return int(value)


def _keep(collection: Collection, data: bytes, name: str, digit: int) -> Saved:
    """Normalise the drawing as /api/predict does, then save it; CPU and disk, so in a thread."""
    if not data:
        raise HTTPException(400, f"{name}: is empty; send the PNG or JPEG image of the digit.")
    try:
        seen = load_digit(data, name)
        kind = Image.open(io.BytesIO(data)).format
    except ImageError as exc:
        raise HTTPException(400, str(exc)) from None
    if seen is None:
        raise HTTPException(422, f"no digit found: {name} has no ink; nothing to correct.")
    if kind not in SUFFIXES:
        raise HTTPException(415, f"{name}: {kind} images are not kept; send it as PNG or JPEG.")
    try:
        return collection.save(data, SUFFIXES[kind], seen, digit)
    except FolderFullError as exc:
        raise HTTPException(507, str(exc)) from None
