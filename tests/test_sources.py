"""Unit tests for handwritten.sources: each parser on small files written here in its
source's format, the renderer, checksums, the cache and the download path (a real HTTP server
on 127.0.0.1 serving files made here). The real collections are tested in
test_sources_real.py."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handwritten import data, sources
from handwritten.errors import DataError
from handwritten.sources import (
    _core,
    _render,
    chars74k_hnd,
    hwd_1000,
    numberpad_bridger,
    optdigits_orig,
    pendigits,
    uji_pen2_digits,
    unipen_1a,
    usps,
)
from handwritten.sources._core import Source, Written


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test here reads ../shared or the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(sources.WRITERS_DIR_ENV, raising=False)
    monkeypatch.delenv(sources.MIRROR_ENV, raising=False)


# pendigits ---------------------------------------------------------------------------------

PENDIGITS = """.INCLUDE        dene.doc
.LEXICON "0" "1" "2" "3" "4" "5" "6" "7" "8" "9"
.HIERARCHY      DIGIT

.SEGMENT DIGIT    0 ? "7"
.COMMENT 7 12  224
.PEN_DOWN
 100  300
 200  300
 120  100
.PEN_UP

.SEGMENT DIGIT    1-2 ? "4"
.COMMENT 4 3  5
.PEN_DOWN
 100  300
 100  200
 200  200
.PEN_UP
.DT 120
.PEN_DOWN
 180  300
 180  100
.PEN_UP
"""


def test_pendigits_segments_strokes_writers_and_y_flipped(tmp_path: Path) -> None:
    path = tmp_path / "pendigits-orig.tra"
    path.write_text(PENDIGITS)
    seven, four = pendigits.parse_file(path, "train")
    assert (seven.char, seven.writer, seven.split) == ("7", "train-12", "train")
    assert (four.char, four.writer) == ("4", "train-3")
    assert len(seven.strokes) == 1
    assert len(four.strokes) == 2
    # Tablet y grows upwards: the seven's bar (y 300) must end up above its foot (y 100).
    top, foot = seven.strokes[0][0], seven.strokes[0][-1]
    assert top[1] < foot[1]
    np.testing.assert_array_equal(four.strokes[1], [[180, -300], [180, -100]])


def test_pendigits_reads_both_files_as_their_splits(tmp_path: Path) -> None:
    (tmp_path / "pendigits-orig.tra").write_text(PENDIGITS)
    (tmp_path / "pendigits-orig.tes").write_text(PENDIGITS.replace("COMMENT 7 12", "COMMENT 7 2"))
    written = pendigits.parse(tmp_path)
    assert [w.split for w in written] == ["train", "train", "test", "test"]
    assert [w.writer for w in written] == ["train-12", "train-3", "test-2", "test-3"]


@pytest.mark.parametrize(
    ("corruption", "complaint"),
    [
        (lambda text: text.replace(" 200  300", " 2x0  300"), "cannot be read as a pendigits"),
        (lambda text: text.replace('? "7"', '? "seven"'), "line 5: a .SEGMENT without a digit"),
        (
            lambda text: text.replace(".PEN_DOWN\n 100  300\n 200", ".PEN_UP\n 100  300\n 200", 1),
            "line 7: .PEN_UP without a .PEN_DOWN",
        ),
        (lambda text: "\x89PNG\x00\xff" + text, "cannot be read as a pendigits"),
    ],
)
def test_pendigits_corrupt_file_names_the_file(tmp_path: Path, corruption, complaint: str) -> None:
    path = tmp_path / "pendigits-orig.tra"
    path.write_bytes(corruption(PENDIGITS).encode("latin-1"))
    with pytest.raises(DataError, match=complaint) as caught:
        pendigits.parse_file(path, "train")
    assert str(path) in str(caught.value)
    assert "replace" in str(caught.value)


# UNIPEN --------------------------------------------------------------------------------------

UNIPEN_RECORDING = """.VERSION 1.0
.COMMENT  Sampling: between
          .PEN_DOWN and .PEN_UP, quoted in the documentation.
