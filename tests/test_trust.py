"""Calibration and statuses: ECE, the temperature fit, thresholds and the status of answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handwritten import trust
from handwritten.trust import Thresholds


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _row(**probabilities: float) -> np.ndarray:
    """An 11-column output: digits d0..d9 given by name, the rest of the mass on none."""
    row = np.zeros(11)
    for name, value in probabilities.items():
        row[10 if name == "none" else int(name[1:])] = value
    return row


def test_sure_unsure_and_not_a_digit_follow_the_thresholds():
    thresholds = Thresholds(sure=0.9, reject=0.5)
    sure = trust.judge(_row(d7=0.95, d1=0.04, none=0.01), thresholds)
    unsure = trust.judge(_row(d6=0.55, d5=0.35, d0=0.06, none=0.04), thresholds)
    refused = trust.judge(_row(d3=0.3, none=0.7), thresholds)
    assert (sure.status, sure.digit, sure.alternatives) == ("digit", 7, [])
    assert (unsure.status, unsure.digit, unsure.alternatives) == ("unsure", 6, [5, 0])
    assert (refused.status, refused.digit, refused.alternatives) == ("not-a-digit", None, [])


def test_an_unsure_answer_names_at_least_the_runner_up():
    spread = np.full(10, 0.04)
    spread[[2, 8]] = [0.4, 0.28]
    assert trust.judge(spread, Thresholds(sure=0.9, reject=0.99)).alternatives == [8]
    faint = np.append(np.full(10, 0.03), 0.23)
    faint[4] = 0.5  # every other digit under the floor: the likeliest of them is still named
    assert trust.judge(faint, Thresholds(sure=0.9, reject=0.95)).alternatives == [0]


def test_a_ten_output_network_refuses_by_its_doubt():
    doubtful = np.full(10, 0.1)
    assert trust.not_a_digit_scores(doubtful) == pytest.approx(0.9)
    assert trust.judge(doubtful, Thresholds(sure=0.9, reject=0.8)).status == "not-a-digit"
    assert trust.judge(doubtful, Thresholds(sure=0.9, reject=0.95)).status == "unsure"


@given(st.lists(st.floats(0.01, 1.0), min_size=11, max_size=11), st.floats(0.3, 1.0))
def test_statuses_of_a_batch_match_judging_each_row(values, sure):
    row = np.array(values) / sum(values)
    thresholds = Thresholds(sure=sure, reject=0.4)
    assert trust.statuses(row[None], thresholds)[0] == trust.judge(row, thresholds).status


def test_ece_is_zero_when_confidence_is_accuracy_and_the_gap_when_it_is_not():
    # Ten answers at 0.8 confidence, eight right: calibrated. Ten at 0.95, five right: off by 0.45.
    calibrated = np.tile(_digits(0.8), (10, 1))
    labels = np.array([0] * 8 + [1] * 2)
    assert trust.expected_calibration_error(calibrated, labels) == pytest.approx(0.0, abs=1e-9)
    overconfident = np.tile(_digits(0.95), (10, 1))
    labels = np.array([0] * 5 + [1] * 5)
    assert trust.expected_calibration_error(overconfident, labels) == pytest.approx(0.45)


def _digits(top: float) -> np.ndarray:
    row = np.full(10, (1 - top) / 9)
    row[0] = top
    return row


def test_reliability_bins_count_every_answer():
    rng = np.random.default_rng(0)
    probabilities = _softmax(rng.normal(0, 3, (500, 10)))
    labels = rng.integers(0, 10, 500)
    bins = trust.reliability(probabilities, labels)
    assert sum(row["count"] for row in bins) == 500
    assert all(row["low"] <= row["confidence"] <= row["high"] for row in bins)


def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, (20_000, 11))
    truth = _softmax(logits / 2.5)
    labels = np.array([rng.choice(11, p=row) for row in truth])
    assert trust.fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.05)


def test_thresholds_keep_each_sets_refusals_and_sure_mistakes_within_their_budgets():
    rng = np.random.default_rng(2)
    sets = {}
    for name, size, noise in (("validation", 5000, 2.0), ("drawings", 400, 1.0)):
        labels = rng.integers(0, 10, size)
        logits = rng.normal(0, noise, (size, 11))
        logits[np.arange(size), labels] += 7.0
        sets[name] = (_softmax(logits), labels)
    chosen = trust.choose_thresholds(sets)
    thresholds = Thresholds(sure=chosen["sure"], reject=chosen["reject"])
    for name, (probabilities, labels) in sets.items():
        shares = trust.answer_shares(probabilities, labels, thresholds)
        assert shares["not-a-digit"] <= trust.REJECT_BUDGET, name
        assert shares["sure_accuracy"] >= trust.SURE_ACCURACY, name
        assert shares["digit"] > 0.3, name
    assert chosen["chosen_on"] == ["drawings", "validation"]


def test_thresholds_sit_mid_gap_so_a_nudge_within_the_margin_changes_no_answer():
    rng = np.random.default_rng(3)
    sets = {}
    for name, size in (("validation", 3000), ("drawings", 300)):
        labels = rng.integers(0, 10, size)
        logits = rng.normal(0, 2.0, (size, 11))
        logits[np.arange(size), labels] += 6.0
        # float32, as networks answer: many scores tie or nearly tie.
        sets[name] = (_softmax(logits).astype(np.float32), labels)
    chosen = trust.choose_thresholds(sets)
    pooled = np.concatenate([probabilities for probabilities, _ in sets.values()])
    for name, scores in (
        ("reject", trust.not_a_digit_scores(pooled)),
        ("sure", trust.digit_probabilities(pooled).max(axis=1)),
    ):
        margin = chosen["margin"][name]
        assert margin >= trust.RUNTIME_TOLERANCE, name
        assert np.abs(scores - chosen[name]).min() == pytest.approx(margin, rel=1e-9), name
    answers = trust.statuses(pooled, Thresholds(chosen["sure"], chosen["reject"]))
    for nudge in (-0.99, 0.99):
        moved = Thresholds(
            sure=chosen["sure"] + nudge * chosen["margin"]["sure"],
            reject=chosen["reject"] + nudge * chosen["margin"]["reject"],
        )
        assert (trust.statuses(pooled, moved) == answers).all(), nudge


def test_mid_gap_is_halfway_between_the_scores_around_the_lowest_threshold():
    scores = np.array([0.2, 0.5, 0.9])
    assert trust.mid_gap(float(np.nextafter(0.5, 1.0)), scores) == pytest.approx((0.7, 0.2))
    assert trust.mid_gap(0.5, scores) == pytest.approx((0.35, 0.15))
    assert trust.mid_gap(0.95, scores) == pytest.approx((0.95, 0.05))
    assert trust.mid_gap(0.1, scores) == pytest.approx((0.1, 0.1))


def test_a_gap_too_narrow_for_two_runtimes_gives_way_to_the_next_wide_one_the_rule_allows():
    # float32 confidences crowd near 1: neighbours 6e-8 apart leave no room for the last bits.
    crowded = np.float32(0.99) + np.arange(5, dtype=np.float32) * np.float32(6e-8)
    scores = np.concatenate([crowded, [0.995, 0.999]]).astype(np.float64)
    lowest = float(np.nextafter(crowded[1], 1.0))
    threshold, margin = trust.mid_gap(lowest, scores)
    assert margin >= trust.RUNTIME_TOLERANCE
    assert threshold == pytest.approx((crowded[-1] + 0.995) / 2)
    # A rule that forbids that gap moves the threshold to the next one.
    threshold, _ = trust.mid_gap(lowest, scores, allowed=lambda t: t > 0.995)
    assert threshold == pytest.approx((0.995 + 0.999) / 2)


def test_a_card_without_thresholds_gets_the_defaults():
    assert trust.thresholds_of(None) == Thresholds()
    recorded = trust.thresholds_of({"trust": {"sure": 0.7, "reject": 0.2, "rule": "..."}})
    assert recorded == Thresholds(sure=0.7, reject=0.2)


def test_a_float32_answer_just_under_the_threshold_stays_unsure():
    # A threshold chosen just above a float32 confidence (as choose_thresholds does) must
    # not round back down to it when the network's output is float32.
    row = np.zeros(10, np.float32)
    row[3], row[5] = np.float32(0.9123), np.float32(1 - 0.9123)
    threshold = float(np.nextafter(float(row[3]), np.inf))
    thresholds = Thresholds(sure=threshold, reject=0.99)
    assert trust.judge(row, thresholds).status == "unsure"
    assert trust.statuses(row[None], thresholds)[0] == "unsure"
