"""Models: the seed architecture exactly, shipped files, and refusing unsafe or unfit files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from handwritten import models
from handwritten.errors import ModelError
from handwritten.models import build_seed, load_model
from handwritten.registry import resolve_model


def test_seed_is_the_tutorial_network() -> None:
    model = build_seed()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Rescaling", "Flatten", "Dense", "Dense", "Dense"]
    dense = model.layers[3:]
    assert [layer.units for layer in dense] == [128, 128, 10]
    assert [layer.activation.__name__ for layer in dense] == ["relu", "relu", "softmax"]
    assert model.count_params() == 784 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10


def test_shipped_seed_model_and_card_exist() -> None:
    path = resolve_model("seed")
    assert path.name == "handwritten.keras"
    assert path.is_file()
    assert path.with_name("handwritten.card.json").is_file()


def test_a_path_is_taken_as_given(tmp_path: Path) -> None:
    assert resolve_model(tmp_path / "mine.keras") == tmp_path / "mine.keras"


def save(model: keras.Model, path: Path) -> Path:
    model.save(path)
    return path


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"missing\.keras: no such model file"):
        load_model(tmp_path / "missing.keras")


def test_a_file_that_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "notes.keras"
    path.write_text("not a model")
    with pytest.raises(ModelError, match=r"notes\.keras: not a Keras model file"):
        load_model(path)


def test_a_truncated_model_file(tmp_path: Path) -> None:
    whole = resolve_model("seed").read_bytes()
    path = tmp_path / "cut.keras"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ModelError, match=r"cut\.keras"):
        load_model(path)


def test_a_zip_that_is_not_a_keras_model(tmp_path: Path) -> None:
    path = tmp_path / "archive.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(ModelError, match=r"archive\.keras: cannot be loaded safely"):
        load_model(path)


def test_a_model_with_code_in_a_lambda_layer_is_refused(tmp_path: Path) -> None:
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Lambda(lambda x: x * 2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    path = save(model, tmp_path / "lambda.keras")
    with pytest.raises(ModelError, match=r"lambda\.keras: cannot be loaded safely"):
        load_model(path)


@pytest.mark.parametrize(
    ("input_shape", "classes", "complaint"),
    [((32, 32), 10, "not a 28x28 image"), ((28, 28), 5, "not 10 digit classes")],
)
def test_a_model_for_another_task_is_refused(
    tmp_path: Path, input_shape: tuple, classes: int, complaint: str
) -> None:
    model = keras.Sequential(
        [keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(classes)]
    )
    with pytest.raises(ModelError, match=complaint):
        load_model(save(model, tmp_path / "other.keras"))


def test_a_model_saved_by_the_user_loads(tmp_path: Path) -> None:
    path = save(build_seed(), tmp_path / "fresh.keras")
    model = load_model(path)
    assert model(np.zeros((1, 28, 28), dtype=np.float32)).shape == (1, 10)


def test_cnn_is_compact_and_plain() -> None:
    from handwritten.models import build_cnn

    model = build_cnn()
    assert model.count_params() < 1_000_000
    assert tuple(model.inputs[0].shape[1:]) == (28, 28)
    assert tuple(model.outputs[0].shape[1:]) == (10,)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "BatchNormalization" in kinds
    assert kinds <= {
        "InputLayer", "Rescaling", "Reshape", "Conv2D", "BatchNormalization", "ReLU",
        "MaxPooling2D", "GlobalAveragePooling2D", "Dropout", "Dense",
    }  # fmt: skip


def test_the_lean_network_costs_under_four_million_multiply_adds() -> None:
    lean, cnn = models.build_lean(), models.build_cnn()
    assert models.multiply_adds(lean) <= 4_000_000
    assert models.multiply_adds(cnn) >= 3 * models.multiply_adds(lean)


def test_the_temperature_divides_the_logits_and_keeps_the_winner() -> None:
    import keras

    keras.utils.set_random_seed(0)  # the same weights every run
    network = models.build_lean()
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28)).astype(np.float32)
    logits = keras.ops.convert_to_numpy(models.logits_of(network)(images))
    calibrated = keras.ops.convert_to_numpy(models.with_temperature(network, 2.0)(images))
    expected = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum(axis=1, keepdims=True)
    # Two graphs over one network: float32 kernels may differ in the last bits (as runtimes
    # do, see trust.RUNTIME_TOLERANCE), so the probabilities agree to within 1e-5.
    np.testing.assert_allclose(calibrated, expected, rtol=1e-4, atol=1e-5)
    assert (calibrated.argmax(axis=1) == logits.argmax(axis=1)).all()
    assert models.logits_of(models.build_seed()) is None
