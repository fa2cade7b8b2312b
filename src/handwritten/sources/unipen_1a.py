"""UNIPEN train_r01_v07, category 1a: isolated digits written on pen tablets at 17 sites.

Each `data/1a/.../*.dat` file includes a recording (`.INCLUDE`, relative to `include/`) and
names its digits by `.SEGMENT CHARACTER <components> ? "<digit>"`. A recording is a run of
`.PEN_DOWN` and `.PEN_UP` blocks of "x y ..." points; the components a segment counts are the
blocks that hold points, from 0 (an empty `.PEN_UP` only ends the block before it: with this
rule every one of the 15,953 segments falls on pen-down ends), and a bound may name a point,
`component:point`. Only the pen-down blocks are drawn: pen-up blocks are the pen moving in the
air. No file declares which way y points; measured on how sevens start (with the stroke at
the top), every contributor's tablet counts y upwards, so y is flipped. Writer ids are the
recording's `.WRITER_ID`, prefixed by the contributor's code.

The segmentation is the source's own and kept as it is, errors included: some segments hold
one stroke of a two-stroke digit (IBM labels each stroke of some 4s as a "4": components 770
and 771 of data/1a/ibm/ibm0/r0007.dat), a few hold several characters. The shipped cnn reads
96.5% of the digits; most of the rest are slashed zeros, a style MNIST lacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handwritten.errors import DataError
from handwritten.sources._core import Source, Written, checksum_list, malformed, parsing

_REPO = (
    "https://raw.githubusercontent.com/GreenCappuccino/train_r01_v07/"
    "552a4d440bc94bb34710650c0826be7deb986f7c/"
)
_FILES = checksum_list("unipen-1a")

SOURCE = Source(
    name="unipen-1a",
    title="UNIPEN train_r01_v07, category 1a (isolated digits)",
    creators="the UNIPEN project (I. Guyon, L. Schomaker, R. Plamondon, M. Liberman, S. Janet), "
    "International Unipen Foundation; data from 17 contributing organisations",
    licence="CC BY 4.0 (Zenodo) / research only (CD-ROM)",
    licence_note="unclear: the Zenodo release (doi:10.5281/zenodo.1195803) says CC BY 4.0, but "
    "the original CD-ROM notice permits research use only and forbids commercial distribution; "
    "check before any commercial use",
    homepage="https://doi.org/10.5281/zenodo.1195803",
    how_written="pen on tablets: trajectories",
    writers_note="many writers at 17 organisations (US, Europe, Asia, Australia), early 1990s",
    files=_FILES,
    kind="trajectories",
    digits=15953,
    writer_ids=268,
    downloads={name: _REPO + name for name in _FILES},
)

_BOUND = re.compile(r"^(\d+)(?::(\d+))?$")


@dataclass(frozen=True)
class Component:
    pen_down: bool
    points: np.ndarray
    writer: str


@dataclass(frozen=True)
class Recording:
    components: list[Component]
    y_scale: float
    """How much larger a y unit is than an x unit (tablets differ in resolution per axis)."""


def parse(folder: Path) -> list[Written]:
    """Every digit segment of every category-1a file, in path order."""
    recordings: dict[tuple[str, ...], Recording] = {}
    written: list[Written] = []
    for name in sorted(n for n in SOURCE.files if n.startswith("data/1a/")):
        written += parse_segments(folder, name, recordings)
    return written


def parse_segments(
    folder: Path, name: str, recordings: dict[tuple[str, ...], Recording] | None = None
) -> list[Written]:
    """The digits one `.dat` file segments, drawn from the recordings it includes."""
    path = folder / name
    includes: list[str] = []
    segments: list[tuple[int, str, str]] = []
    with parsing(path, "UNIPEN"):
        for number, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
            words = line.split()
            if words[:1] == [".INCLUDE"] and len(words) > 1:
                includes.append(words[1])
            elif words[:1] == [".SEGMENT"]:
                quoted = line.split('"')
                if len(words) < 3 or len(quoted) < 3:
                    raise malformed(path, number, '.SEGMENT needs components and a "label"')
                segments.append((number, words[2], quoted[1]))
    cache = {} if recordings is None else recordings
    key = tuple(includes)
    if key not in cache:
        cache[key] = read_recording(folder, includes)
    recording = cache[key]
    contributor = Path(name).parts[2]
    samples = []
    for number, spec, char in segments:
        strokes, writer = _strokes(recording, spec, path, number)
        scaled = tuple(stroke * (1.0, -recording.y_scale) for stroke in strokes)
        samples.append(Written(char, f"{contributor}-{writer or Path(name).stem}", "train", scaled))
    return samples


def read_recording(folder: Path, includes: list[str]) -> Recording:
    """The components of the included files, in order (nested includes followed)."""
    components: list[Component] = []
    header: dict[str, float] = {}
    for include in includes:
        _read_include(folder, include, components, header, depth=0)
    x_res = header.get("X_POINTS_PER_MM") or header.get("X_POINTS_PER_INCH") or 1.0
    y_res = header.get("Y_POINTS_PER_MM") or header.get("Y_POINTS_PER_INCH") or x_res
    return Recording(components, x_res / y_res)


def _read_include(
    folder: Path, include: str, components: list[Component], header: dict, depth: int
) -> None:
    path = folder / "include" / include
    if depth > 4:
        raise DataError(f"{path}: .INCLUDE nested too deep; replace the file with the original")
    writer = ""
    block: list[tuple[float, float]] | None = None
    pen_down = False

    def close() -> None:
        if block:
            components.append(Component(pen_down, np.array(block, dtype=np.float64), writer))

    with parsing(path, "UNIPEN"):
        for line in path.read_text(encoding="latin-1").splitlines():
            words = line.split()
            if not words:
                continue
            keyword = words[0]
            if not line.startswith("."):  # keywords start lines; documentation may quote them
                if block is not None:
                    block.append((float(words[0]), float(words[1])))
                continue
            close()
            block = [] if keyword in (".PEN_DOWN", ".PEN_UP") else None
            pen_down = keyword == ".PEN_DOWN"
            if keyword == ".WRITER_ID" and len(words) > 1:
                writer = words[1]
            elif keyword.endswith("_POINTS_PER_MM") or keyword.endswith("_POINTS_PER_INCH"):
                header[keyword[1:]] = float(words[1])
            elif keyword == ".INCLUDE" and len(words) > 1:
                _read_include(folder, words[1], components, header, depth + 1)
        close()


def _strokes(
    recording: Recording, spec: str, path: Path, number: int
) -> tuple[list[np.ndarray], str]:
    """The pen-down points a segment's components cover, and the writer of its first one."""
    strokes: list[np.ndarray] = []
    writer = ""
    count = len(recording.components)
    for part in spec.split(","):
        first, _, last = part.partition("-")
        (start, start_point), (end, end_point) = (
            _bound(first, path, number),
            _bound(last or first, path, number),
        )
        if not 0 <= start <= end < count:
            raise malformed(path, number, f"components {part} but the recording has {count}")
        writer = writer or recording.components[start].writer
        for index in range(start, end + 1):
            component = recording.components[index]
            points = component.points
            if index == end and end_point is not None:
                points = points[: end_point + 1]
            if index == start and start_point is not None:
                points = points[start_point:]
            if component.pen_down and len(points):
                strokes.append(points)
    if not strokes:
        raise malformed(path, number, f"components {spec} hold no pen-down points")
    return strokes, writer


def _bound(text: str, path: Path, number: int) -> tuple[int, int | None]:
    match = _BOUND.match(text)
    if match is None:
        raise malformed(path, number, f"{text!r} is not a component or component:point")
    return int(match[1]), None if match[2] is None else int(match[2])
