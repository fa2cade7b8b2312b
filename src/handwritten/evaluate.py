"""Score a model on the MNIST test set: accuracy, loss, per-class precision, recall and F1."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from handwritten.predict import Classifier
from handwritten.trust import digit_probabilities, expected_calibration_error

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
    f1: list[float]
    confusion: list[list[int]]
    ece: float
    """Expected calibration error (15 bins): how far confidence is from accuracy."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def per_class(self) -> list[dict[str, Any]]:
        """One row per digit, `support` being how many test images truly show that digit."""
        return [
            {
                "digit": digit,
                "precision": self.precision[digit],
                "recall": self.recall[digit],
                "f1": self.f1[digit],
                "support": sum(self.confusion[digit]),
            }
            for digit in range(NUM_CLASSES)
        ]


def evaluate_model(classifier: Classifier, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Evaluate on uint8 MNIST-style images, through the same input path as prediction."""
    return score(classifier.probabilities(images), labels)


def score(probabilities: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Score probabilities already computed, so a report can reuse them instead of re-running.

    The loss is Keras's sparse categorical cross-entropy on probabilities (clipped at 1e-7).
    A network's "not a digit" output is left out: on digits the best guess is a digit.
    """
    probabilities = digit_probabilities(probabilities)
    predicted = probabilities.argmax(axis=1)
    labels = np.asarray(labels, dtype=np.int64)
    picked = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    loss = -np.log(np.clip(picked, EPSILON, 1.0 - EPSILON))
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positives = np.diag(confusion)
    precision = _ratio(true_positives, confusion.sum(axis=0))
    recall = _ratio(true_positives, confusion.sum(axis=1))
    return Evaluation(
        accuracy=float((predicted == labels).mean()),
        loss=float(loss.mean()),
        n=len(labels),
        precision=precision,
        recall=recall,
        f1=[_harmonic_mean(p, r) for p, r in zip(precision, recall, strict=True)],
        confusion=confusion.tolist(),
        ece=expected_calibration_error(probabilities, labels),
    )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> list[float]:
    return [float(n / d) if d else 0.0 for n, d in zip(numerator, denominator, strict=True)]


def _harmonic_mean(precision: float, recall: float) -> float:
    total = precision + recall
    return 2 * precision * recall / total if total else 0.0


def mistakes(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Indices of the misclassified images, most confidently wrong first.

    Those are the ones worth looking at: a confident mistake is either a mislabelled image or
    something the model has truly not learnt; a hesitant one is often an ugly digit.
    """
    probabilities = digit_probabilities(probabilities)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(labels))
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")]


def format_report(result: Evaluation) -> str:
    """The plain-text report: headline numbers, per-class table, confusion matrix."""
    lines = [
        f"accuracy {result.accuracy:.4f}  loss {result.loss:.4f}  on {result.n} test images",
        "",
        "digit  precision  recall      f1",
    ]
    for row in result.per_class():
        lines.append(
            f"{row['digit']:>5}  {row['precision']:>9.4f}  {row['recall']:>6.4f}  {row['f1']:>6.4f}"
        )
    lines += ["", "confusion matrix (rows: true digit, columns: predicted)"]
    lines.append("     " + "".join(f"{digit:>6}" for digit in range(NUM_CLASSES)))
    for digit, row in enumerate(result.confusion):
        lines.append(f"{digit:>5}" + "".join(f"{count:>6}" for count in row))
    return "\n".join(lines)


def edit_distance(read: str, truth: str) -> int:
    """Levenshtein distance: the fewest characters inserted, deleted or replaced to turn
    `read` into `truth` (Wagner-Fischer, one row at a time). The locked dependencies hold no
    edit-distance library outside TensorFlow, which this fast path does not load."""
    previous = list(range(len(truth) + 1))
    for i, mine in enumerate(read, start=1):
        current = [i]
        for j, theirs in enumerate(truth, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (mine != theirs))
            )
        previous = current
    return previous[-1]


def character_error_rate(read: list[str | None], truth: list[str]) -> float:
    """The field's character error rate: edit distances summed over the set, divided by the
    labels' characters summed (a number not read at all costs its whole length)."""
    edits = sum(
        edit_distance(answer or "", label) for answer, label in zip(read, truth, strict=True)
    )
    return edits / max(1, sum(len(label) for label in truth))