.X_POINTS_PER_MM 10
.Y_POINTS_PER_MM 5
.WRITER_ID alice
.PEN_DOWN
0 0
0 10
.PEN_UP
.PEN_UP
50 50
60 60
.PEN_DOWN
10 10
20 20
30 30
40 40
.PEN_UP
.DT 300
.PEN_DOWN
5 5
.PEN_UP
"""


def _unipen_tree(root: Path, segments: str) -> str:
    include = root / "include" / "xyz" / "data" / "rec.dat"
    include.parent.mkdir(parents=True)
    include.write_text(UNIPEN_RECORDING)
    name = "data/1a/xyz/rec.dat"
    (root / name).parent.mkdir(parents=True)
    (root / name).write_text(f".VERSION 1.0\n.INCLUDE xyz/data/rec.dat\n{segments}")
    return name


def test_unipen_components_are_blocks_with_points_and_pen_up_is_not_drawn(tmp_path: Path) -> None:
    name = _unipen_tree(
        tmp_path,
        '.SEGMENT CHARACTER 0-2 ? "1"\n.SEGMENT CHARACTER 3 OK "7"\n'
        '.SEGMENT CHARACTER 2:1-2:2 ? "2"\n',
    )
    one, seven, two = unipen_1a.parse_segments(tmp_path, name)
    assert (one.char, one.writer, one.split) == ("1", "xyz-alice", "train")
    # Components: 0 pen-down, (an empty .PEN_UP is no component), 1 pen-up with points,
    # 2 pen-down, 3 pen-down. 0-2 draws 0 and 2, never the pen-up moves (50,50)-(60,60).
    assert len(one.strokes) == 2
    drawn = np.concatenate(one.strokes)
    assert not np.isin(drawn[:, 0], [50, 60]).any()
    # y counts upwards and a y unit is twice an x unit here (10 vs 5 points per mm).
    np.testing.assert_array_equal(one.strokes[0], [[0, 0], [0, -20]])
    np.testing.assert_array_equal(seven.strokes[0], [[5, -10]])
    np.testing.assert_array_equal(two.strokes[0], [[20, -40], [30, -60]])


@pytest.mark.parametrize(
    ("segment", "complaint"),
    [
        ('.SEGMENT CHARACTER 9 ? "1"\n', r"rec.dat, line 3: components 9 but the recording has 4"),
        ('.SEGMENT CHARACTER 1 ? "1"\n', r"line 3: components 1 hold no pen-down points"),
        ('.SEGMENT CHARACTER x-y ? "1"\n', r"line 3: 'x' is not a component"),
        (".SEGMENT CHARACTER 1\n", r"line 3: .SEGMENT needs components and a \"label\""),
    ],
)
def test_unipen_bad_segments_name_file_and_line(
    tmp_path: Path, segment: str, complaint: str
) -> None:
    name = _unipen_tree(tmp_path, segment)
    with pytest.raises(DataError, match=complaint):
        unipen_1a.parse_segments(tmp_path, name)


def test_unipen_corrupt_recording_names_the_include(tmp_path: Path) -> None:
    name = _unipen_tree(tmp_path, '.SEGMENT CHARACTER 0 ? "1"\n')
    recording = tmp_path / "include" / "xyz" / "data" / "rec.dat"
    recording.write_text(UNIPEN_RECORDING.replace("20 20", "20 twenty"))
    with pytest.raises(DataError, match="cannot be read as a UNIPEN file") as caught:
        unipen_1a.parse_segments(tmp_path, name)
    assert str(recording) in str(caught.value)


# JSON trajectories ---------------------------------------------------------------------------

JSON_SOURCES = [
    (uji_pen2_digits, "ujipenchars2.json", "rawData"),
    (chars74k_hnd, "char74k.json", None),
    (numberpad_bridger, "bridger_all.json", "rawData"),
]


def _json_file(folder: Path, file: str, key: str | None, classes: dict) -> Path:
    path = folder / file
    path.write_text(json.dumps({key: classes} if key else classes))
    return path


@pytest.mark.parametrize(("module", "file", "key"), JSON_SOURCES)
def test_json_sources_strokes_chars_and_writers(tmp_path: Path, module, file: str, key) -> None:
    stroke = [[0, 0], [10, 0], [0, 20]]
    classes = {"7": [[stroke], [stroke, [[5, 10]]], [stroke]], "x": [[stroke]]}
    _json_file(tmp_path, file, key, classes)
    written = module.parse(tmp_path)
    assert [w.char for w in written] == ["7", "7", "7", "x"]
    assert [len(w.strokes) for w in written] == [1, 2, 1, 1]
    np.testing.assert_array_equal(written[1].strokes[1], [[5, 10]])
    writers = [w.writer for w in written]
    expected = {
        uji_pen2_digits: ["w00", "w00", "w01", "w00"],  # sample i is writer i // 2
        chars74k_hnd: ["v00", "v01", "v02", "v00"],  # sample i is volunteer i
        numberpad_bridger: ["bridger"] * 4,
    }[module]
    assert writers == expected


@pytest.mark.parametrize(("module", "file", "key"), JSON_SOURCES)
@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{not json", "cannot be read as a"),
        ('{"rawData": [1, 2]}', "cannot be read as a"),
        ('{"rawData": {"7": [[[[1, 2, 3]]]]}, "7": [[[[1, 2, 3]]]]}', "cannot be read as a"),
        ('{"rawData": {"7": [[[]]]}, "7": [[[]]]}', r"7\[0\] has no points"),
    ],
)
def test_json_sources_corrupt_file_names_the_file(
    tmp_path: Path, module, file: str, key, content: str, complaint: str
) -> None:
    path = tmp_path / file
    path.write_text(content)
    with pytest.raises(DataError, match=complaint) as caught:
        module.parse(tmp_path)
    assert str(path) in str(caught.value)


# Scans ---------------------------------------------------------------------------------------


def _bitmap(ink_rows: range) -> list[str]:
    return ["0" * 12 + ("1" * 8 if row in ink_rows else "0" * 8) + "0" * 12 for row in range(32)]


def test_optdigits_skips_the_header_and_reads_bitmaps(tmp_path: Path) -> None:
    path = tmp_path / "optdigits-orig.windep"
    lines = ["BU handwritten digit database", "entwidth = 32", "ntot = 2"]
    lines += [*_bitmap(range(4, 28)), " 1", *_bitmap(range(10, 20)), " 0", "EOF"]
    path.write_text("\n".join(lines) + "\n")
    one, zero = optdigits_orig.parse_file(path, "test")
    assert (one.char, zero.char, one.split, one.writer) == ("1", "0", "test", "")
    paper = np.asarray(one.picture)
    margin = _render.SCAN_MARGIN
    assert paper.shape == (32 + 2 * margin, 32 + 2 * margin)
    assert paper[margin + 4, margin + 12] == 0
    assert paper[margin + 2, margin + 12] == 255


@pytest.mark.parametrize(
    ("tail", "complaint"),
    [
        ([*_bitmap(range(4, 28))[:31], " 1"], "expected 32 rows"),
        ([*_bitmap(range(4, 28)), " 12"], "line 33: expected a digit label"),
    ],
)
def test_optdigits_corrupt_file_names_file_and_line(
    tmp_path: Path, tail: list[str], complaint: str
) -> None:
    path = tmp_path / "optdigits-orig.tra"
    path.write_text("\n".join(tail) + "\n")
    with pytest.raises(DataError, match=complaint) as caught:
        optdigits_orig.parse_file(path, "train")
    assert str(path) in str(caught.value)


def test_optdigits_without_a_bitmap(tmp_path: Path) -> None:
    path = tmp_path / "optdigits-orig.tra"
    path.write_text("header only\n")
    with pytest.raises(DataError, match="no 32x32 bitmap"):
        optdigits_orig.parse_file(path, "train")


def _usps_line(label: int, ink_rows: range) -> str:
    pixels = np.full((16, 16), -1.0)
    pixels[list(ink_rows), 6:10] = 1.0
    return " ".join([f"{label}.0000", *(f"{v:.4f}" for v in pixels.ravel())])


def test_usps_reads_labels_and_grey_as_ink(tmp_path: Path) -> None:
    path = tmp_path / "zip.test.gz"
    with gzip.open(path, "wt") as out:
        out.write(_usps_line(1, range(1, 15)) + "\n" + _usps_line(0, range(4, 12)) + "\n")
    one, zero = usps.parse_file(path, "test")
    assert (one.char, zero.char, one.split) == ("1", "0", "test")
    paper = np.asarray(one.picture)
    margin = _render.SCAN_MARGIN
    assert paper[margin + 1, margin + 6] == 0  # +1 is full ink: black on the paper
    assert paper[margin, margin] == 255  # -1 is background


@pytest.mark.parametrize(
    "content",
    [b"not gzip at all", gzip.compress(b"1.0 0.5 0.5\n"), gzip.compress(b"11.0 " + b"-1 " * 256)],
)
def test_usps_corrupt_file_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "zip.train.gz"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        usps.parse_file(path, "train")
    assert str(path) in str(caught.value)


def test_hwd_reads_the_table_and_its_pngs(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    canvas = np.full((28, 28), 255, np.uint8)
    canvas[5:23, 12:15] = 0
    Image.fromarray(canvas).save(tmp_path / "img" / "1-001.png")
    (tmp_path / "dataset.csv").write_text("image,label\nimg/1-001.png,1\n")
    (one,) = hwd_1000.parse(tmp_path)
    assert (one.char, one.writer, one.split) == ("1", "", "train")
    np.testing.assert_array_equal(np.asarray(one.picture), canvas)


@pytest.mark.parametrize(
    ("table", "png", "complaint"),
    [
        ("image,label\nimg/1-001.png,one\n", b"", "dataset.csv, line 2"),
        ("image,label\nimg/1-001.png,1\n", b"\x89PNG broken", "1-001.png: not a readable image"),
        ("image,label\nimg/9-001.png,9\n", b"", "9-001.png: no such file"),
    ],
)
def test_hwd_bad_rows_and_images_name_the_file(
    tmp_path: Path, table: str, png: bytes, complaint: str
) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "1-001.png").write_bytes(png)
    (tmp_path / "dataset.csv").write_text(table)
    with pytest.raises(DataError, match=complaint):
        hwd_1000.parse(tmp_path)


# Rendering -----------------------------------------------------------------------------------


def _two_bars() -> tuple[np.ndarray, ...]:
    """Two vertical strokes far apart: a drawn pen-up move would cross the gap diagonally."""
    return (np.array([[0.0, 0.0], [0.0, 100.0]]), np.array([[100.0, 0.0], [100.0, 100.0]]))


def test_pen_up_moves_are_not_drawn() -> None:
    picture = np.asarray(_render.trajectory_image(_two_bars(), np.random.default_rng(3)))
    background = picture[0, 0]
    middle = picture[:, picture.shape[1] // 2]
    assert np.abs(middle.astype(int) - int(background)).max() < 30


def test_rendering_is_seeded_per_sample_and_varies_pen_and_paper() -> None:
    strokes = _two_bars()
    first = np.asarray(_render.trajectory_image(strokes, np.random.default_rng(7)))
    again = np.asarray(_render.trajectory_image(strokes, np.random.default_rng(7)))
    np.testing.assert_array_equal(first, again)
    pictures = [
        np.asarray(_render.trajectory_image(strokes, np.random.default_rng(seed)))
        for seed in range(40)
    ]
    backgrounds = {int(p[0, 0]) for p in pictures}
    assert 255 in backgrounds
    assert any(b < 240 for b in backgrounds)
    widths = {int((p[p.shape[0] // 2] < 128).sum()) for p in pictures}
    assert len(widths) > 5  # pens of many widths
    assert all(p.min() < 100 for p in pictures)  # dark ink every time


def test_a_stroke_that_never_moves_is_a_dot() -> None:
    picture = np.asarray(
        _render.trajectory_image((np.array([[3.0, 3.0]]),), np.random.default_rng(0))
    )
    assert picture.min() < 100


def test_render_makes_mnist_like_images_and_labels() -> None:
    source = Source("tiny", "", "", "", "", "", "", "", {}, "trajectories", 1, 1)
    written = [
        Written("1", "a", "train", strokes=(np.array([[0.0, 0.0], [0.0, 100.0]]),)),
        Written("x", "b", "test", strokes=_two_bars()),
    ]
    samples = _core.render(source, written)
    assert samples.images.shape == (2, 28, 28)
    assert samples.images.dtype == np.uint8
    assert samples.labels.tolist() == [1, -1]
    assert samples.labels.dtype == np.int64
    assert samples.chars.tolist() == ["1", "x"]
    assert samples.writers.tolist() == ["a", "b"]
    assert samples.split.tolist() == ["train", "test"]
    # White ink on black, the digit in the middle as MNIST has it.
    assert samples.images[:, 0, :].max() == 0
    assert samples.images[0, 14, 13:16].max() > 200


def test_select_keeps_the_fields_together() -> None:
    source = Source("tiny", "", "", "", "", "", "", "", {}, "trajectories", 2)
    bar = (np.array([[0.0, 0.0], [0.0, 100.0]]),)
    samples = _core.render(
        source, [Written(str(d), f"w{d}", "train", strokes=bar) for d in (3, 5, 8)]
    )
    chosen = samples.select(samples.labels > 4)
    assert chosen.labels.tolist() == [5, 8]
    assert chosen.writers.tolist() == ["w5", "w8"]
    assert len(chosen) == 2
    assert len(chosen.images) == 2
    assert chosen.source == "tiny"


# Checksums, folders, the cache and downloads -------------------------------------------------


def _tiny_source(folder: Path, base_url: str = "") -> Source:
    """A one-file source whose file (made here in `folder`) and checksum agree."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bars.json"
    path.write_text(
        json.dumps(
            {
                "1": [[[[0, 0], [0, 100]]], [[[0, 0], [1, 90]]]],
                "+": [[[[0, 50], [80, 50]], [[40, 0], [40, 90]]]],
            }
        )
    )
    return Source(
        name="tiny",
        title="Tiny",
        creators="the test",
        licence="CC0",
        licence_note="",
        homepage="https://example.invalid/tiny",
        how_written="test: trajectories",
        writers_note="",
        files={"bars.json": _sha256(path)},
        kind="trajectories",
        digits=2,
        others=1,
        downloads={"bars.json": f"{base_url}/bars.json"},
    )


