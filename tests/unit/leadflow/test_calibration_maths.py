"""Calibration maths on hand-checked tables and synthetic data with known coefficients."""

from __future__ import annotations

import numpy as np
import pytest

from leadflow.calibration.maths import (
    ThresholdRule,
    candidate_thresholds,
    conversion_by_band,
    fit_logistic,
    points_scale,
    propose_threshold,
    signal_lift,
    threshold_table,
    wilson_interval,
)

# Ten MQLs, checked by hand: scores and whether each converted.
SCORES = np.array([52, 55, 58, 61, 64, 67, 72, 78, 85, 93], dtype=float)
CONVERTED = np.array([0, 0, 1, 0, 0, 1, 1, 0, 1, 1], dtype=bool)


def test_threshold_table_by_hand():
    rows = threshold_table(SCORES, CONVERTED, np.array([50.0, 60.0, 70.0, 80.0, 95.0]))
    # > 50: all 10, 5 converted; > 60: 7 (61..93), 4 converted; > 70: 4, 3; > 80: 2, 2; > 95: none
    assert [(r.threshold, r.mqls, r.converted) for r in rows] == [
        (50.0, 10, 5),
        (60.0, 7, 4),
        (70.0, 4, 3),
        (80.0, 2, 2),
        (95.0, 0, 0),
    ]
    assert [r.precision for r in rows] == [0.5, 4 / 7, 0.75, 1.0, None]
    assert [r.recall for r in rows] == [1.0, 0.8, 0.6, 0.4, 0.0]
    assert rows[1].f_beta == pytest.approx(2 * (4 / 7) * 0.8 / (4 / 7 + 0.8))


def test_a_score_equal_to_the_threshold_is_not_an_mql():
    (row,) = threshold_table(SCORES, CONVERTED, np.array([64.0]))
    assert row.mqls == 5  # 67, 72, 78, 85, 93: "score > threshold", as the scoring model says


@pytest.mark.parametrize(
    "rule, expected",
    [
        (ThresholdRule("recall", 1.0), 57.0),  # 58 is the lowest converter: t must stay below it
        (ThresholdRule("precision", 0.75), 64.0),  # > 64: 67, 72, 78, 85, 93 -> 4/5; > 63 is 4/6
        (ThresholdRule("fbeta", 1.0), 66.0),  # F1 0.8 at 64, 65 and 66 (p = r = 0.8): the highest
    ],
)
def test_rules_pick_the_documented_row(rule, expected):
    rows = threshold_table(SCORES, CONVERTED, candidate_thresholds(SCORES, 1.0), beta=rule.value)
    chosen = propose_threshold(rows, rule)
    assert chosen is not None and chosen.threshold == expected


def test_recall_rule_by_hand():
    """Converters at 58, 67, 72, 85, 93. Keeping 4 of 5 (recall 0.8) drops only the 58: the
    highest threshold that still keeps 67 is 66 (score > 66)."""
    rows = threshold_table(SCORES, CONVERTED, candidate_thresholds(SCORES, 1.0))
    chosen = propose_threshold(rows, ThresholdRule("recall", 0.8))
    assert chosen is not None and (chosen.threshold, chosen.mqls, chosen.converted) == (66.0, 5, 4)


def test_a_precision_floor_nobody_reaches_proposes_nothing():
    rows = threshold_table(SCORES, CONVERTED, candidate_thresholds(SCORES, 1.0))
    assert propose_threshold([r for r in rows if r.threshold < 78], ThresholdRule("precision", 0.99)) is None


def test_bands_by_hand():
    bands = conversion_by_band(SCORES, CONVERTED, width=10)
    assert [(b.low, b.mqls, b.converted) for b in bands] == [(50, 3, 1), (60, 3, 1), (70, 2, 1), (80, 1, 1), (90, 1, 1)]
    assert bands[0].rate == pytest.approx(1 / 3)
    low, high = wilson_interval(1, 3)
    assert (bands[0].rate_low, bands[0].rate_high) == (low, high)
    assert 0.06 < low < 0.07 and 0.79 < high < 0.80  # Wilson 95% for 1/3, from the closed form


def test_lift_by_hand():
    present = np.array([[1, 0], [0, 0], [1, 1], [0, 1], [0, 0], [1, 0], [1, 1], [0, 0], [1, 1], [0, 0]], dtype=bool)
    a, b = signal_lift(present, CONVERTED, ["a", "b"])
    # a: MQLs 0,2,5,6,8 -> converted 2,5,6,8 = 4/5; base 5/10 -> lift 1.6; without: 1/5
    assert (a.mqls_with, a.rate_with, a.rate_without, a.lift) == (5, 0.8, 0.2, pytest.approx(1.6))
    # b: MQLs 2,3,6,8 -> converted 2,6,8 = 3/4 -> lift 1.5; without: 2/6
    assert (b.mqls_with, b.rate_with, b.lift) == (4, 0.75, pytest.approx(1.5))
    assert b.rate_without == pytest.approx(2 / 6)


def test_regression_recovers_known_coefficients():
    rng = np.random.default_rng(42)
    n = 40_000
    x = np.column_stack([rng.integers(0, 2, n), rng.random(n) * 2, rng.integers(0, 2, n)]).astype(float)
    truth = np.array([1.2, -0.8, 0.0])
    p = 1 / (1 + np.exp(-(-0.5 + x @ truth)))
    y = rng.random(n) < p
    fit = fit_logistic(x, y, l2=0.0)
    assert fit.converged and fit.iterations < 15
    assert fit.intercept == pytest.approx(-0.5, abs=0.08)
    assert np.allclose(fit.coefficients, truth, atol=0.08)


def test_l2_shrinks_towards_zero_and_keeps_a_separable_fit_finite():
    x = np.array([[0.0], [0.0], [1.0], [1.0]])
    y = np.array([False, False, True, True])  # perfectly separable: no finite MLE
    loose, tight = fit_logistic(x, y, l2=0.1), fit_logistic(x, y, l2=10.0)
    assert np.isfinite(loose.coefficients[0]) and 0 < tight.coefficients[0] < loose.coefficients[0]


def test_points_scale_keeps_the_models_size():
    # two signals, mean units 1 and 0.5; live 10 and 20 points -> live size 10 + 10 = 20
    scale = points_scale([0.5, 0.25], [10, 20], [1.0, 0.5])
    assert 0.5 * 1.0 * scale + 0.25 * 0.5 * scale == pytest.approx(20)
    assert points_scale([0.0, 0.0], [10, 20], [1.0, 0.5]) == 0.0
