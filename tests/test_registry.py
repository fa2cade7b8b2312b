"""One place says what a model is: the registry, self-describing files, the validation split."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from drawings import draw

from handwritten import api, augment, data, mixture, models, registry
from handwritten.cli import main
from handwritten.errors import DataError, ModelError
from handwritten.preprocess import PREPROCESSING_VERSION, preprocessing_spec, to_mnist
from handwritten.runtime import CARD, OnnxClassifier, export_onnx, onnx_path, open_onnx


def test_every_registered_model_builds_the_network_its_recipe_trains() -> None:
    for spec in registry.MODELS.values():
        network = spec.build()
        assert network.name == spec.name
        assert tuple(network.inputs[0].shape[1:]) == models.INPUT_SHAPE
        outputs = network.outputs[0].shape[-1]
        assert outputs in models.OUTPUT_SIZES
        # An 11th output ("not a digit") is only learnt from the generated non-digits.
        assert (outputs == models.NUM_CLASSES + 1) == (spec.recipe.negatives > 0)
        assert spec.recipe.teacher is None or spec.recipe.teacher in registry.MODELS
        assert set(spec.recipe.augmentations) <= set(augment.AUGMENTATIONS)
        assert spec.recipe.to_json()["epochs"] == spec.recipe.epochs


def test_names_resolve_to_shipped_files_and_paths_stay_paths(tmp_path: Path) -> None:
    assert registry.DEFAULT_MODEL in registry.MODELS
    assert registry.resolve_model(None) == registry.shipped_path(registry.DEFAULT_MODEL)
    assert registry.resolve_model("seed").name == registry.get("seed").shipped_file
    assert registry.resolve_model(tmp_path / "mine.onnx") == tmp_path / "mine.onnx"
    with pytest.raises(ModelError, match="unknown; choose one of lean, cnn, seed"):
        registry.get("mlp")


def test_networks_scale_their_own_pixels() -> None:
    network = registry.get("seed").build()
    white = np.full((1, 28, 28), 255.0, np.float32)
    scaled = network.get_layer("pixels")(white)
    assert float(np.max(scaled)) == pytest.approx(1.0)


def test_a_network_that_does_not_scale_its_pixels_is_refused(tmp_path: Path) -> None:
    import keras

    old_style = keras.Sequential(
        [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    )
    old_style.save(tmp_path / "old.keras")
    with pytest.raises(ModelError, match=r"old\.keras: does not scale its own pixels"):
        models.load_model(tmp_path / "old.keras")


def test_multiply_adds_count_convolutions_and_dense_layers() -> None:
    assert models.multiply_adds(models.build_seed()) == 784 * 128 + 128 * 128 + 128 * 10
    cnn = models.build_cnn(width=8)
    first = 28 * 28 * 8 * 5 * 5  # 5x5 convolution of one channel at full resolution
    assert models.multiply_adds(cnn) > first


def test_the_validation_split_is_stratified_seeded_and_disjoint() -> None:
    labels = np.repeat(np.arange(10), [50, 60, 70, 80, 90, 100, 110, 120, 130, 190])
    chosen = data.validation_indices(labels, size=100)
    assert len(chosen) == len(set(chosen.tolist())) == 100
    counts = np.bincount(labels[chosen], minlength=10)
    expected = np.bincount(labels, minlength=10) / len(labels) * 100
    assert np.all(np.abs(counts - expected) < 1)
    assert np.array_equal(chosen, data.validation_indices(labels, size=100))
    assert not np.array_equal(chosen, data.validation_indices(labels, size=100, seed=7))


def test_split_mnist_holds_the_validation_images_out_of_training() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (600, 28, 28), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(600) // 256, np.arange(600) % 256  # ids
    labels = np.arange(600) % 10
    mnist = data.Mnist(images, labels, images[:10], labels[:10])
    split = data.split_mnist(mnist, size=60)
    ids = {tuple(image[0, :2]) for image in split.x_train}
    held = {tuple(image[0, :2]) for image in split.x_val}
    assert len(ids) == 540
    assert len(held) == 60
    assert not ids & held
    assert np.array_equal(np.bincount(split.y_val), np.full(10, 6))
    assert split.describe()["images"] == 60


def test_augmentations_are_seeded_by_name_not_position(monkeypatch: pytest.MonkeyPatch) -> None:
    def rotation(names: list[str]):
        (layer,) = [
            layer
            for layer in augment.build_augmenter(names, seed=3).layers.layers
            if layer.name.startswith("random_rotation")
        ]
        return layer

    seed = rotation(["rotate"]).seed
    assert rotation(["zoom", "shear", "rotate", "blur"]).seed == seed
    monkeypatch.setattr(augment, "AUGMENTATIONS", ("elastic", *reversed(augment.AUGMENTATIONS)))
    assert rotation(["rotate", "zoom"]).seed == seed
    assert augment.make_augmentation("zoom", 3).seed != augment.make_augmentation("shear", 3).seed
    assert augment.strengths(["rotate"]) == {"rotate": {"factor": 12 / 360}}


@pytest.fixture(scope="module")
def exported_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained seed network with a card beside it, exported: (the .keras file)."""
    folder = tmp_path_factory.mktemp("card")
    registry.get("seed").build().save(folder / "mine.keras")
    card = {"name": "mine", "preprocessing": {"version": PREPROCESSING_VERSION}, "test": {}}
    models.card_path(folder / "mine.keras").write_text(json.dumps(card))
    export_onnx(folder / "mine.keras")
    return folder / "mine.keras"


def test_an_export_carries_the_card(exported_seed: Path) -> None:
    classifier = open_onnx(onnx_path(exported_seed))
    assert classifier.card == json.loads(models.card_path(exported_seed).read_text())