def _parse_bars(folder: Path) -> list[Written]:
    from handwritten.sources._json import read_classes, strokes_of

    path = folder / "bars.json"
    classes = read_classes(path, "tiny")
    return [
        Written(char, "", "train", strokes_of(sample, path, "tiny", char))
        for char in classes
        for sample in classes[char]
    ]


def test_load_verifies_renders_then_reads_the_cache(tmp_path: Path) -> None:
    source = _tiny_source(tmp_path / "writers" / "tiny")
    samples = _core.load_source(source, _parse_bars, tmp_path / "writers")
    assert samples.chars.tolist() == ["1", "1", "+"]
    cached = _core.cache_path(source)
    assert cached.is_file()
    assert cached.parent == tmp_path / "cache" / "handwritten" / "rendered"

    def no_parsing(folder: Path) -> list[Written]:
        raise AssertionError("the cache should have been read")

    again = _core.load_source(source, no_parsing, tmp_path / "writers")
    np.testing.assert_array_equal(again.images, samples.images)
    assert again.chars.tolist() == samples.chars.tolist()


def test_a_corrupt_cache_is_rendered_again(tmp_path: Path) -> None:
    source = _tiny_source(tmp_path / "tiny")
    first = _core.load_source(source, _parse_bars, tmp_path / "tiny")
    _core.cache_path(source).write_bytes(b"PK\x03\x04 truncated")
    again = _core.load_source(source, _parse_bars, tmp_path / "tiny")
    np.testing.assert_array_equal(again.images, first.images)
    assert _core.read_cache(source) is not None


