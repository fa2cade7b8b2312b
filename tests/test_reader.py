"""The sequence reader's code on tiny generated data: preprocessing, CTC targets and decoding,
a few training steps, saving, safe loading and the ONNX export."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from test_synth import typed_bank

from handwritten import api, reader, registry
from handwritten.errors import ModelError

TINY = reader.ReaderRecipe(
    steps=12, images=24, batch_size=8, learning_rate=3e-3, units=16, filters=(8, 16, 16, 24)
)


def crop(dark_on_light: bool = True, size: tuple[int, int] = (40, 120)) -> np.ndarray:
    """A crop with one thick vertical stroke, in either polarity."""
    paper, ink = (230, 20) if dark_on_light else (20, 230)
    image = np.full(size, paper, np.uint8)
    image[5:-5, size[1] // 2 - 3 : size[1] // 2 + 3] = ink
    return image


def test_preprocess_makes_ink_white_at_the_readers_height_whatever_the_polarity() -> None:
    for polarity in (True, False):
        out = reader.preprocess(crop(polarity))
        pad = reader.SIDE_PAD
        assert out.shape == (reader.READER_HEIGHT, 96 + 2 * pad)  # 120 wide at 40 -> 96 at 32
        column = out[:, pad + 48]
        assert column[10] > 200  # the stroke
        assert out[:, pad + 5].max() < 30  # the paper


def test_preprocess_is_not_misled_by_a_black_margin_and_a_dark_rule() -> None:
    """The crop's border is mostly margin and rule, darker than the paper: dark writing all
    the same, so it is inverted (judged by the border, the paper had come out white)."""
    image = np.full((40, 200), 215, np.uint8)
    image[:, :70] = 15  # a scanner's black margin
    image[-4:] = 40  # a dark rule along the bottom
    for left in (120, 150):
        image[8:30, left : left + 4] = 30  # two strokes of dark ink
    out = reader.preprocess(image)[:, reader.SIDE_PAD :]  # 32 x 160: column c / 0.8 of it
    assert out[12, 97] > 200  # the strokes
    assert out[12, 121] > 200
    assert out[12, 110] < 30  # the paper between them


def test_preprocess_keeps_chalk_on_a_board_white() -> None:
    image = np.full((40, 200), 50, np.uint8)
    image[:, :20] = 120  # the board's lighter frame
    image[8:30, 120:124] = 235
    out = reader.preprocess(image)[:, reader.SIDE_PAD :]
    assert out[12, 97] > 200
    assert out[12, 110] < 30


def test_preprocess_takes_the_polarity_its_caller_knows() -> None:
    """An image's proposals share its polarity, judged once: told it, `preprocess` inverts
    as told instead of judging the crop again."""
    dark = crop(dark_on_light=True)
    told_dark = reader.preprocess(dark, lighter=False)
    assert np.array_equal(told_dark, reader.preprocess(dark))
    assert np.array_equal(reader.preprocess(255 - dark, lighter=True), told_dark)
    # Told the writing is the lighter, it finds none: the dark stroke sinks below the ground.
    assert reader.preprocess(dark, lighter=True).max() < 30


def test_a_digit_touching_the_crops_edge_gets_paper_beside_it() -> None:
    """A tight crop (a dataset's crop of a number, a cell cut close): its first stroke at
    the very edge comes out SIDE_PAD columns in, with paper before it, as in training."""
    image = np.full((40, 60), 225, np.uint8)
    image[4:36, :5] = 25  # a 1 at the left edge
    out = reader.preprocess(image)
    assert out.shape == (reader.READER_HEIGHT, 48 + 2 * reader.SIDE_PAD)
    assert out[:, : reader.SIDE_PAD].max() == 0
    assert out[16, reader.SIDE_PAD] > 200
    assert out[:, -reader.SIDE_PAD :].max() == 0


def test_digit_spans_are_shares_of_the_crop_not_of_its_padding() -> None:
    """The reader sees the crop padded; where it read a digit is given in the crop."""
    width = 64 + 2 * reader.SIDE_PAD  # a crop 64 columns wide at the reader's height
    frames = width // reader.WIDTH_STEP
    classes = [0] * frames
    first = reader.SIDE_PAD // reader.WIDTH_STEP
    last = frames - first - 1
    classes[first], classes[last] = 2, 8  # a 1 in the crop's first frame, a 7 in its last
    (reading,) = reader.decode(one_hot_frames(classes)[None], np.array([frames], np.int32))
    one, seven = reader._in_crop(reading, width).digits
    assert one.span == (0.0, 4 / 64)
    assert seven.span == (60 / 64, 1.0)


def test_a_very_wide_crop_is_squeezed_to_the_widest_the_reader_takes() -> None:
    out = reader.preprocess(np.dstack([crop(size=(20, 2000))] * 3))
    assert out.shape == (reader.READER_HEIGHT, reader.MAX_WIDTH)


def test_batch_pads_with_no_ink_and_counts_each_crops_frames() -> None:
    short, long = np.full((32, 10), 255, np.uint8), np.full((32, 33), 255, np.uint8)
    pixels, lengths = reader.batch([short, long])
    assert pixels.shape == (2, 32, 36, 1)
    assert pixels[0, :, 10:].max() == 0
    assert pixels[1, :, :33].min() == 255
    assert lengths.tolist() == [3, 9]


def test_ctc_targets_shift_digits_past_the_blank() -> None:
    targets, lengths = reader.ctc_targets(["09", "7"])
    assert targets.tolist() == [[1, 10], [8, reader.BLANK]]
    assert lengths.tolist() == [2, 1]


def one_hot_frames(classes: list[int]) -> np.ndarray:
    logits = np.full((len(classes), reader.NUM_CLASSES), -5.0, np.float32)
    logits[np.arange(len(classes)), classes] = 5.0
    return logits


def test_greedy_decoding_merges_repeats_and_drops_blanks() -> None:
    # Classes are the blank (0) then digits 0-9 (1-10): 3,3 merge; a blank keeps two 3s apart.
    frames = [
        one_hot_frames([0, 3, 3, 0, 3, 5, 5, 1]),
        one_hot_frames([0, 0, 0, 0, 0, 0, 0, 0]),
        one_hot_frames([10, 10, 0, 10, 1, 0, 0, 0]),
    ]
    lengths = np.array([8, 8, 5], np.int32)
    readings = reader.decode(np.stack(frames), lengths)
    assert [r.text for r in readings] == ["2240", "", "990"]
    assert readings[1].digits == []


def test_greedy_decoding_stops_at_each_crops_own_length() -> None:
    logits = np.stack([one_hot_frames([2, 0, 3, 0, 4, 0])])
    assert [r.text for r in reader.decode(logits, np.array([3], np.int32))] == ["12"]


def test_each_digit_read_says_how_sure_where_and_what_else() -> None:
    logits = one_hot_frames([0, 4, 0, 0, 8, 8, 0, 0])
    logits[1, [4, 7]] = [2.0, 1.5]  # frame 1 doubts: a 3 (class 4) or a 6 (class 7)
    (reading,) = reader.decode(logits[None], np.array([8], np.int32))
    three, seven = reading.digits
    assert (three.digit, seven.digit) == (3, 7)
    assert three.confidence < 0.7 < seven.confidence
    assert three.alternatives[0] == 6
    assert np.isclose(sum(three.probabilities), 1.0)
    assert three.span == (1 / 8, 2 / 8)
    assert seven.span == (4 / 8, 6 / 8)
    assert 0 < reading.confidence < 1


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[object, list[float], Path]:
    """A tiny reader trained for a few steps on generated images of typed digits."""
    folder = tmp_path_factory.mktemp("reader")
    log: list[float] = []
    model, _card = reader.train_reader(
        typed_bank(), folder / "reader.keras", TINY, seed=1, log=log, validation_images=5
    )
    return model, log, folder


def test_the_loss_falls_over_a_few_steps(trained) -> None:
    _, log, _ = trained
    assert len(log) == TINY.steps
    assert all(np.isfinite(log))
    assert np.mean(log[-3:]) < 0.7 * np.mean(log[:3])


def test_the_reader_reads_strings_of_digits(trained) -> None:
    model, _, _ = trained
    crops, _labels = reader.training_crops(typed_bank(), 6, 7)
    pixels, lengths = reader.batch(crops)
    logits = np.asarray(model(pixels))
    assert logits.shape == (6, max(lengths), reader.NUM_CLASSES)
    read = [r.text for r in reader.decode(logits, lengths)]
    assert len(read) == 6
    assert all(text == "" or text.isdigit() for text in read)
    assert all(len(text) <= length for text, length in zip(read, lengths, strict=True))
    # Straight from crops as a finder gives them, in either polarity.
    direct = reader.read_crops(model, [crop(), crop(dark_on_light=False)])
    assert len(direct) == 2
    assert all(text == "" or text.isdigit() for text in direct)


def test_saved_reader_loads_safely_with_its_card(trained) -> None:
    model, _, folder = trained
    card = json.loads((folder / "reader.card.json").read_text())
    assert card["preprocessing"] == registry.get_reader("crnn").preprocessing()
    assert card["recipe"]["steps"] == TINY.steps
    assert card["recipe"]["filters"] == list(TINY.filters)
    convolutions = [layer.filters for layer in model.layers if hasattr(layer, "kernel_size")]
    assert convolutions == list(TINY.filters)
    assert card["validation"]["images"] == 5
    assert card["validation"]["cer"] >= 0
    assert 0 <= card["trust"]["sure"] <= 1
    loaded = reader.load_reader(folder / "reader.keras")
    pixels, _ = reader.batch([reader.preprocess(crop()), reader.preprocess(crop(size=(30, 300)))])
    assert np.allclose(np.asarray(loaded(pixels)), np.asarray(model(pixels)), atol=1e-5)


def test_onnx_export_gives_the_same_logits_at_any_width(trained) -> None:
    model, _, folder = trained
    exported = reader.export_onnx(model, folder / "reader.onnx")
    for width in (60, 300):
        pixels, _ = reader.batch([reader.preprocess(crop(size=(40, width)))] * 2)
        keras_logits = np.asarray(model(pixels))
        assert np.abs(reader.onnx_logits(exported, pixels) - keras_logits).max() < 1e-4


def test_a_reader_of_other_crops_opens_with_a_warning(trained, tmp_path: Path, caplog) -> None:
    _, _, folder = trained
    card = json.loads((folder / "reader.card.json").read_text())
    card["preprocessing"]["reader_version"] = reader.READER_VERSION - 1
    (tmp_path / "old.keras").write_bytes((folder / "reader.keras").read_bytes())
    (tmp_path / "old.card.json").write_text(json.dumps(card))
    with caplog.at_level(logging.WARNING):
        opened = reader.open_reader(tmp_path / "old.keras")
    assert f"reader version {reader.READER_VERSION - 1}" in caplog.text
    assert "train-reader" in caplog.text
    assert opened.card["preprocessing"]["reader_version"] == reader.READER_VERSION - 1
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        reader.open_reader(folder / "reader.keras")
    assert "reader version" not in caplog.text


def test_export_given_a_readers_file_writes_its_onnx_copy(trained, tmp_path: Path) -> None:
    _, _, folder = trained
    for suffix in (".keras", ".card.json"):
        (tmp_path / f"mine{suffix}").write_bytes((folder / f"reader{suffix}").read_bytes())
    written = api.export(tmp_path / "mine.keras")
    assert written == tmp_path / "mine.onnx"
    assert reader.open_reader(tmp_path / "mine.keras").source_sha256 is not None


def test_a_file_that_is_no_reader_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "fake.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match=r"fake\.keras"):
        reader.load_reader(tmp_path / "fake.keras")


def test_an_unknown_reader_is_named_with_the_known_ones() -> None:
    with pytest.raises(ModelError, match="crnn"):
        registry.get_reader("transformer")


def test_training_crops_are_the_same_whatever_the_number_of_workers() -> None:
    one = reader.training_crops(typed_bank(), 5, 3, workers=1)
    two = reader.training_crops(typed_bank(), 5, 3, workers=2)
    assert one[1] == two[1]
    assert all(np.array_equal(a, b) for a, b in zip(one[0], two[0], strict=True))


def test_augmenting_a_crop_stretches_it_sideways_and_keeps_its_ink() -> None:
    prepared = reader.preprocess(crop())  # 32 x 96 and padding, a stroke down its middle
    middle = prepared.shape[1] / 2
    widths = set()
    for seed in range(20):
        varied = reader.augment(prepared, np.random.default_rng(seed))
        assert varied.dtype == np.uint8
        assert varied.shape[0] == reader.READER_HEIGHT
        scale = varied.shape[1] / prepared.shape[1]
        assert reader.STRETCH[0] - 0.02 <= scale <= reader.STRETCH[1] + 0.02
        stroke = round(middle * scale)
        assert varied[16, stroke - 1 : stroke + 2].max() > 150  # the ink, fainter at most
        assert varied[:, : stroke - 8].mean() < 20  # the paper, with a little noise
        widths.add(varied.shape[1])
    assert len(widths) > 5


def test_augmenting_is_seeded() -> None:
    prepared = reader.preprocess(crop())
    first = reader.augment(prepared, np.random.default_rng(3))
    again = reader.augment(prepared, np.random.default_rng(3))
    other = reader.augment(prepared, np.random.default_rng(4))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_batches_of_like_widths_cover_every_crop_each_pass() -> None:
    widths = [10, 200, 12, 205, 11, 198, 13, 202]
    batches = reader.width_batches(widths, 4, np.random.default_rng(0))
    first_pass = [next(batches) for _ in range(2)]
    assert sorted(np.concatenate(first_pass).tolist()) == list(range(8))
    assert {frozenset(widths[i] < 100 for i in chosen) for chosen in first_pass} == {
        frozenset({True}),
        frozenset({False}),
    }


def test_a_saved_reader_opens_with_its_card_in_keras_and_onnx_alike(trained) -> None:
    model, _, folder = trained
    crops = [crop(), crop(dark_on_light=False, size=(30, 200))]
    by_keras = reader.open_reader(folder / "reader.keras")
    assert by_keras.card["name"] == "crnn"
    onnx_folder = folder / "onnx"
    onnx_folder.mkdir()
    reader.export_onnx(model, onnx_folder / "reader.onnx")
    by_onnx = reader.open_reader(onnx_folder / "reader.onnx")
    for a, b in zip(by_keras.read(crops), by_onnx.read(crops), strict=True):
        assert a.text == b.text
        assert abs(a.confidence - b.confidence) < 1e-4


def test_a_missing_reader_is_named_with_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nothing\.keras.*train-reader"):
        reader.open_reader(tmp_path / "nothing.keras")


def reading(text: str, least: float) -> reader.Reading:
    digits = [
        reader.ReadDigit(int(c), least if i == 0 else 0.999, [0.1] * 10, [0], (0.0, 1.0))
        for i, c in enumerate(text)
    ]
    return reader.Reading(digits, least)


def test_the_sure_threshold_keeps_misreads_out_of_sure_numbers() -> None:
    labels = ["12", "34", "56", "78", "90", "11"]
    readings = [
        reading("12", 0.99),
        reading("34", 0.95),
        reading("57", 0.60),  # misread, unsure
        reading("78", 0.90),
        reading("9", 0.70),  # misread, unsure
        reading("11", 0.50),
    ]
    chosen = reader.choose_sure(readings, labels, "six numbers")
    assert 0.70 < chosen["sure"] <= 0.90
    assert chosen["margin"] == pytest.approx((0.90 - 0.70) / 2)
    assert chosen["sure_share"] == pytest.approx(3 / 6)
    assert chosen["sure_exact"] == 1.0
    assert chosen["chosen_on"] == "six numbers"
