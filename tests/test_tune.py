"""`handwritten tune`: reading a person's tree of drawings, refusing what is not one, and a
few real training steps on real MNIST from the shipped models (few, so it stays quick)."""

from __future__ import annotations

import logging
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_DIR
from PIL import Image

from handwritten import models, registry
from handwritten.cli import main
from handwritten.errors import DataError, HandwrittenError
from handwritten.runtime import sha256_of

PER_DIGIT = 2
STEPS = 4


@pytest.fixture
def tree(tmp_path: Path, user_digits: list[tuple[Path, int]]) -> Path:
    """20 people's drawings, two of each digit, as DIR/<digit>/<file>."""
    root = tmp_path / "mine"
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True)
        for path in [path for path, label in user_digits if label == digit][:PER_DIGIT]:
            shutil.copy(path, root / str(digit) / path.name)
    return root


@pytest.fixture
def messy_tree(tree: Path) -> tuple[Path, list[Path]]:
    """The tree with one of each kind of thing tune cannot learn from, and those things."""
    blank, broken = tree / "3" / "blank.png", tree / "5" / "broken.png"
    Image.new("L", (64, 64), 255).save(blank)
    broken.write_bytes(b"not a png")
    (tree / "seven").mkdir()
    stray = tree / "stray.png"
    shutil.copy(blank, stray)
    return tree, [blank, broken, tree / "seven", stray]


def test_a_tree_is_read_and_each_bad_file_named(messy_tree: tuple[Path, list[Path]]) -> None:
    from handwritten.tune import read_drawings

    tree, bad = messy_tree
    drawings = read_drawings(tree)

    assert drawings.images.shape == (10 * PER_DIGIT, 28, 28)
    assert drawings.per_digit() == {str(digit): PER_DIGIT for digit in range(10)}
    assert len(drawings.skipped) == len(bad)
    for path in bad:
        assert any(problem.startswith(f"{path}:") for problem in drawings.skipped), path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root, "not a folder;"),
        (lambda root: (root.mkdir(), (root / "a.png").write_bytes(b"x")), "not a folder-per-digit"),
        (lambda root: [(root / d).mkdir(parents=True) for d in "07"], "hold no images"),
        (
            lambda root: (
                (root / "4").mkdir(parents=True),
                (root / "4" / "a.png").write_bytes(b""),
            ),
            "none of the images",
        ),
    ],
    ids=["missing", "flat", "empty", "unusable"],
)
def test_what_is_not_a_tree_of_drawings_is_refused(tmp_path: Path, make, message: str) -> None:
    from handwritten.tune import read_drawings

    root = tmp_path / "mine"
    make(root)
    with pytest.raises(DataError, match=message) as refused:
        read_drawings(root)
    assert str(root) in str(refused.value)


