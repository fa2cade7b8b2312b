"""Integration tests: the real collections in ../shared/writers (HANDWRITTEN_WRITERS_DIR),
loaded through the sources API, against the counts each SOURCE.md gives, and read by the
shipped seed model, which learnt MNIST alone, as a check that the renderings are digits the
right way up (the cnn and the lean learnt from these renderings, so they cannot check them).

The first run renders every source (about a minute and a half here) into the user's cache;
later runs read the cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_DIR

from handwritten import sources
from handwritten.cli import main
from handwritten.sources import _core

MNIST = ["--data-dir", str(MNIST_DIR)]

pytestmark = pytest.mark.integration

WRITERS = [name for name in sources.names() if name != "mnist"]

PER_DIGIT = {
    "pendigits": [1143, 1143, 1144, 1055, 1144, 1055, 1056, 1142, 1055, 1055],
    "unipen-1a": [1646, 1748, 1653, 1591, 1626, 1522, 1518, 1546, 1558, 1545],
    "uji-pen2-digits": [120] * 10,
    "chars74k-hnd": [55] * 10,
    "numberpad-bridger": [74, 75, 77, 83, 106, 77, 87, 77, 85, 81],
    "optdigits-orig": [454, 477, 464, 467, 481, 477, 463, 476, 445, 473],
    "usps": [1553, 1269, 929, 824, 852, 716, 834, 792, 708, 821],
    "hwd-1000": [100] * 10,
}
"""Digits per class, from each SOURCE.md (sums of its per-file tables)."""

TEST_SPLIT = {"pendigits": 3498, "optdigits-orig": 1797, "usps": 2007}
"""The published test files' sizes; every other source has no test split."""

OTHERS = {
    "chars74k-hnd": {chr(c) for c in range(ord("A"), ord("Z") + 1)}
    | {chr(c) for c in range(ord("a"), ord("z") + 1)},
    "numberpad-bridger": set("+-/?^ex"),
}

READ_FLOOR = 0.8
"""The shipped seed model reads 84-99% of each source's sample (27-44% turned over); far
below, the rendering is wrong (upside down, mirrored, empty) rather than the writers
unusual."""
READ_SAMPLE = 300


@pytest.fixture(scope="module")
def loaded() -> dict[str, sources.Samples]:
    return {name: sources.load(name) for name in WRITERS}


@pytest.mark.parametrize("name", WRITERS)
def test_counts_per_digit_match_the_source(loaded, name: str) -> None:
    samples = loaded[name]
    digits = samples.labels[samples.labels >= 0]
    assert np.bincount(digits, minlength=10).tolist() == PER_DIGIT[name]
    assert sources.get(name).digits == len(digits)


@pytest.mark.parametrize("name", WRITERS)
def test_fields_agree(loaded, name: str) -> None:
    samples = loaded[name]
    assert samples.source == name
    assert samples.images.shape == (len(samples), 28, 28)
    assert samples.images.dtype == np.uint8
    assert samples.labels.dtype == np.int64
    assert set(np.unique(samples.labels)) <= set(range(-1, 10))
    is_digit = np.char.isdigit(samples.chars) & (np.char.str_len(samples.chars) == 1)
    np.testing.assert_array_equal(samples.labels >= 0, is_digit)
    np.testing.assert_array_equal(samples.labels[is_digit], samples.chars[is_digit].astype(int))
    assert set(samples.chars[~is_digit].tolist()) == OTHERS.get(name, set())
    assert len(samples.chars[~is_digit]) == sources.get(name).others
    assert (samples.images.reshape(len(samples), -1).max(axis=1) == 255).all()  # never empty
    assert set(samples.split.tolist()) <= {"train", "test"}
    assert np.count_nonzero(samples.split == "test") == TEST_SPLIT.get(name, 0)


@pytest.mark.parametrize("name", WRITERS)
def test_writer_ids_where_the_source_has_them(loaded, name: str) -> None:
    samples = loaded[name]
    expected = sources.get(name).writer_ids
    ids = set(samples.writers.tolist())
    if expected is None:
        assert ids == {""}
    else:
        assert "" not in ids
        assert len(ids) == expected


