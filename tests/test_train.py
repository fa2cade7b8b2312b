"""Training: the seed recipe learns, the same seed gives the same weights, the card tells how."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_DIR

from handwritten import __version__, data, registry, sources
from handwritten.cli import main
from handwritten.errors import HandwrittenError
from handwritten.models import load_model
from handwritten.preprocess import preprocessing_spec
from handwritten.train import DigitAccuracy, card_path, train

pytestmark = pytest.mark.integration


def test_one_epoch_of_the_seed_recipe_beats_95_percent(tmp_path: Path) -> None:
    output = tmp_path / "one-epoch.keras"
    card = train("seed", output, data_dir=MNIST_DIR, epochs=1, verbose=0)
    accuracy = card["validation"]["accuracy"]
    print(f"seed, 1 epoch: MNIST validation accuracy {accuracy:.4f}")
    assert accuracy > 0.95
    assert 0.95 < card["test"]["accuracy"] < 1.0
    assert card["validation"]["images"] == data.VALIDATION_SIZE
    assert card["test"]["images"] == 10000
    assert card["data"]["train_images"] == 60000 - data.VALIDATION_SIZE
    assert load_model(output).count_params() == card["parameters"]
    written = json.loads(card_path(output).read_text())
    assert written == card
    assert written["name"] == "seed"
    assert written["recipe"]["epochs"] == 1
    assert written["recipe"]["batch_size"] == 32
    assert written["seed"] == 42
    assert written["preprocessing"] == preprocessing_spec()
    assert written["splits"]["test"].startswith("MNIST's 10,000 test images")
    assert [entry["name"] for entry in written["sources"]] == ["mnist"]
    assert written["sources"][0]["sha256"] == data.PAYLOAD_SHA256
    assert written["recipe"]["sources"] == {"mnist": 1.0}
    assert written["data"]["epoch_images"] == (60000 - data.VALIDATION_SIZE) // 32 * 32
    populations = written["populations"]
    assert populations["test"]["mnist"]["accuracy"] == written["test"]["accuracy"]
    assert populations["validation"]["mnist"]["images"] == data.VALIDATION_SIZE
    assert written["package"]["version"] == __version__
    assert written["data"]["sha256"] == data.PAYLOAD_SHA256
    assert written["training_seconds"] > 0
    assert "handwritten" in written["command"]
    history = json.loads(output.with_name("one-epoch.history.json").read_text())
    assert history["val_digit_accuracy"] == pytest.approx(history["val_accuracy"])
    import keras

    assert keras.saving.load_model(output).compiled  # as the tutorial's file, in plain Keras


def test_digit_accuracy_counts_digits_only_and_reads_the_best_digit() -> None:
    eye = np.eye(11, dtype=np.float32)
    truth = eye[[3, 3, 7, 10, 10]]
    truth[1, :10] = 0.05  # a distilled target: soft, but still all digit
    truth[1, 3] = 0.55
    guess = np.float32(
        [
            eye[3],  # right
            0.4 * eye[10] + 0.35 * eye[3] + 0.25 * eye[5],  # best digit 3 beats the 11th: right
            eye[1],  # wrong
            eye[2],  # a non-digit read as a digit: not counted here
            eye[10],
        ]
    )
    metric = DigitAccuracy()
    metric.update_state(truth, guess)
    assert float(metric.result()) == pytest.approx(2 / 3)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def weights(path: Path) -> list[np.ndarray]:
    return load_model(path).get_weights()


def test_the_same_seed_gives_the_same_weights(tmp_path: Path) -> None:
    runs = {}
    for name, seed in [("a", 7), ("b", 7), ("c", 8)]:
        output = tmp_path / f"{name}.keras"
        train("seed", output, data_dir=MNIST_DIR, epochs=1, limit=2000, seed=seed, verbose=0)
        runs[name] = weights(output)
    assert all(np.array_equal(a, b) for a, b in zip(runs["a"], runs["b"], strict=True))
    assert not all(np.array_equal(a, c) for a, c in zip(runs["a"], runs["c"], strict=True))


def test_an_existing_model_is_not_overwritten_without_force(tmp_path: Path) -> None:
    output = tmp_path / "kept.keras"
    output.write_bytes(b"precious")
    with pytest.raises(HandwrittenError, match="--force"):
        train("seed", output, data_dir=MNIST_DIR, epochs=1, limit=100, verbose=0)
    assert output.read_bytes() == b"precious"
    train("seed", output, data_dir=MNIST_DIR, epochs=1, limit=100, force=True, verbose=0)
    assert load_model(output) is not None


@pytest.mark.parametrize(
    ("architecture", "output", "complaint"),
    [("mlp", "x.keras", "unknown"), ("seed", "x.h5", "must end in .keras")],
)
def test_bad_arguments_are_named(
    tmp_path: Path, architecture: str, output: str, complaint: str
) -> None:
    with pytest.raises(HandwrittenError, match=complaint):
        train(architecture, tmp_path / output, data_dir=MNIST_DIR)
    assert not (tmp_path / output).exists()


def test_a_mixture_is_split_by_writer_and_every_population_scored(
    tmp_path, monkeypatch, shared, capsys
) -> None:
    seed = registry.get("seed")
    recipe = dataclasses.replace(
        seed.recipe, sources=(("mnist", 1.0), ("pendigits", 0.5)), held_out=("usps",)
    )
    monkeypatch.setitem(registry.MODELS, "seed", dataclasses.replace(seed, recipe=recipe))
    monkeypatch.setenv("HANDWRITTEN_DATA_DIR", str(MNIST_DIR))  # for `evaluate --record` below
    card = train("seed", tmp_path / "mixed.keras", data_dir=MNIST_DIR, epochs=1, limit=3000)
    entries = {entry["name"]: entry for entry in card["sources"]}
    assert list(entries) == ["mnist", "pendigits", "usps"]
    pendigits = entries["pendigits"]
    assert pendigits["sha256"] == dict(sources.get("pendigits").files)
    assert pendigits["licence"] == sources.get("pendigits").licence
    assert pendigits["validation"]["writers"] == 4  # a tenth of its 44 writers
    assert pendigits["train"]["writers"] == 40
    assert pendigits["train"]["digits"] + pendigits["validation"]["digits"] == 10992
    assert entries["usps"]["role"] == "held out"
    assert entries["usps"]["digits"] == 9298
    assert card["recipe"]["sources"] == {"mnist": pytest.approx(2 / 3), "pendigits": 1 / 3}
    assert card["recipe"]["held_out"] == ["usps"]
    populations = card["populations"]
    assert set(populations["validation"]) == {"mnist", "pendigits"}
    assert populations["validation"]["pendigits"]["images"] == pendigits["validation"]["digits"]
    assert set(populations["held_out"]) == {"usps"}
    assert 0.5 < populations["held_out"]["usps"]["read"] < 1.0
    assert set(populations["test"]) == {"mnist"}

    # Recording chooses the thresholds on every source's validation writers, then scores
    # each population again with them.
    command = ["evaluate", "--model", str(tmp_path / "mixed.keras"), "--runtime", "keras"]
    assert main([*command, "--record", "--drawings", str(shared / "user-digits")]) == 0
    assert "held_out usps: " in capsys.readouterr().out
    recorded = json.loads(card_path(tmp_path / "mixed.keras").read_text())
    coverage = recorded["trust"]["coverage"]["validation"]
    assert coverage["images"] == data.VALIDATION_SIZE + pendigits["validation"]["digits"]
    chosen = {key: recorded["trust"][key] for key in ("sure", "reject")}
    assert recorded["populations"]["thresholds"] == chosen
    assert recorded["populations"]["held_out"]["usps"] != populations["held_out"]["usps"]

    kept = train(
        "seed", tmp_path / "pen.keras", data_dir=MNIST_DIR, sources=["pendigits"], epochs=1
    )
    assert kept["recipe"]["sources"] == {"pendigits": 1.0}
    assert kept["data"]["train_images"] == pendigits["train"]["digits"]
    assert [entry["name"] for entry in kept["sources"]] == ["pendigits", "usps"]