def test_an_existing_output_is_kept_without_force(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "mine.keras"
    output.write_bytes(b"keep me")

    assert main(["tune", str(tree), "--output", str(output), "--from", "seed"]) == 1

    error = capsys.readouterr().err
    assert (
        error == f"handwritten: error: --output {output}: exists; pass --force to overwrite it.\n"
    )
    assert output.read_bytes() == b"keep me"


def test_the_command_says_what_is_wrong_with_the_tree_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "mine"
    (root / "7").mkdir(parents=True)

    assert main(["tune", str(root), "--output", str(tmp_path / "out.keras")]) == 1

    error = capsys.readouterr().err
    assert error.startswith(f"handwritten: error: {root}: the digit folders hold no images")
    assert "Traceback" not in error
    assert not (tmp_path / "out.keras").exists()


def test_tuning_the_seed_model_learns_and_writes_a_card(
    messy_tree: tuple[Path, list[Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import keras

    tree, bad = messy_tree
    output = tmp_path / "mine.keras"
    command = ["tune", str(tree), "--output", str(output), "--from", "seed"]
    command += ["--steps", str(STEPS), "--data-dir", str(MNIST_DIR)]
    monkeypatch.setattr(sys, "argv", ["handwritten", *command])  # as the console script runs
    with caplog.at_level(logging.WARNING):
        assert main(command) == 0

    assert capsys.readouterr().out.startswith(f"saved {output}: tuned on 20 drawings")
    assert sum("handwritten: skipped" in record.message for record in caplog.records) == len(bad)
    card = models.read_card(output)
    source = registry.shipped_path("seed")
    assert card["source"]["sha256"] == sha256_of(source)
    assert card["source"]["name"] == "seed"
    assert card["trust"] == models.read_card(source)["trust"], "the status thresholds are kept"
    assert card["tuning"]["drawings"] == 20
    assert len(card["tuning"]["sha256"]) == 64
    assert len(card["tuning"]["skipped"]) == len(bad)
    assert card["tuning"]["steps"] == STEPS
    # Scored on the same validation split as the seed model's own training run (on another
    # machine, maybe: one image whose two best digits tie to the last bits may differ).
    assert card["validation_before"]["accuracy"] == pytest.approx(
        models.read_card(source)["validation"]["accuracy"], abs=1 / 5000
    )
    assert 0.9 < card["validation"]["accuracy"] <= 1
    assert card["command"] == shlex.join(["handwritten", *command])
    tuned, original = models.load_model(output), models.load_model(source)
    assert [w.shape for w in tuned.get_weights()] == [w.shape for w in original.get_weights()]
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(tuned.get_weights(), original.get_weights(), strict=True)
    )
    assert isinstance(tuned, keras.Model)


def test_the_same_seed_gives_the_same_weights(tree: Path, tmp_path: Path) -> None:
    from handwritten.tune import tune

    first, second = tmp_path / "a.keras", tmp_path / "b.keras"
    for output in (first, second):
        tune(tree, output, source="seed", steps=STEPS, data_dir=MNIST_DIR)
    for a, b in zip(
        models.load_model(first).get_weights(), models.load_model(second).get_weights(), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_tuning_the_cnn_keeps_its_batch_norm_statistics(tree: Path, tmp_path: Path) -> None:
    import keras

    from handwritten.tune import tune

    output = tmp_path / "cnn-mine.keras"
    tune(tree, output, source="cnn", steps=STEPS, data_dir=MNIST_DIR)

    tuned, original = models.load_model(output), models.load_model(registry.shipped_path("cnn"))
    for before, after in zip(original.layers, tuned.layers, strict=True):
        if isinstance(before, keras.layers.BatchNormalization):
            np.testing.assert_array_equal(before.moving_mean, after.moving_mean)
            assert after.trainable
        elif isinstance(before, keras.layers.Conv2D):
            assert not np.array_equal(before.kernel, after.kernel)


def test_a_network_with_a_not_a_digit_output_keeps_it_and_learns_it(
    tree: Path, tmp_path: Path
) -> None:
    import keras

    from handwritten.tune import tune

    source = tmp_path / "eleven.keras"
    keras.utils.set_random_seed(0)
    eleven = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Rescaling(models.PIXEL_SCALE),
            keras.layers.Flatten(),
            keras.layers.Dense(11, activation="softmax"),
        ]
    )
    eleven.save(source)

    card = tune(tree, tmp_path / "out.keras", source=source, steps=STEPS, data_dir=MNIST_DIR)

    assert models.load_model(tmp_path / "out.keras").outputs[0].shape[-1] == 11
    assert card["tuning"]["batch"]["negatives"] > 0


def test_a_bad_source_model_is_refused_before_training(tree: Path, tmp_path: Path) -> None:
    from handwritten.tune import tune

    with pytest.raises(HandwrittenError, match="no such model file"):
        tune(tree, tmp_path / "out.keras", source=tmp_path / "missing.keras")
    assert not (tmp_path / "out.keras").exists()