def test_cache_name_changes_with_files_and_versions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = _tiny_source(tmp_path / "tiny")
    before = _core.cache_path(source)
    other = Source(**{**source.__dict__, "files": {"bars.json": "0" * 64}})
    assert _core.cache_path(other) != before
    monkeypatch.setattr(_core, "RENDER_VERSION", _core.RENDER_VERSION + 1)
    assert _core.cache_path(source) != before


def test_wrong_checksum_is_refused_naming_the_file(tmp_path: Path) -> None:
    source = _tiny_source(tmp_path / "tiny")
    (tmp_path / "tiny" / "bars.json").write_text('{"1": []}')
    with pytest.raises(DataError, match="corrupt or not the original tiny file") as caught:
        _core.load_source(source, _parse_bars, tmp_path / "tiny")
    message = str(caught.value)
    assert str(tmp_path / "tiny" / "bars.json") in message
    assert "replace it with the original file (https://example.invalid/tiny)" in message
    assert _core.checksum_state(source, tmp_path / "tiny") == "mismatch: bars.json"


def test_real_source_with_a_wrong_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "pendigits"
    folder.mkdir()
    (folder / "pendigits-orig.tra").write_text(PENDIGITS)
    (folder / "pendigits-orig.tes").write_text(PENDIGITS)
    with pytest.raises(DataError, match=r"pendigits-orig\.tra is corrupt or not the original"):
        sources.load("pendigits", tmp_path)
    assert sources.status("pendigits", tmp_path)["checksums"] == "mismatch: pendigits-orig.tra"


