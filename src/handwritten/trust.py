"""How sure an answer is: calibration, and the status every prediction carries.

A network's probabilities are calibrated when, of the answers given with 90% confidence,
90% are right. The lean network is calibrated by one temperature, fitted on the validation
split after training and kept inside the model file (`models.with_temperature`); the
expected calibration error (ECE) measures what is left.

Each answer then gets a status from two thresholds kept in the model card:

- `not-a-digit` when the "not a digit" probability (the 11th output; for a 10-output network,
  one minus its confidence) reaches `reject`;
- `digit` when the best digit's probability reaches `sure`;
- `unsure` otherwise: the best guess, with the other digits it could be (`alternatives`).

`no-ink` and `error` come from preprocessing, before any network runs. The thresholds are
chosen on people's digits alone (the validation split and the development drawings and
photos): `reject` so that few of them are refused, `sure` so that sure answers are almost
always right. The non-digits are never used to choose, only to measure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

NUM_DIGITS = 10
ECE_BINS = 15
STATUSES = ("digit", "unsure", "not-a-digit", "no-ink", "error")
MAX_ALTERNATIVES = 2
ALTERNATIVE_FLOOR = 0.05
"""A digit is offered as an alternative when the model gives it at least this probability."""
REJECT_BUDGET = 0.005
"""At most this share of each set of people's digits may be answered "not a digit"."""
SURE_ACCURACY = 0.998
"""Sure answers must be at least this often right on each set of people's digits."""
RUNTIME_TOLERANCE = 5e-6
"""How far apart two runtimes' probabilities for one image may be: Keras and ONNX Runtime,
or one runtime on two CPUs' kernels, differ in the last bits (at most 1.4e-6 over the shipped
models and the 5,521 images of MNIST's validation split and people's drawings, photos and
non-digits, measured on an AMD EPYC). Thresholds keep at least this far from every score
they are chosen on, so the same image gets the same answer everywhere."""


@dataclass(frozen=True)
class Thresholds:
    """When an answer is sure, and when it is "not a digit"; recorded in the model card."""

    sure: float = 0.8
    reject: float = 0.5

    def to_json(self) -> dict[str, float]:
        return asdict(self)


def thresholds_of(card: dict[str, Any] | None) -> Thresholds:
    """The thresholds a card records, or the defaults for a model that has none."""
    recorded = (card or {}).get("trust") or {}
    return Thresholds(
        sure=float(recorded.get("sure", Thresholds.sure)),
        reject=float(recorded.get("reject", Thresholds.reject)),
    )


def digit_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """The digits' columns of a network's output (10 or 11 columns)."""
    return _wide(probabilities)[..., :NUM_DIGITS]


def _wide(probabilities: np.ndarray) -> np.ndarray:
    """In float64: a float32 output compared with a threshold chosen just above another
    float32 would round the threshold back down to it (NumPy compares at the array's
    precision), and answer one image sure that the choice meant to leave unsure."""
    return np.asarray(probabilities, dtype=np.float64)


def not_a_digit_scores(probabilities: np.ndarray) -> np.ndarray:
    """How much each output says "not a digit": the 11th probability where the network has
    one, else one minus the best digit's probability (the only doubt a 10-output network
    can express)."""
    probabilities = _wide(probabilities)
    if probabilities.shape[-1] > NUM_DIGITS:
        return probabilities[..., NUM_DIGITS]
    return 1.0 - probabilities.max(axis=-1)


@dataclass(frozen=True)
class Judgement:
    """One answer's status, best guess (None for "not a digit") and alternatives."""

    status: str
    digit: int | None
    alternatives: list[int]


def judge(probabilities: np.ndarray, thresholds: Thresholds) -> Judgement:
    """The status of one network output (see the module's docstring)."""
    status = str(statuses(np.asarray(probabilities)[None], thresholds)[0])
    if status == "not-a-digit":
        return Judgement(status, None, [])
    digits = digit_probabilities(probabilities)
    best = int(digits.argmax())
    return Judgement(status, best, alternatives(digits, best) if status == "unsure" else [])


