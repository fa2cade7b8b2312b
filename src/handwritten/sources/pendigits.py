"""UCI Pen-Based Recognition of Handwritten Digits: 44 writers in Istanbul on a tablet.

The original UNIPEN-style trajectories (`pendigits-orig.tra` / `.tes`), not the 8-point
reductions. Each `.SEGMENT` is one digit; its `.COMMENT` line gives the label, the writer
(numbered 1-30 in the training file and 1-14, other people, in the test file) and the sample
number; points are listed between `.PEN_DOWN` and `.PEN_UP`, with y upwards (tablet
coordinates), so y is flipped here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handwritten.sources._core import Source, Written, malformed, parsing

_REPO = "https://raw.githubusercontent.com/kleinplw/HMM-Pendigits/a50dacab2860f6e10389f59d63253354bbc48c3e/data/"
_FILES = {"pendigits-orig.tra": "train", "pendigits-orig.tes": "test"}

SOURCE = Source(
    name="pendigits",
    title="UCI Pen-Based Recognition of Handwritten Digits (original trajectories)",
    creators="E. Alpaydin and F. Alimoglu, Bogazici University, Istanbul (UCI, 1998)",
    licence="CC BY 4.0",
    licence_note="as UCI lists it (dataset 81); cite Alpaydin & Alimoglu and UCI",
    homepage="https://archive.ics.uci.edu/dataset/81",
    how_written="pen on a tablet: trajectories",
    writers_note="44 writers, Istanbul (30 in train, 14 others in test)",
    files={
        "pendigits-orig.tra": "a66225d68d7d68591e62944df1ad33b3f5aa608e2df2505844b41f5568a80da4",
        "pendigits-orig.tes": "ddb1c19e277a56c7ffe682cc024d6ab73696f9adcc1643ef9ed5aa753007e081",
    },
    kind="trajectories",
    digits=10992,
    writer_ids=44,
    downloads={name: _REPO + name for name in _FILES},
)


def parse(folder: Path) -> list[Written]:
    """Every digit of both files, in file order; writer ids "train-<n>" and "test-<n>"."""
    written: list[Written] = []
    for name, split in _FILES.items():
        written += parse_file(folder / name, split)
    return written


def parse_file(path: Path, split: str) -> list[Written]:
    samples: list[Written] = []
    with parsing(path, "pendigits"):
        segment: dict | None = None
        stroke: list[tuple[float, float]] | None = None
        for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
            words = line.split()
            if not words:
                continue
            keyword = words[0]
            if keyword == ".SEGMENT":
                _finish(segment, samples, split, path)
                segment = {"char": _label(line, path, number), "writer": "", "strokes": []}
            elif keyword == ".COMMENT" and segment is not None:
                segment["writer"] = f"{split}-{int(words[2])}"
            elif keyword == ".PEN_DOWN":
                stroke = []
            elif keyword == ".PEN_UP":
                if segment is None or stroke is None:
                    raise malformed(path, number, ".PEN_UP without a .PEN_DOWN in a segment")
                if stroke:
                    segment["strokes"].append(np.array(stroke) * (1.0, -1.0))
                stroke = None
            elif stroke is not None and not keyword.startswith("."):
                stroke.append((float(words[0]), float(words[1])))
        _finish(segment, samples, split, path)
    return samples


def _label(line: str, path: Path, number: int) -> str:
    parts = line.split('"')
    if len(parts) < 3 or parts[1] not in "0123456789" or len(parts[1]) != 1:
        raise malformed(path, number, 'a .SEGMENT without a digit label such as "8"')
    return parts[1]


def _finish(segment: dict | None, samples: list[Written], split: str, path: Path) -> None:
    if segment is None:
        return
    if not segment["strokes"]:
        raise malformed(path, None, f"a segment of digit {segment['char']} has no pen-down points")
    samples.append(Written(segment["char"], segment["writer"], split, tuple(segment["strokes"])))