def test_chosen_folder_missing_files_is_an_error_never_a_download(tmp_path: Path) -> None:
    (tmp_path / "usps").mkdir()
    with pytest.raises(DataError) as caught:
        sources.load("usps", tmp_path)
    message = str(caught.value)
    assert f"{tmp_path / 'usps'} lacks zip.train.gz, zip.test.gz" in message
    assert sources.WRITERS_DIR_ENV in message
    assert sources.status("usps", tmp_path)["checksums"] == "missing"
    assert list((tmp_path / "usps").iterdir()) == []


def test_writers_dir_may_be_the_source_folder_itself(tmp_path: Path) -> None:
    source = _tiny_source(tmp_path / "somewhere")
    assert _core.locate(source, tmp_path / "somewhere") == (tmp_path / "somewhere", True)
    (tmp_path / "tiny").mkdir()
    assert _core.locate(source, tmp_path) == (tmp_path / "tiny", True)


def test_folder_order_argument_then_environment_then_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = _tiny_source(tmp_path / "made")
    assert _core.locate(source, None) == (
        tmp_path / "cache" / "handwritten" / "writers" / "tiny",
        False,
    )
    monkeypatch.setenv(sources.WRITERS_DIR_ENV, str(tmp_path / "env"))
    assert _core.locate(source, None) == (tmp_path / "env", True)
    assert _core.locate(source, tmp_path / "arg") == (tmp_path / "arg", True)