def test_an_onnx_file_copied_alone_reads_like_its_model(exported_seed: Path, tmp_path) -> None:
    alone = tmp_path / "empty" / "copy.onnx"
    alone.parent.mkdir()
    shutil.copy(onnx_path(exported_seed), alone)
    images = np.stack([to_mnist(draw(width=width)) for width in (2, 8, 20)])
    copy = api.load(alone)
    assert isinstance(copy, OnnxClassifier)
    np.testing.assert_allclose(
        copy.probabilities(images),
        api.load(exported_seed, "keras").probabilities(images),
        atol=1e-4,
    )


def test_an_onnx_file_without_a_card_is_refused(exported_seed: Path, tmp_path: Path) -> None:
    import onnx

    graph = onnx.load(str(onnx_path(exported_seed)))
    kept = [p for p in graph.metadata_props if p.key != CARD]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    onnx.save(graph, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelError, match=r"bare\.onnx: carries no handwritten model card"):
        api.load(tmp_path / "bare.onnx")


def test_another_preprocessing_version_is_a_warning(exported_seed: Path, tmp_path, caplog) -> None:
    other = tmp_path / "other.keras"
    shutil.copy(exported_seed, other)
    card = {"name": "other", "preprocessing": {"version": PREPROCESSING_VERSION + 1}}
    models.card_path(other).write_text(json.dumps(card))
    with caplog.at_level(logging.WARNING):
        api.load(other, "keras")
    assert f"preprocessing version {PREPROCESSING_VERSION + 1}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        api.load(exported_seed, "keras")
    assert "preprocessing version" not in caplog.text


def test_models_lists_every_registered_model_with_its_figures(capsys) -> None:
    assert main(["models", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    rows = [row for row in lines if row.get("kind") != "reader"]
    assert [row["name"] for row in rows] == registry.names()
    assert [row["name"] for row in lines if row.get("kind") == "reader"] == list(registry.READERS)
    for row in rows:
        card = models.read_card(registry.shipped_path(row["name"]))
        assert row["shipped"] is True
        assert row["validation_accuracy"] == card["validation"]["accuracy"]
        assert row["test_accuracy"] == card["test"]["accuracy"]
        assert row["parameters"] == card["parameters"]
        assert row["sources"] == mixture.trained_on(card)
        assert "mnist" in row["sources"]
    assert main(["models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["model", "file"]
    assert any(line.startswith(f"{registry.DEFAULT_MODEL} (default)") for line in table[1:])


@pytest.mark.integration
@pytest.mark.parametrize("name", registry.names())
def test_shipped_cards_describe_the_file_beside_them(name: str, mnist) -> None:
    card = models.read_card(registry.shipped_path(name))
    assert card["name"] == name
    recorded = card["preprocessing"]
    assert all(recorded[key] == value for key, value in preprocessing_spec().items())
    assert card["validation"]["images"] == data.VALIDATION_SIZE
    assert card["test"]["images"] == 10000
    assert set(card["splits"]) >= {"validation", "development", "test"}
    assert card["recipe"]["augmentations"] == list(registry.get(name).recipe.augmentations)
    split = data.split_mnist(mnist).describe()
    assert card["data"]["validation"] == split
    assert card["data"]["sha256"] == data.PAYLOAD_SHA256
    assert open_onnx(onnx_path(registry.shipped_path(name))).card == card


def labelled_folder(root: Path) -> Path:
    """Three drawn sevens (one labelled wrongly as a 1) and a blank page, in DIR/7 and DIR/1."""
    for digit, names in (("7", ("a", "b")), ("1", ("c", "blank"))):
        (root / digit).mkdir(parents=True)
        for name in names:
            picture = draw(width=6) if name != "blank" else draw(width=0, ink=255)
            picture.save(root / digit / f"{name}.png")
    return root


def test_evaluate_drawings_counts_what_the_model_reads(tmp_path: Path) -> None:
    folder = labelled_folder(tmp_path / "mine")
    classifier = api.load("seed")
    result = api.evaluate_drawings(folder, classifier)
    read = {p.path: p.digit for p in api.predict([folder / "7", folder / "1"], classifier)}
    expected = sum(read[str(path)] == int(path.parent.name) for path in folder.glob("*/*.png"))
    assert result["images"] == 4
    assert result["correct"] == expected
    assert {miss["path"] for miss in result["wrong"]} >= {str(folder / "1" / "blank.png")}


def test_evaluate_drawings_reads_a_labels_table(tmp_path: Path) -> None:
    folder = labelled_folder(tmp_path / "mine")
    (folder / "labels.csv").write_text("file,label\n7/a.png,7\n1/c.png,1\n")
    assert api.evaluate_drawings(folder, api.load("seed"))["images"] == 2


def test_a_folder_without_labels_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no labelled images; give a folder with labels\.csv"):
        api.evaluate_drawings(tmp_path, api.load("seed"))


def test_record_keeps_the_scores_in_the_card(exported_seed: Path, tmp_path: Path) -> None:
    model = tmp_path / "mine.keras"
    shutil.copy(exported_seed, model)
    shutil.copy(models.card_path(exported_seed), models.card_path(model))
    result = {"folder": str(tmp_path / "family"), "images": 4, "correct": 3, "accuracy": 0.75}
    written = api.record_development(model, [{**result, "wrong": []}])
    card = json.loads(written.read_text())
    assert card["development"] == {"family": {"images": 4, "correct": 3, "accuracy": 0.75}}
    assert card["splits"] == models.SPLITS
    assert card["name"] == "mine"
