"""Evaluation agrees with Keras's own numbers, with itself, and with sums done by hand."""

from __future__ import annotations

import numpy as np
import pytest

from handwritten.evaluate import evaluate_model, format_report, mistakes, score
from handwritten.models import model_input
from handwritten.runtime import load_classifier


@pytest.fixture(scope="module")
def result(seed_model, mnist):
    return evaluate_model(seed_model, mnist.x_test, mnist.y_test)


@pytest.mark.integration
def test_shipped_seed_model_reaches_97_percent(result) -> None:
    print(f"shipped seed model: MNIST test accuracy {result.accuracy:.4f}, loss {result.loss:.4f}")
    assert result.n == 10000
    assert result.accuracy >= 0.970


@pytest.mark.integration
def test_agrees_with_keras_evaluate(result, mnist) -> None:
    keras_model = load_classifier("seed", "keras").model
    keras_model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = keras_model.evaluate(model_input(mnist.x_test), mnist.y_test, verbose=0)
    # Keras here, ONNX Runtime in `result`: an image whose two best digits tie to the last
    # bits may go either way, so one image of the 10,000 may differ, no more.
    assert result.accuracy == pytest.approx(accuracy, abs=1 / result.n)
    assert result.loss == pytest.approx(loss, rel=1e-4)


@pytest.mark.integration
def test_confusion_matrix_is_consistent(result, mnist) -> None:
    confusion = np.array(result.confusion)
    assert confusion.sum() == result.n
    assert (confusion.sum(axis=1) == np.bincount(mnist.y_test, minlength=10)).all()
    assert np.trace(confusion) / result.n == pytest.approx(result.accuracy)
    assert result.recall[3] == pytest.approx(confusion[3, 3] / confusion[3].sum())
    assert result.precision[3] == pytest.approx(confusion[3, 3] / confusion[:, 3].sum())


@pytest.mark.integration
def test_report_shows_the_numbers(result) -> None:
    report = format_report(result)
    assert f"accuracy {result.accuracy:.4f}" in report
    assert str(result.confusion[7][7]) in report


@pytest.mark.integration
def test_f1_is_the_harmonic_mean_of_precision_and_recall(result) -> None:
    for p, r, f1 in zip(result.precision, result.recall, result.f1, strict=True):
        assert min(p, r) <= f1 <= max(p, r)
        assert f1 == pytest.approx(2 * p * r / (p + r))
    assert [row["support"] for row in result.per_class()] == [sum(r) for r in result.confusion]
    assert f"{result.f1[7]:.4f}" in format_report(result)


def made_up(rows: list[tuple[int, float]]) -> np.ndarray:
    """Probabilities putting `confidence` on `digit` and the rest evenly on the other nine."""
    probabilities = np.zeros((len(rows), 10))
    for i, (digit, confidence) in enumerate(rows):
        probabilities[i] = (1 - confidence) / 9
        probabilities[i, digit] = confidence
    return probabilities


def test_scores_made_up_predictions_as_by_hand() -> None:
    labels = np.array([0, 0, 1, 1])
    result = score(made_up([(0, 0.9), (1, 0.6), (1, 0.8), (1, 0.7)]), labels)
    assert result.accuracy == 0.75
    assert result.precision[:2] == [1.0, pytest.approx(2 / 3)]
    assert result.recall[:2] == [0.5, 1.0]
    assert result.f1[:2] == [pytest.approx(2 / 3), pytest.approx(0.8)]
    assert result.f1[2:] == [0.0] * 8
    assert result.confusion[0][:2] == [1, 1]


def test_mistakes_come_most_confident_first() -> None:
    probabilities = made_up([(5, 0.6), (2, 0.9), (2, 0.8), (4, 0.7)])
    assert list(mistakes(probabilities, np.array([0, 1, 2, 3]))) == [1, 3, 0]
    assert len(mistakes(probabilities, np.array([5, 2, 2, 4]))) == 0


@pytest.mark.integration
def test_shipped_cnn_reaches_99_5_percent(cnn_model, mnist) -> None:
    result = evaluate_model(cnn_model, mnist.x_test, mnist.y_test)
    print(f"shipped cnn: MNIST test accuracy {result.accuracy:.4f}, loss {result.loss:.4f}")
    assert result.accuracy >= 0.995
