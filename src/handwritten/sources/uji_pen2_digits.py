"""UJI Pen Characters v2, the digits: 60 writers in Castellón and Valencia, Spain, each
writing every digit twice with a stylus on a tablet PC, as Bridger Maxwell's JSON conversion
of the UCI file holds them ({"rawData": {digit: [sample, ...]}}, y downwards).

Writer ids are not stored. In each digit's list, sample i is most likely writer i // 2's
(adjacent pairs match in size, and the first 16 writers, at UJI's 100 units/mm, are smaller
than the rest); that inference gives the ids here, so a writer's two samples stay together.
"""

from __future__ import annotations

from pathlib import Path

from handwritten.sources._core import Source, Written
from handwritten.sources._json import read_classes, strokes_of

_FILE = "ujipenchars2.json"

SOURCE = Source(
    name="uji-pen2-digits",
    title="UJI Pen Characters v2 (digits)",
    creators="F. Prat, M. J. Castro, D. Llorens, A. Marzal and J. M. Vilar, Universitat Jaume I "
    "and Universidad Politécnica de Valencia (UCI, 2009); JSON by Bridger Maxwell (NumberPad)",
    licence="CC BY 4.0",
    licence_note="as UCI lists it (dataset 177); the JSON's repository is Apache-2.0; cite "
    "Llorens et al., LREC 2008",
    homepage="https://archive.ics.uci.edu/dataset/177",
    how_written="stylus on a tablet PC: trajectories",
    writers_note="60 writers, Spain (ids inferred: sample i of each digit is writer i // 2)",
    files={_FILE: "e09d00763f0ff33a98f5e2d14b3140c41423b27497af543c9cef4cdc1f3edc31"},
    kind="trajectories",
    digits=1200,
    writer_ids=60,
    downloads={
        _FILE: "https://raw.githubusercontent.com/bridger/NumberPad/"
        "de2f2285144d16346bffdd37b94af75eb6fa2d13/Data/ujipenchars2.json"
    },
)


def parse(folder: Path) -> list[Written]:
    """Every digit, digit by digit; writer "w<i // 2>"."""
    path = folder / _FILE
    classes = read_classes(path, "UJI", key="rawData")
    return [
        Written(
            char, f"w{index // 2:02d}", "train", strokes_of(sample, path, "UJI", f"{char}[{index}]")
        )
        for char in sorted(classes)
        for index, sample in enumerate(classes[char])
    ]
