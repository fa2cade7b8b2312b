"""Pictures of training, of the data and of single predictions: written, sized, not blank."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_DIR
from drawings import draw
from pictures import picture

from handwritten import plots
from handwritten.cli import main
from handwritten.errors import HandwrittenError
from handwritten.predict import predict_files

HISTORY = {
    "loss": np.float32([0.52, 0.31, 0.24]),
    "accuracy": [0.85, 0.91, 0.93],
    "val_loss": [0.35, 0.29, 0.30],
    "val_accuracy": [0.9, 0.92, 0.92],
}
ORANGE = np.array([255, 127, 14])  # Matplotlib's second line colour: the validation curve


def has_colour(pixels: np.ndarray, colour: np.ndarray) -> bool:
    return bool((np.abs(pixels.astype(int) - colour).sum(axis=2) < 30).any())


def test_training_history_is_written_beside_the_model(tmp_path: Path) -> None:
    model = tmp_path / "models" / "net.keras"
    json_path, png_path = plots.save_training_history(HISTORY, model)
    assert json_path == tmp_path / "models" / "net.history.json"
    assert png_path == tmp_path / "models" / "net.history.png"
    saved = json.loads(json_path.read_text())
    assert set(saved) == set(HISTORY)
    for key, values in HISTORY.items():
        assert saved[key] == pytest.approx([float(v) for v in values])
    assert has_colour(picture(png_path, (1000, 400)), ORANGE)


def test_training_history_without_validation(tmp_path: Path) -> None:
    history = {"loss": [0.5], "accuracy": [0.8]}
    json_path, png_path = plots.save_training_history(history, tmp_path / "one.keras")
    assert json.loads(json_path.read_text()) == history
    assert not has_colour(picture(png_path, (1000, 400), min_ink=0.01), ORANGE)


def test_the_digits_alone_are_drawn_only_where_they_differ() -> None:
    apart = {**HISTORY, "digit_accuracy": [0.88, 0.93, 0.95], "val_digit_accuracy": [0.9] * 3}
    same = {
        **HISTORY,
        "digit_accuracy": HISTORY["accuracy"],
        "val_digit_accuracy": [0.9, 0.92, 0.92],
    }
    for history, expected in ((HISTORY, 2), (same, 2), (apart, 4)):
        accuracy_panel = plots.training_history_figure(history).axes[1]
        assert len(accuracy_panel.lines) == expected
    dashed = plots.training_history_figure(apart).axes[1].lines[2:]
    assert [line.get_label() for line in dashed] == [
        "training, digits alone",
        "validation, digits alone",
    ]


def test_previews_of_inputs_sharing_a_stem_do_not_collide(seed_model, tmp_path: Path) -> None:
    for folder, width in (("a", 4), ("b", 14)):
        (tmp_path / folder).mkdir()
        draw(width=width).save(tmp_path / folder / "seven.png")
    draw(width=9).convert("RGB").save(tmp_path / "a" / "seven.jpg")
    predictions = predict_files(
        [tmp_path / "a" / "seven.png", tmp_path / "b" / "seven.png", tmp_path / "a" / "seven.jpg"],
        seed_model,
    )
    written = plots.save_previews(predictions, tmp_path / "out")
    assert [p.name for p in written] == [
        "seven.preview.png",
        "seven-2.preview.png",
        "seven-3.preview.png",
    ]
    pictures = [picture(path, (900, 300)) for path in written]
    assert not np.array_equal(pictures[0], pictures[1])


def test_unique_stems_number_repeats_case_blind() -> None:
    stems = ["7", "7", "7-2", "Seven", "seven"]
    assert plots._unique_stems(stems) == ["7", "7-2", "7-2-2", "Seven", "seven-2"]


def test_gallery_command_draws_the_chosen_digit(tmp_path: Path) -> None:
    output = tmp_path / "threes.png"
    args = ["gallery", "--split", "test", "--digit", "3", "--count", "20", "--output", str(output)]
    assert main([*args, "--data-dir", str(MNIST_DIR)]) == 0
    picture(output, (1000, 305), min_ink=0.3)


@pytest.mark.integration
def test_gallery_samples_are_the_first_of_that_digit(mnist) -> None:
    chosen = plots.sample_indices(mnist.y_test, 3, 20)
    assert len(chosen) == 20
    assert (mnist.y_test[chosen] == 3).all()
    assert chosen[-1] == np.flatnonzero(mnist.y_test == 3)[19]
    assert list(plots.sample_indices(mnist.y_train, None, 5)) == [0, 1, 2, 3, 4]


def test_gallery_refuses_what_it_cannot_draw(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["gallery", "--output", "gallery.jpg"])
    assert exit_info.value.code == 2
    assert ".png" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["gallery", "--digit", "10"])


def test_gallery_caps_the_count() -> None:
    labels = np.zeros(1000, np.uint8)
    with pytest.raises(HandwrittenError, match="at most"):
        plots.gallery_figure(np.zeros((1000, 28, 28), np.uint8), labels, "x", count=501)
