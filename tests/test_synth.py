"""The number-image generator: unit tests on a bank of digits typed here, one integration test
through the CLI on a real source, scored by `evaluate --numbers`."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from handwritten import api, synth
from handwritten.cli import main
from handwritten.errors import DataError
from handwritten.evaluate import character_error_rate, edit_distance
from handwritten.sources import Samples


def typed_bank(copies: int = 3) -> synth.DigitBank:
    """Digits typed in OpenCV's fonts as white ink on black 28x28, like the sources' images;
    each copy by its own "writer"."""
    images, labels, writers = [], [], []
    for copy in range(copies):
        for digit in range(10):
            image = np.zeros((28, 28), np.uint8)
            cv2.putText(image, str(digit), (6, 23), copy % 3, 0.9, 255, 2, cv2.LINE_AA)
            images.append(image)
            labels.append(digit)
            writers.append(f"typed:{copy}")
    return synth.DigitBank(np.stack(images), np.array(labels), np.array(writers))


def read_labels(folder: Path) -> list[dict[str, str]]:
    with open(folder / "labels.csv", newline="") as table:
        return list(csv.DictReader(table))


def test_writes_images_and_their_labels(tmp_path: Path) -> None:
    made = synth.write_numbers(12, tmp_path / "set", typed_bank(), seed=3)
    rows = read_labels(tmp_path / "set")
    assert made.images == 12
    assert len(rows) == 12
    assert {p.name for p in (tmp_path / "set").iterdir()} == {r["file"] for r in rows} | {
        "labels.csv"
    }
    for row in rows:
        assert row["label"].isdigit()
        assert 1 <= len(row["label"]) <= synth.MAX_DIGITS
        with Image.open(tmp_path / "set" / row["file"]) as image:
            assert image.mode == "RGB"
            assert min(image.size) >= 8
    # Labels are quoted text, so a leading zero survives any CSV reader.
    assert '"file","label"' in (tmp_path / "set" / "labels.csv").read_text().splitlines()[0]


def test_the_same_seed_makes_the_same_images_and_another_seed_others(tmp_path: Path) -> None:
    bank = typed_bank()
    synth.write_numbers(5, tmp_path / "a", bank, seed=11)
    synth.write_numbers(5, tmp_path / "b", bank, seed=11)
    synth.write_numbers(5, tmp_path / "c", bank, seed=12)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files
    )
    assert read_labels(tmp_path / "a") != read_labels(tmp_path / "c")


def test_image_i_does_not_depend_on_how_many_are_made() -> None:
    bank = typed_bank()
    few = list(synth.number_images(bank, 3, seed=5))
    more = list(synth.number_images(bank, 6, seed=5))
    for one, other in zip(few, more[:3], strict=True):
        assert one.label == other.label
        assert np.array_equal(one.image, other.image)


def test_every_length_and_every_digit_occurs() -> None:
    rng = np.random.default_rng(0)
    labels = [synth.random_label(rng) for _ in range(3000)]
    assert {len(label) for label in labels} == set(range(1, synth.MAX_DIGITS + 1))
    assert set("".join(labels)) == set("0123456789")
    assert sum(label.startswith("0") for label in labels) > 100  # leading zeros are made


@pytest.mark.parametrize("scene", synth.SCENES)
def test_the_number_is_inside_its_box_and_darker_than_the_paper(scene: str, monkeypatch) -> None:
    """In every kind of scene the box holds the number: its darkest pixels are ink, and
    the box lies within the image."""
    monkeypatch.setattr(synth, "SCENE_WEIGHTS", tuple(float(s == scene) for s in synth.SCENES))
    for index in range(6):
        made = synth.compose(typed_bank(), np.random.default_rng([1, index]), label="4071")
        assert made.scene == scene
        assert made.label == "4071"
        height, width = made.image.shape[:2]
        left, top, right, bottom = made.box
        assert 0 <= left < right <= width
        assert 0 <= top < bottom <= height
        gray = made.image.mean(axis=2)
        inside = gray[top:bottom, left:right]
        # Ink stands out from the paper around it in the box (dark on light, or light on dark).
        assert inside.max() - inside.min() > 40


def test_one_writer_writes_the_whole_number_when_they_wrote_every_digit() -> None:
    bank = typed_bank(copies=4)
    for index in range(20):
        chosen = synth._choose_samples(bank, "90210", np.random.default_rng(index))
        assert len({bank.writers[i] for i in chosen}) == 1
        assert [int(bank.labels[i]) for i in chosen] == [9, 0, 2, 1, 0]


def test_each_image_names_the_bank_digits_it_wrote() -> None:
    bank = typed_bank()
    for made in synth.number_images(bank, 12, seed=5):
        assert "".join(str(bank.labels[i]) for i in made.samples) == made.label


class MisreadsSevens:
    """Reads a typed bank's digits by looking them up, except that it calls every 7 a 1."""

    def __init__(self, bank: synth.DigitBank) -> None:
        pairs = zip(bank.images, bank.labels, strict=True)
        self.known = {image.tobytes(): int(label) for image, label in pairs}

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        read = [self.known[image.tobytes()] for image in images]
        return np.eye(10)[[1 if digit == 7 else digit for digit in read]]


