"""Chars74K EnglishHnd: 55 volunteers drew every digit and letter once on a tablet PC, as
Allison Parrish's JSON conversion of the MATLAB trajectories holds them
({char: [sample, ...]}, y downwards).

The letters are characters that are not digits (label -1), for learning "not a digit"; some
are written like digits (O, o, l, I, S, Z, ...), which a user of them must allow for. Sample
i of each character is the original `img0CC-(i+1)`, most likely the same volunteer across
characters: writer "v<i>".
"""

from __future__ import annotations

from pathlib import Path

from handwritten.sources._core import Source, Written
from handwritten.sources._json import read_classes, strokes_of

_FILE = "char74k.json"

SOURCE = Source(
    name="chars74k-hnd",
    title="Chars74K, English hand-drawn characters",
    creators='T. E. de Campos, B. R. Babu and M. Varma, "Character recognition in natural '
    'images", VISAPP 2009; JSON by Allison Parrish',
    licence="the paper's terms (unverified)",
    licence_note="the JSON's repository says the data follows the original paper's reuse rules, "
    "which are not in it; cite the paper, and check the Chars74K page before any use beyond "
    "research",
    homepage="http://www.ee.surrey.ac.uk/CVSSP/demos/chars74k/",
    how_written="tablet PC: trajectories",
    writers_note="55 volunteers (probably in India; ids inferred from sample order)",
    files={_FILE: "2603e6fa7845c845899919bae44c09886a63a977ff9b21c72ef9c9613c31224d"},
    kind="trajectories",
    digits=550,
    others=2860,
    writer_ids=55,
    downloads={
        _FILE: "https://raw.githubusercontent.com/aparrish/chars74k-json-dump/"
        "9a5ad8cbed876755b0eeaf427592cfa641c2760a/char74k.json"
    },
)


def parse(folder: Path) -> list[Written]:
    """Every character, in character order; writer "v<i>"."""
    path = folder / _FILE
    classes = read_classes(path, "Chars74K")
    return [
        Written(
            char, f"v{index:02d}", "train", strokes_of(sample, path, "Chars74K", f"{char}[{index}]")
        )
        for char in sorted(classes)
        for index, sample in enumerate(classes[char])
    ]