def test_unknown_source_lists_the_known_ones() -> None:
    with pytest.raises(
        DataError, match="no source named 'emnist'; the sources are mnist, pendigits"
    ):
        sources.get("emnist")
    with pytest.raises(DataError, match="no source named"):
        sources.load("emnist")


def test_every_source_is_described_and_verifiable() -> None:
    assert sources.names()[0] == "mnist"
    assert len(sources.names()) == 9
    for name in sources.names():
        source = sources.get(name)
        assert source.name == name
        assert source.kind in ("trajectories", "scans")
        assert source.licence
        assert source.creators
        assert source.homepage.startswith("http")
        assert source.files
        assert all(len(digest) == 64 for digest in source.files.values())
        assert set(source.downloads) == set(source.files)
        assert all(url.startswith("https://") for url in source.downloads.values())


def test_mnist_checksum_state(tmp_path: Path) -> None:
    assert data.checksum_state(tmp_path) == "missing"
    for name in data.IDX_FILES.values():
        (tmp_path / name).write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x00")
    assert data.checksum_state(tmp_path).startswith("mismatch: ")


def test_sources_import_without_tensorflow() -> None:
    code = (
        "import sys; from handwritten import sources; sources.names(); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A real HTTP server on 127.0.0.1 serving a folder the test fills; it records requests."""
    root = tmp_path / "served"
    root.mkdir()
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    yield f"http://{host}:{port}", root, requests
    httpd.shutdown()
    httpd.server_close()


def test_download_once_into_the_cache_then_verify(server, tmp_path: Path) -> None:
    url, root, requests = server
    source = _tiny_source(root, url)
    samples = _core.load_source(source, _parse_bars)
    cached = tmp_path / "cache" / "handwritten" / "writers" / "tiny" / "bars.json"
    assert cached.read_bytes() == (root / "bars.json").read_bytes()
    assert samples.chars.tolist() == ["1", "1", "+"]
    _core.load_source(source, _parse_bars)
    assert requests == ["/bars.json"]


def test_a_corrupt_download_is_refused_and_leaves_nothing(server, tmp_path: Path) -> None:
    url, root, _ = server
    source = _tiny_source(root, url)
    (root / "bars.json").write_text('{"1": []}')
    with pytest.raises(
        DataError, match=r"could not download .*bars.json from http://127.0.0.1.*SHA-256 is"
    ):
        _core.load_source(source, _parse_bars)
    folder = tmp_path / "cache" / "handwritten" / "writers" / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]


