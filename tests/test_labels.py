"""labels.csv as people write it: every ordinary mistake named by file, row and fix (issue 25,
items 15 and 16), through `evaluate --drawings/--numbers/--nondigits` as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from drawings import draw

from handwritten.cli import main
from handwritten.labels import digit_label, number_label, read_labels, read_number_labels

OPTIONS = {"label": "--drawings", "number": "--numbers", "kind": "--nondigits"}


def folder_with(tmp_path: Path, table: bytes, images: tuple[str, ...] = ("a.png", "b.png")) -> Path:
    folder = tmp_path / "set"
    folder.mkdir()
    for name in images:
        draw().save(folder / name)
    (folder / "labels.csv").write_bytes(table)
    return folder


def evaluate(option: str, folder: Path, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    status = main(["evaluate", "--model", "seed", "--runtime", "onnx", option, str(folder)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_byte_order_mark_as_excel_writes_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Issue 25, item 15: Excel's "CSV UTF-8" starts with a BOM: KeyError 'file'."""
    folder = folder_with(tmp_path, "\ufefffile,label\na.png,7\nb.png,7\n".encode())
    status, out, err = evaluate("--drawings", folder, capsys)
    assert (status, err) == (0, "")
    assert out.startswith(f"{folder}: ")
    assert " of 2 read right" in out


@pytest.mark.parametrize(
    ("option", "table", "problem"),
    [
        ("--drawings", b"file;label\na.png;7\n", "row 1: names the columns 'file;label'; it must"),
        ("--drawings", b"image,digit\na.png,7\n", "row 1: names the columns 'image', 'digit'"),
        (
            "--nondigits",
            b"file,label\na.png,x\n",
            "row 1: names the columns 'file', 'label'; it must name file and kind",
        ),
        (
            "--drawings",
            b"file,label\na.png,7\nb.png,three\n",
            "row 3: label 'three' is not a digit",
        ),
        (
            "--drawings",
            b"file,label\na.png,3.0\n",
            "row 2: label '3.0' is not a digit from 0 to 9.",
        ),
        ("--drawings", b"file,label\na.png,\n", "row 2: label '' is not a digit from 0 to 9."),
        (
            "--drawings",
            b"file,label\na.png\n",
            "row 2: too few values; each row needs a file and a label.",
        ),
        ("--drawings", b"file,label\na.png,7,extra\n", "row 2: more values than columns"),
        ("--drawings", b"file,label\n,7\n", "row 2: names no file."),
        (
            "--drawings",
            b"file,label\na.png,7\n\xe9t\xe9.png,7\n",
            "row 3: not UTF-8 text (byte 0xe9)",
        ),
        ("--numbers", b"file,label\na.png,five\n", "row 2: label 'five' is not a number"),
        ("--numbers", b"file,label\na.png,\n", "row 2: label '' is not a number written"),
        ("--nondigits", b"file,kind\na.png,letter\nb.png, \n", "row 3: kind is empty"),
    ],
)
def test_an_ordinary_bad_labels_csv_is_named_by_file_row_and_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture, option: str, table: bytes, problem: str
) -> None:
    """Issue 25, item 15: KeyError, ValueError, TypeError or UnicodeDecodeError tracebacks."""
    folder = folder_with(tmp_path, table)
    status, out, err = evaluate(option, folder, capsys)
    assert status == 1
    assert out == ""
    assert err.startswith(f"handwritten: error: {folder / 'labels.csv'}, {problem}")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "table", "problem"),
    [
        ("--drawings", b"file,label\na.png,7\nb.png,12\n", ", row 3: label '12' is not a digit"),
        ("--drawings", b"file,label\na.png,-1\n", ", row 2: label '-1' is not a digit from 0 to 9"),
        ("--drawings", b"file,label\n", ": no rows under its header; add one row per image"),
        ("--numbers", b"file,label\n", ": no rows under its header"),
        ("--drawings", b"file,label\na.png,7\nnope.png,3\n", ", row 3: nope.png: no such image"),
        ("--numbers", b"file,label\nnope.png,31\n", ", row 2: nope.png: no such image in"),
    ],
)
def test_labels_that_cannot_be_right_are_refused_not_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture, option: str, table: bytes, problem: str
) -> None:
    """Issue 25, item 16: `12`, `-1`, a header-only file ("0 of 0 read right", exit 0) and
    a missing image ("nope.png: 3 read as None") were scored silently."""
    folder = folder_with(tmp_path, table)
    status, out, err = evaluate(option, folder, capsys)
    assert (status, out) == (1, "")
    assert err.startswith(f"handwritten: error: {folder / 'labels.csv'}{problem}")


def test_labels_are_read_with_their_spaces_and_leading_zeros(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, b"file , label\n a.png , 7 \nb.png,007\n")
    table = folder / "labels.csv"
    assert read_labels(table, number_label) == [(folder / "a.png", "7"), (folder / "b.png", "007")]
    with pytest.raises(ValueError, match="'007' is not a digit"):
        digit_label("007")


def test_a_missing_folder_of_nondigits_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    status, _, err = evaluate("--nondigits", tmp_path / "nowhere", capsys)
    assert status == 1
    assert err == (
        f"handwritten: error: {tmp_path / 'nowhere'}: no such folder; give a folder of images "
        "that are not digits.\n"
    )


def test_register_labels_with_letters_are_left_out_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Registers number rows `4a`, `-` or `sn`: no digit reader can write them, so they are
    counted apart and named, and the rest of the set is scored."""
    folder = folder_with(
        tmp_path, b"file,label\na.png,4a\nb.png,7\nc.png,-\n", ("a.png", "b.png", "c.png")
    )
    numbers, others = read_number_labels(folder / "labels.csv")
    assert numbers == [(folder / "b.png", "7")]
    assert others == [("a.png", "4a"), ("c.png", "-")]
    status, out, err = evaluate("--numbers", folder, capsys)
    assert (status, err) == (0, "")
    assert " of 1 read right" in out
    assert (
        "left out 2 rows whose labels are more than digits (such as a.png: '4a', c.png: '-')" in out
    )
