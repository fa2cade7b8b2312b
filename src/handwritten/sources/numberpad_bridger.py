"""NumberPad's handwriting samples: digits and a few maths symbols drawn with a finger on an
iPad by Bridger Maxwell, the app's author (probably the only writer): `rawData` of
bridger_all.json ({char: [sample, ...]}, screen points, y downwards). The symbols
(+ - / ? ^ e x) are characters that are not digits (label -1)."""

from __future__ import annotations

from pathlib import Path

from handwritten.sources._core import Source, Written
from handwritten.sources._json import read_classes, strokes_of

_FILE = "bridger_all.json"

SOURCE = Source(
    name="numberpad-bridger",
    title="NumberPad handwriting samples",
    creators="Bridger Maxwell (bridger/NumberPad)",
    licence="Apache-2.0",
    licence_note="the repository's licence; no separate data licence is given",
    homepage="https://github.com/bridger/NumberPad",
    how_written="finger on an iPad: trajectories",
    writers_note="1 writer, USA (probably the author)",
    files={_FILE: "de227d31c51e84d1594f6f5dbaab2c9e0aff81e86a3d5425ce425998aee43e0e"},
    kind="trajectories",
    digits=822,
    others=320,
    writer_ids=1,
    downloads={
        _FILE: "https://raw.githubusercontent.com/bridger/NumberPad/"
        "de2f2285144d16346bffdd37b94af75eb6fa2d13/Data/bridger_all.json"
    },
)


def parse(folder: Path) -> list[Written]:
    """Every raw sample, in character order, all by writer "bridger"."""
    path = folder / _FILE
    classes = read_classes(path, "NumberPad", key="rawData")
    return [
        Written(char, "bridger", "train", strokes_of(sample, path, "NumberPad", f"{char}[{index}]"))
        for char in sorted(classes)
        for index, sample in enumerate(classes[char])
    ]