def test_digits_alone_counts_the_numbers_whose_every_digit_is_read_alone(monkeypatch) -> None:
    bank = typed_bank()
    monkeypatch.setattr(synth, "load_bank", lambda *args: bank)
    labels = [made.label for made in synth.number_images(bank, 30, seed=9)]

    alone = api.digits_alone(MisreadsSevens(bank), 30, seed=9)

    assert alone == {
        "images": 30,
        "every_digit_read": sum("7" not in label for label in labels),
        "digits": sum(map(len, labels)),
        "digits_read": sum(len(label) - label.count("7") for label in labels),
    }
    assert 0 < alone["every_digit_read"] < 30


def test_a_folder_with_files_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "old.png").write_bytes(b"")
    with pytest.raises(DataError, match=str(tmp_path)):
        synth.write_numbers(2, tmp_path, typed_bank())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]


def test_sources_without_some_digit_are_refused() -> None:
    bank = typed_bank()
    keep = bank.labels != 7
    with pytest.raises(DataError, match="no 7"):
        synth.DigitBank(bank.images[keep], bank.labels[keep], bank.writers[keep])


def test_the_bank_holds_only_training_digits(monkeypatch) -> None:
    """A source's test split and its characters that are not digits are left out."""
    bank = typed_bank(copies=3)
    split = np.array(["train"] * 20 + ["test"] * 10)
    labels = bank.labels.copy()
    labels[3] = -1
    fake = Samples("fake", bank.images, labels, labels.astype(str), bank.writers, split)
    monkeypatch.setattr("handwritten.sources.load", lambda name, data_dir=None: fake)
    loaded = synth.load_bank(["fake"])
    assert len(loaded.labels) == 19
    assert set(loaded.writers.tolist()) == {"fake:typed:0", "fake:typed:1"}


def test_cli_makes_a_set_that_evaluate_scores(tmp_path: Path, capsys) -> None:
    """`synth numbers` from a real source, then `evaluate --numbers` on what it wrote."""
    folder = tmp_path / "made"
    assert main(["synth", "numbers", "6", str(folder), "--seed", "2", "--sources", "hwd-1000"]) == 0
    assert "saved 6 images" in capsys.readouterr().out
    assert len(read_labels(folder)) == 6
    assert main(["evaluate", "--numbers", str(folder), "--model", "seed"]) == 0
    out = capsys.readouterr().out
    assert "of 6 read right" in out
    assert "character error rate" in out


def test_cli_names_an_unknown_source(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["synth", "numbers", "2", str(tmp_path / "x"), "--sources", "mnist,nope"])
    assert "unknown source nope" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("read", "truth", "distance"),
    [
        ("", "", 0),
        ("1234", "1234", 0),
        ("", "123", 3),
        ("1?00", "1000", 1),  # one replaced
        ("92", "921", 1),  # one lost at the end
        ("0789", "6789", 1),
        ("16?43", "176544322", 5),  # 1 replaced, 4 lost
        ("21", "12", 2),
        ("kitten", "sitting", 3),
    ],
)
def test_edit_distance(read: str, truth: str, distance: int) -> None:
    assert edit_distance(read, truth) == distance
    assert edit_distance(truth, read) == distance


def test_character_error_rate_sums_edits_over_the_whole_set() -> None:
    # 1 edit + 3 (nothing read: the whole label) + 0, over 4 + 3 + 2 characters.
    assert character_error_rate(["1?00", None, "12"], ["1000", "921", "12"]) == pytest.approx(4 / 9)
    assert character_error_rate(["12"], ["12"]) == 0.0


def test_evaluate_numbers_reports_the_character_error_rate(tmp_path: Path, seed_model) -> None:
    made = synth.write_numbers(8, tmp_path, typed_bank(), seed=4)
    result = api.evaluate_numbers(made.folder, seed_model)
    read = [r.number for r in api.read_numbers(sorted(tmp_path.glob("0*")), seed_model)]
    labels = [row["label"] for row in read_labels(tmp_path)]
    assert result["cer"] == pytest.approx(character_error_rate(read, labels))
    assert result["accuracy"] == sum(r == t for r, t in zip(read, labels, strict=True)) / 8
    for miss in result["wrong"]:
        assert miss["edits"] == edit_distance(miss["read"] or "", miss["label"]) > 0


@pytest.mark.parametrize("scene", ["line", "cell", "photo"])
def test_the_camera_never_turns_ink_out_of_the_frame(scene: str) -> None:
    """A number filling its crop to within two pixels: a turn or tilt that would push some
    of it out of the image is not made, so the label never names digits the image lost."""
    paper = np.full((100, 400, 3), 255.0, np.float32)
    paper[2:98, 2:12] = paper[2:98, 388:398] = 0.0  # a 1 at each end, up to the box's edges
    box = (2, 2, 398, 98)
    before = np.count_nonzero(paper[..., 0] < 128)
    for seed in range(20):
        image, moved = synth._camera(paper.copy(), box, scene, np.random.default_rng(seed))
        after = np.count_nonzero(image[..., 0] < 128)
        assert after >= 0.97 * before, (seed, moved)