def test_pendigits_train_and_test_writers_are_different_people(loaded) -> None:
    samples = loaded["pendigits"]
    train = set(samples.writers[samples.split == "train"].tolist())
    test = set(samples.writers[samples.split == "test"].tolist())
    assert (len(train), len(test)) == (30, 14)
    assert not train & test


def test_uji_writers_wrote_each_digit_twice(loaded) -> None:
    samples = loaded["uji-pen2-digits"]
    for writer in np.unique(samples.writers):
        assert (
            np.bincount(samples.labels[samples.writers == writer], minlength=10).tolist()
            == [2] * 10
        )


@pytest.fixture(scope="module")
def mnist_only_model():
    from handwritten import api

    return api.load("seed")


@pytest.mark.parametrize("name", WRITERS)
def test_a_model_that_never_saw_them_reads_the_renderings(
    loaded, mnist_only_model, name: str
) -> None:
    samples = loaded[name]
    digits = np.flatnonzero(samples.labels >= 0)
    chosen = np.random.default_rng(0).permutation(digits)[:READ_SAMPLE]
    read = mnist_only_model.probabilities(samples.images[chosen])[:, :10].argmax(axis=1)
    assert (read == samples.labels[chosen]).mean() >= READ_FLOOR


def test_it_reads_little_of_the_same_digits_upside_down(loaded, mnist_only_model) -> None:
    """The floor above can fail: turned over, the same renderings read far worse."""
    samples = loaded["pendigits"]
    chosen = np.random.default_rng(0).permutation(len(samples))[:READ_SAMPLE]
    flipped = samples.images[chosen][:, ::-1, :]
    read = mnist_only_model.probabilities(flipped)[:, :10].argmax(axis=1)
    assert (read == samples.labels[chosen]).mean() < READ_FLOOR - 0.3


@pytest.mark.parametrize("name", sources.names())
def test_status_verified(name: str) -> None:
    status = sources.status(name, MNIST[1] if name == "mnist" else None)
    assert status["checksums"] == "verified"
    assert status["digits"] == sources.get(name).digits
    assert status["licence"] == sources.get(name).licence


def test_sources_verb_lists_every_source_verified(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sources", "--json", *MNIST]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["name"] for row in rows] == sources.names()
    assert {row["checksums"] for row in rows} == {"verified"}
    assert main(["sources", *MNIST]) == 0
    table = capsys.readouterr().out
    assert "unipen-1a" in table
    assert "research use only" in table


def test_sources_verb_shows_what_is_missing(tmp_path: Path, capsys) -> None:
    assert main(["sources", "--writers-dir", str(tmp_path), "--json", *MNIST]) == 0
    rows = {row["name"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {rows[name]["checksums"] for name in WRITERS} == {"missing"}
    assert rows["mnist"]["checksums"] == "verified"


def test_preview_draws_a_grid_per_source(tmp_path: Path, loaded, capsys) -> None:
    assert main(["sources", "--preview", str(tmp_path), *MNIST]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in sources.names())
    assert f"saved {tmp_path / 'usps.png'}" in capsys.readouterr().out


def test_download_from_a_mirror_matches_the_shared_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loaded
) -> None:
    """A user's first load: fetched from a mirror (a local server holding the real file),
    verified, rendered into an empty cache, and the same as loading ../shared."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    name = "numberpad-bridger"
    served = tmp_path / "served" / name
    served.mkdir(parents=True)
    for file in sources.get(name).files:
        shutil.copy(Path(_core.locate(sources.get(name), None)[0]) / file, served / file)
    quiet = type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    handler = functools.partial(quiet, directory=str(tmp_path / "served"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv(sources.WRITERS_DIR_ENV)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.setenv(sources.MIRROR_ENV, f"http://127.0.0.1:{httpd.server_address[1]}")
        assert sources.status(name)["checksums"] == "missing"
        fresh = sources.load(name)
        assert sources.status(name)["checksums"] == "verified"
    finally:
        httpd.shutdown()
        httpd.server_close()
    np.testing.assert_array_equal(fresh.images, loaded[name].images)
    np.testing.assert_array_equal(fresh.chars, loaded[name].chars)