def statuses(probabilities: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """The status of every row at once: the one rule, for one answer (`judge`) or thousands."""
    confidence = digit_probabilities(probabilities).max(axis=-1)
    rejected = not_a_digit_scores(probabilities) >= thresholds.reject
    sure = confidence >= thresholds.sure
    return np.where(rejected, "not-a-digit", np.where(sure, "digit", "unsure"))


READER_SURE = 0.9
"""A reader's digit is sure at this confidence when its card records no threshold."""


def reader_sure(card: dict | None) -> float:
    """The confidence at which a sequence reader's digit is sure, as its card records it."""
    return float(((card or {}).get("trust") or {}).get("sure", READER_SURE))


def alternatives(digits: np.ndarray, best: int) -> list[int]:
    """The other digits worth naming, most probable first; at least the runner-up."""
    order = [int(d) for d in np.argsort(-digits, kind="stable") if d != best]
    named = [d for d in order[:MAX_ALTERNATIVES] if digits[d] >= ALTERNATIVE_FLOOR]
    return named or order[:1]


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE over equal-width confidence bins: the gap between confidence and accuracy,
    weighted by how many answers fall in each bin. Confidence is the best digit's."""
    rows = reliability(probabilities, labels, bins)
    total = sum(row["count"] for row in rows)
    return float(
        sum(row["count"] * abs(row["confidence"] - row["accuracy"]) for row in rows)
    ) / max(1, total)


def reliability(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> list[dict[str, float | int]]:
    """Per confidence bin: how many answers, their mean confidence and their accuracy; what a
    reliability diagram draws and the ECE sums."""
    confidence, correct = _confidence_and_correct(probabilities, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            rows.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "count": int(chosen.sum()),
                    "confidence": float(confidence[chosen].mean()),
                    "accuracy": float(correct[chosen].mean()),
                }
            )
    return rows


def _confidence_and_correct(
    probabilities: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    digits = digit_probabilities(probabilities)
    return digits.max(axis=1), (digits.argmax(axis=1) == np.asarray(labels)).astype(float)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `labels` (Guo et al.,
    2017): one number, so it cannot change which class wins, only how sure it sounds."""
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)

    def loss(log_temperature: float) -> float:
        scaled = logits / np.exp(log_temperature)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float((log_norm - scaled[np.arange(len(labels)), labels]).mean())

    found = minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(found.x))


def choose_thresholds(sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Thresholds from people's digits alone: each set is (probabilities, labels).

    `reject` is the lowest threshold that refuses at most `REJECT_BUDGET` of every set;
    `sure` the lowest that keeps sure answers `SURE_ACCURACY` right in every set. Choosing
    per set, not pooled, keeps the 5,000 validation images from drowning out the few hundred
    drawings and photos people made.

    Neither is left on a score: each goes to the middle of a gap between the scores of all
    the sets' images (`mid_gap`), so that a difference in the last bits between two runtimes
    or two CPUs' kernels cannot flip an answer. `margin` records how far the nearest score is.
    """
    pooled = _wide(np.concatenate([probabilities for probabilities, _ in sets.values()]))
    lowest_reject = max(_reject_threshold(probabilities) for probabilities, _ in sets.values())
    reject, reject_margin = mid_gap(lowest_reject, not_a_digit_scores(pooled))
    lowest_sure = max(_sure_threshold(p, y, reject) for p, y in sets.values())
    sure, sure_margin = mid_gap(
        lowest_sure,
        digit_probabilities(pooled).max(axis=-1),
        allowed=lambda sure: all(_sure_enough(p, y, sure, reject) for p, y in sets.values()),
    )
    thresholds = Thresholds(sure=sure, reject=reject)
    return {
        **thresholds.to_json(),
        "margin": {"sure": sure_margin, "reject": reject_margin},
        "chosen_on": sorted(sets),
        "rule": f"reject: at most {REJECT_BUDGET:.1%} of each set's digits refused; sure: "
        f"sure answers at least {SURE_ACCURACY:.1%} right in each set; each in the middle of "
        f"a gap between the sets' scores, at least {RUNTIME_TOLERANCE:g} from the nearest "
        "where the rule allows",
        "coverage": {name: answer_shares(p, y, thresholds) for name, (p, y) in sets.items()},
    }


def mid_gap(
    lowest: float,
    scores: np.ndarray,
    allowed: Callable[[float], bool] = lambda threshold: True,
    margin: float = RUNTIME_TOLERANCE,
) -> tuple[float, float]:
    """Where to put a threshold that must be at least `lowest`, and its margin (half its gap).

    A threshold answers yes for scores at or above it, so each gap between two neighbouring
    scores is a range of thresholds that all answer alike, and its middle is the one furthest
    from both. The gap holding `lowest` answers every score as `lowest` does; where it is
    narrower than twice `margin` (float32 scores crowd near 1), the first gap above it that is
    wide enough and still `allowed` by the rule is taken instead, answering a few more images
    the cautious way. Scores are probabilities: the outermost gaps run to 0 and 1.
    """
    edges = np.unique(np.concatenate([[0.0], _wide(scores), [1.0]]))
    first = max(0, int(np.searchsorted(edges, lowest, side="left")) - 1)
    gaps = [(float(edges[i]), float(edges[i + 1])) for i in range(first, len(edges) - 1)]
    for low, high in gaps:
        if (high - low) / 2 >= margin and allowed((low + high) / 2):
            return (low + high) / 2, (high - low) / 2
    low, high = gaps[0]
    return (low + high) / 2, (high - low) / 2


def _reject_threshold(probabilities: np.ndarray) -> float:
    scores = np.sort(not_a_digit_scores(probabilities))
    allowed = int(np.floor(REJECT_BUDGET * len(scores)))
    above = scores[len(scores) - allowed - 1] if allowed < len(scores) else 0.0
    return float(min(1.0, np.nextafter(above, np.inf)))


def _sure_threshold(probabilities: np.ndarray, labels: np.ndarray, reject: float) -> float:
    """The lowest confidence threshold whose sure answers are right often enough."""
    kept = not_a_digit_scores(probabilities) < reject
    digits = digit_probabilities(probabilities)[kept]
    confidence = digits.max(axis=1)
    correct = digits.argmax(axis=1) == np.asarray(labels)[kept]
    order = np.argsort(-confidence, kind="stable")
    wrong = np.cumsum(~correct[order])
    accuracy = 1.0 - wrong / np.arange(1, len(order) + 1)
    good = np.flatnonzero(accuracy >= SURE_ACCURACY)
    if len(good) == 0:
        return 1.0
    # The longest run of answers, most confident first, that is still accurate enough; the
    # threshold sits just above the first answer that would break it.
    last = good[-1]
    if last + 1 >= len(order):
        return float(confidence[order[last]])
    return float(np.nextafter(confidence[order[last + 1]], np.inf))


def _sure_enough(probabilities: np.ndarray, labels: np.ndarray, sure: float, reject: float) -> bool:
    """Whether the answers that `sure` and `reject` make sure are right often enough."""
    status = statuses(probabilities, Thresholds(sure=sure, reject=reject)) == "digit"
    best = digit_probabilities(probabilities).argmax(axis=-1)
    right = best[status] == np.asarray(labels)[status]
    return not status.any() or right.mean() >= SURE_ACCURACY


def answer_shares(
    probabilities: np.ndarray, labels: np.ndarray | None, thresholds: Thresholds
) -> dict[str, float | int | None]:
    """The share of each status, and how often the sure answers are right (labels given)."""
    status = statuses(probabilities, thresholds)
    sure = status == "digit"
    shares: dict[str, float | int | None] = {"images": len(status)}
    for name in ("digit", "unsure", "not-a-digit"):
        shares[name] = float((status == name).mean()) if len(status) else 0.0
    if labels is not None:
        best = digit_probabilities(probabilities).argmax(axis=1)
        right = best[sure] == np.asarray(labels)[sure]
        shares["sure_accuracy"] = float(right.mean()) if sure.any() else None
        shares["sure_wrong"] = int((~right).sum())
    return shares
