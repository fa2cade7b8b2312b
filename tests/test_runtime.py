"""The ONNX path: the same answers as Keras, exported faithfully, never used once stale."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from drawings import draw

from handwritten.cli import main
from handwritten.errors import ModelError
from handwritten.models import KerasClassifier, build_seed
from handwritten.registry import MODELS, resolve_model
from handwritten.runtime import (
    SOURCE_SHA256,
    OnnxClassifier,
    export_onnx,
    fresh_onnx,
    load_classifier,
    onnx_path,
    open_onnx,
    sha256_of,
)
from handwritten.trust import RUNTIME_TOLERANCE


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained seed network saved and exported in a scratch folder: (the .keras file)."""
    folder = tmp_path_factory.mktemp("exported")
    model = build_seed()
    model.save(folder / "mine.keras")
    export_onnx(folder / "mine.keras")
    return folder / "mine.keras"


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(MODELS))
def test_shipped_onnx_agrees_with_keras_on_the_whole_test_set(name: str, mnist) -> None:
    onnx_model = fresh_onnx(resolve_model(name))
    keras_model = load_classifier(name, "keras")
    from_onnx = onnx_model.probabilities(mnist.x_test)
    from_keras = keras_model.probabilities(mnist.x_test)
    outputs = keras_model.model.outputs[0].shape[-1]
    assert outputs in (10, 11)
    assert from_onnx.shape == from_keras.shape == (10000, outputs)
    np.testing.assert_allclose(from_onnx, from_keras, rtol=0, atol=RUNTIME_TOLERANCE)
    # The same best digit, except where the two best tie to within the runtimes' last bits.
    two_best = np.sort(from_keras, axis=1)[:, -2:]
    decided = two_best[:, 1] - two_best[:, 0] > 2 * RUNTIME_TOLERANCE
    assert decided.mean() > 0.999
    assert (from_onnx.argmax(axis=1) == from_keras.argmax(axis=1))[decided].all()


def test_auto_prefers_a_fresh_onnx_copy() -> None:
    classifier = load_classifier("seed")
    assert isinstance(classifier, OnnxClassifier)
    assert classifier.source == resolve_model("seed")


def test_keras_runtime_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(load_classifier("seed", "keras"), KerasClassifier)
    monkeypatch.setenv("HANDWRITTEN_RUNTIME", "keras")
    assert isinstance(load_classifier("seed"), KerasClassifier)


def test_export_stamps_the_source_and_round_trips(exported: Path) -> None:
    classifier = load_classifier(exported)
    assert isinstance(classifier, OnnxClassifier)
    assert classifier.path == onnx_path(exported)
    stamps = classifier.session.get_modelmeta().custom_metadata_map
    assert stamps[SOURCE_SHA256] == sha256_of(exported)
    images = np.random.default_rng(3).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    np.testing.assert_allclose(
        classifier.probabilities(images),
        load_classifier(exported, "keras").probabilities(images),
        rtol=0,
        atol=1e-4,
    )


def test_a_stale_onnx_copy_is_not_used(exported: Path, tmp_path: Path, caplog) -> None:
    model = tmp_path / "mine.keras"
    build_seed().save(model)  # new weights: the copy below was made from another file
    shutil.copy(onnx_path(exported), onnx_path(model))
    assert isinstance(load_classifier(model), KerasClassifier)
    assert "handwritten export" in caplog.text
    with pytest.raises(ModelError, match=r"not exported from .* as it is now"):
        load_classifier(model, "onnx")


def test_a_missing_onnx_copy_falls_back_to_keras(tmp_path: Path, caplog) -> None:
    build_seed().save(tmp_path / "plain.keras")
    assert isinstance(load_classifier(tmp_path / "plain.keras"), KerasClassifier)
    assert caplog.text == ""
    with pytest.raises(ModelError, match="missing; run `handwritten export"):
        load_classifier(tmp_path / "plain.keras", "onnx")


def test_an_onnx_file_can_be_given_directly(exported: Path) -> None:
    assert isinstance(load_classifier(onnx_path(exported)), OnnxClassifier)
    with pytest.raises(ModelError, match="cannot run on the Keras runtime"):
        load_classifier(onnx_path(exported), "keras")


def test_an_onnx_file_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 28, 28])
    same = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 28, 28])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "echo", [image], [same])
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), tmp_path / "e.onnx"
    )
    with pytest.raises(ModelError, match="not 10 digit classes"):
        open_onnx(tmp_path / "e.onnx")


def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        load_classifier(tmp_path / "junk.onnx")


def test_export_command_writes_the_copy_beside_the_model(exported: Path, tmp_path, capsys) -> None:
    model = tmp_path / exported.name
    shutil.copy(exported, model)
    assert main(["export", "--format", "onnx", "--model", str(model)]) == 0
    assert capsys.readouterr().out.strip() == f"saved {onnx_path(model)}"
    assert isinstance(load_classifier(model, "onnx"), OnnxClassifier)


def test_predict_reads_a_digit_without_importing_tensorflow(tmp_path: Path) -> None:
    draw().save(tmp_path / "seven.png")
    script = (
        "import sys\nfrom handwritten.cli import main\n"
        f"status = main(['predict', {str(tmp_path / 'seven.png')!r}])\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("%)")
