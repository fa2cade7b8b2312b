"""Evaluation agrees with Keras's own numbers and with itself."""

from __future__ import annotations

import numpy as np
import pytest

from handwritten.evaluate import evaluate_model, format_report
from handwritten.preprocess import scale_pixels

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def result(seed_model, mnist):
    return evaluate_model(seed_model, mnist.x_test, mnist.y_test)


def test_shipped_seed_model_reaches_97_percent(result) -> None:
    print(f"shipped seed model: MNIST test accuracy {result.accuracy:.4f}, loss {result.loss:.4f}")
    assert result.n == 10000
    assert result.accuracy >= 0.970


def test_agrees_with_keras_evaluate(result, seed_model, mnist) -> None:
    seed_model.model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = seed_model.model.evaluate(scale_pixels(mnist.x_test), mnist.y_test, verbose=0)
    assert result.accuracy == pytest.approx(accuracy, abs=1e-6)
    assert result.loss == pytest.approx(loss, rel=1e-4)


def test_confusion_matrix_is_consistent(result, mnist) -> None:
    confusion = np.array(result.confusion)
    assert confusion.sum() == result.n
    assert (confusion.sum(axis=1) == np.bincount(mnist.y_test, minlength=10)).all()
    assert np.trace(confusion) / result.n == pytest.approx(result.accuracy)
    assert result.recall[3] == pytest.approx(confusion[3, 3] / confusion[3].sum())
    assert result.precision[3] == pytest.approx(confusion[3, 3] / confusion[:, 3].sum())


def test_report_shows_the_numbers(result) -> None:
    report = format_report(result)
    assert f"accuracy {result.accuracy:.4f}" in report
    assert str(result.confusion[7][7]) in report
