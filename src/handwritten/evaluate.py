"""Score a model on the MNIST test set: accuracy, loss, per-class precision and recall."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from handwritten.predict import Classifier

NUM_CLASSES = 10
EPSILON = 1e-7


@dataclass(frozen=True)
class Evaluation:
    """What `handwritten evaluate` reports; the confusion matrix rows are true labels."""

    accuracy: float
    loss: float
    n: int
    precision: list[float]
    recall: list[float]
    confusion: list[list[int]]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_model(classifier: Classifier, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Evaluate on uint8 MNIST-style images, through the same input path as prediction.

    The loss is Keras's sparse categorical cross-entropy on probabilities (clipped at 1e-7).
    """
    probabilities = classifier.probabilities(images)
    predicted = probabilities.argmax(axis=1)
    labels = np.asarray(labels, dtype=np.int64)
    picked = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    loss = -np.log(np.clip(picked, EPSILON, 1.0 - EPSILON))
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positives = np.diag(confusion)
    return Evaluation(
        accuracy=float((predicted == labels).mean()),
        loss=float(loss.mean()),
        n=len(labels),
        precision=_ratio(true_positives, confusion.sum(axis=0)),
        recall=_ratio(true_positives, confusion.sum(axis=1)),
        confusion=confusion.tolist(),
    )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> list[float]:
    return [float(n / d) if d else 0.0 for n, d in zip(numerator, denominator, strict=True)]


def format_report(result: Evaluation) -> str:
    """The plain-text report: headline numbers, per-class table, confusion matrix."""
    lines = [
        f"accuracy {result.accuracy:.4f}  loss {result.loss:.4f}  on {result.n} test images",
        "",
        "digit  precision  recall",
    ]
    for digit in range(NUM_CLASSES):
        lines.append(f"{digit:>5}  {result.precision[digit]:>9.4f}  {result.recall[digit]:>6.4f}")
    lines += ["", "confusion matrix (rows: true digit, columns: predicted)"]
    lines.append("     " + "".join(f"{digit:>6}" for digit in range(NUM_CLASSES)))
    for digit, row in enumerate(result.confusion):
        lines.append(f"{digit:>5}" + "".join(f"{count:>6}" for count in row))
    return "\n".join(lines)
