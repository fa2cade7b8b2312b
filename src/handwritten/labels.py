"""Reading a folder's labels.csv (file,label or file,kind): tables people make by hand or in a
spreadsheet, so each of their usual mistakes is named with the file, the row and the fix
instead of ending in a traceback or, worse, in a score computed on labels that cannot be right.

Excel's "CSV UTF-8" starts the file with a byte-order mark: it is read. Anything else that is
not UTF-8, a separator other than the comma, columns named otherwise, a short row, a label
that is not a digit (or a number, or a kind), a row naming an image that is not there and a
table with no rows are refused.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from handwritten.errors import DataError

Label = TypeVar("Label")
DIGITS = "0123456789"


def digit_label(text: str) -> int:
    """A digit's label: one of 0 ... 9 (not 12, -1, 3.0, three or nothing)."""
    text = text.strip()
    if len(text) != 1 or text not in DIGITS:
        raise ValueError(f"label {text!r} is not a digit from 0 to 9")
    return int(text)


def number_label(text: str) -> str:
    """A number's label: its digits 0-9, leading zeros kept (not five, 1.5 or nothing)."""
    text = text.strip()
    if not text or any(character not in DIGITS for character in text):
        raise ValueError(f"label {text!r} is not a number written with the digits 0-9")
    return text


def read_number_labels(table: Path) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    """A number set's (image path, digits) pairs, and the (file, label) of the rows left
    out because their label is more than digits: registers and ledgers number rows `4a`,
    `-` or `sn`, which a digit reader can never write, so they are counted apart rather than
    scored as misreads or refusing the whole set. A set with no digit label is refused, with
    the first row's problem: it is the wrong file or the wrong column."""
    pairs = read_labels(table, str.strip)
    numbers = [(path, label) for path, label in pairs if _is_number(label)]
    if not numbers:
        read_labels(table, number_label)  # raises, naming the first row and its problem
    others = [(path.name, label) for path, label in pairs if not _is_number(label)]
    return numbers, others


def _is_number(label: str) -> bool:
    return bool(label) and all(character in DIGITS for character in label)


def kind_label(text: str) -> str:
    """What a non-digit image shows (letter, symbol, ...): any words, but not nothing."""
    text = text.strip()
    if not text:
        raise ValueError("kind is empty; say what the image shows (letter, symbol, ...)")
    return text


def read_labels(
    table: Path, parse: Callable[[str], Label], column: str = "label"
) -> list[tuple[Path, Label]]:
    """(image path, label) for each row of `table`, a CSV file with columns `file` and
    `column`; the images are files in the table's folder."""
    reader = csv.DictReader(io.StringIO(_text(table), newline=""))
    names = [name.strip() for name in reader.fieldnames or []]
    if "file" not in names or column not in names:
        raise DataError(
            f"{table}, row 1: names the columns {', '.join(map(repr, names)) or 'nothing'}; it "
            f"must name file and {column}, separated by commas (file,{column})."
        )
    reader.fieldnames = names
    pairs = [_row(table, reader.line_num, row, parse, column) for row in reader]
    if not pairs:
        raise DataError(f"{table}: no rows under its header; add one row per image: file,{column}.")
    return pairs


def _text(table: Path) -> str:
    """The table's text: UTF-8, with or without the byte-order mark spreadsheets write."""
    try:
        content = table.read_bytes()
    except OSError as exc:
        raise DataError(f"{table}: cannot be read ({exc.strerror}).") from None
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = content[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{table}, row {row}: not UTF-8 text (byte 0x{content[exc.start]:02x}); save it "
            'as UTF-8 (in Excel: "CSV UTF-8").'
        ) from None


def _row(
    table: Path, number: int, row: dict, parse: Callable[[str], Label], column: str
) -> tuple[Path, Label]:
    where = f"{table}, row {number}"
    if None in row:
        raise DataError(f"{where}: more values than columns; quote a file name that holds a comma.")
    if row["file"] is None or row[column] is None:
        raise DataError(f"{where}: too few values; each row needs a file and a {column}.")
    name = row["file"].strip()
    if not name:
        raise DataError(f"{where}: names no file.")
    try:
        label = parse(row[column])
    except ValueError as exc:
        raise DataError(f"{where}: {exc}.") from None
    path = table.parent / name
    if not path.is_file():
        raise DataError(f"{where}: {name}: no such image in {table.parent}.")
    return path, label