def test_an_unreachable_home_says_what_to_do(server, tmp_path: Path) -> None:
    url, root, _ = server
    source = _tiny_source(root, url + "/nowhere")
    with pytest.raises(DataError) as caught:
        _core.load_source(source, _parse_bars)
    message = str(caught.value)
    assert "404" in message
    assert sources.MIRROR_ENV in message
    assert sources.WRITERS_DIR_ENV in message


def test_the_mirror_setting_replaces_the_public_homes(
    server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, root, requests = server
    source = _tiny_source(tmp_path / "made", "https://example.invalid")
    (root / "tiny").mkdir()
    (root / "tiny" / "bars.json").write_bytes((tmp_path / "made" / "bars.json").read_bytes())
    monkeypatch.setenv(sources.MIRROR_ENV, url + "/")
    assert _core.load_source(source, _parse_bars).chars.tolist() == ["1", "1", "+"]
    assert requests == ["/tiny/bars.json"]


def test_a_cache_that_cannot_be_made_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("the cache folder's parent is a file")
    monkeypatch.setenv("XDG_CACHE_HOME", str(in_the_way))
    with pytest.raises(DataError, match=f"cannot write usps into {in_the_way}/") as caught:
        sources.load("usps")
    assert sources.WRITERS_DIR_ENV in str(caught.value)


@pytest.mark.parametrize("name", sources.names())
def test_a_cards_credit_of_a_source_is_its_licence_home_and_files(name: str) -> None:
    source = sources.get(name)
    credit = sources.credit(name)
    assert credit["name"] == name
    assert credit["licence"] == source.licence
    assert credit["creators"] == source.creators
    assert credit["homepage"] == source.homepage
    if len(source.files) <= sources.LISTED_FILES:
        assert credit["sha256"] == dict(source.files)
        assert all(len(digest) == 64 for digest in credit["sha256"].values())
    else:
        listed = resources.files(sources).joinpath("checksums", f"{name}.sha256").read_bytes()
        assert credit["files"] == len(source.files)
        assert credit["checksum_list_sha256"] == hashlib.sha256(listed).hexdigest()
    assert credit.get("licence_note") == (source.licence_note or None)


def test_a_source_of_many_files_is_credited_by_the_sha256_of_its_checksum_list() -> None:
    few = {f"f{i}.dat": f"{i:064x}" for i in range(sources.LISTED_FILES)}
    many = {**few, "a.dat": "f" * 64}
    listing = "".join(f"{digest}  {path}\n" for path, digest in sorted(many.items()))

    assert sources.checksums_credit(few) == {"sha256": few}
    assert sources.checksums_credit(many) == {
        "files": sources.LISTED_FILES + 1,
        "checksum_list_sha256": hashlib.sha256(listing.encode()).hexdigest(),
    }
    changed = {**many, "a.dat": "e" * 64}
    assert sources.checksums_credit(changed) != sources.checksums_credit(many)
