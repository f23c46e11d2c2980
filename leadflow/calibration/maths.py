"""Calibration maths: pure functions on arrays (numpy only; no Kafka, no files, no clock).

- ``conversion_by_band``: conversion rate per score band, with a Wilson 95% interval;
- ``threshold_table``: MQL volume, precision and recall if the MQL threshold were ``t``
  (a lead is an MQL when its score is strictly above ``t``, as in the scoring model);
- ``propose_threshold``: one of three documented rules picks a row of that table;
- ``signal_lift``: conversion rate of MQLs carrying a signal over the cohort's rate;
- ``fit_logistic``: L2-regularised logistic regression fitted by Newton's method (IRLS);
- ``points_scale``: points per logit unit that keeps the refitted model's size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

RULES = ("recall", "precision", "fbeta")
Rule = Literal["recall", "precision", "fbeta"]
_Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Band:
    low: float  # scores in [low, high); high is None for the open top band
    high: float | None
    mqls: int
    converted: int
    rate: float | None
    rate_low: float | None  # Wilson 95% interval
    rate_high: float | None


@dataclass(frozen=True, slots=True)
class ThresholdRow:
    threshold: float  # MQL when score > threshold
    mqls: int
    converted: int
    precision: float | None  # None when no lead would be an MQL
    recall: float
    f_beta: float


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """How the threshold is chosen (``leadflow calibrate --rule``):

    - ``recall``: the highest threshold that keeps at least ``value`` of the conversions
      (default 0.9: "the score 90% of our converted leads had at handoff");
    - ``precision``: the lowest threshold whose MQLs convert at least at ``value``;
    - ``fbeta``: the threshold with the highest F-beta (``value`` = beta; < 1 favours precision).
    """

    kind: Rule
    value: float

    def describe(self) -> str:
        if self.kind == "recall":
            return f"highest threshold keeping >= {self.value:.0%} of conversions"
        if self.kind == "precision":
            return f"lowest threshold whose MQLs convert at >= {self.value:.0%}"
        return f"highest F-beta (beta = {self.value:g})"


@dataclass(frozen=True, slots=True)
class SignalLift:
    signal: str
    mqls_with: int
    rate_with: float | None
    rate_without: float | None
    lift: float | None  # rate_with / the cohort's rate


@dataclass(frozen=True, slots=True)
class LogisticFit:
    intercept: float
    coefficients: tuple[float, ...]  # logit change per unit of each feature
    iterations: int
    converged: bool
    l2: float


def wilson_interval(successes: int, trials: int, z: float = _Z95) -> tuple[float, float] | None:
    if trials == 0:
        return None
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def conversion_by_band(scores: FloatArray, converted: BoolArray, *, width: float) -> list[Band]:
    """Bands of ``width`` points from the lowest score's band to the highest (empty bands
    inside the range are kept, so the chart's axis is even)."""
    if width <= 0:
        raise ValueError(f"band width must be > 0, got {width}")
    if scores.size == 0:
        return []
    first = math.floor(float(scores.min()) / width) * width
    last = math.floor(float(scores.max()) / width) * width
    index = np.floor((scores - first) / width).astype(np.int64)
    count = int(round((last - first) / width)) + 1
    mqls = np.bincount(index, minlength=count)
    wins = np.bincount(index, weights=converted.astype(np.float64), minlength=count)
    bands = []
    for i in range(count):
        n, k = int(mqls[i]), int(round(wins[i]))
        interval = wilson_interval(k, n)
        bands.append(
            Band(
                low=first + i * width,
                high=first + (i + 1) * width,
                mqls=n,
                converted=k,
                rate=k / n if n else None,
                rate_low=interval[0] if interval else None,
                rate_high=interval[1] if interval else None,
            )
        )
    return bands


def candidate_thresholds(scores: FloatArray, step: float = 1.0) -> FloatArray:
    """Every ``step`` points from just below the lowest score (everyone an MQL) to the highest."""
    if scores.size == 0:
        return np.zeros(0)
    low = math.floor(float(scores.min()) / step) * step
    if low >= float(scores.min()):
        low -= step
    high = math.ceil(float(scores.max()) / step) * step
    return np.arange(low, high + step / 2, step)


def threshold_table(
    scores: FloatArray, converted: BoolArray, thresholds: FloatArray, *, beta: float = 1.0
) -> list[ThresholdRow]:
    """Rows for each threshold; O((n + t) log n) via one sort and a cumulative sum."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    wins_from = np.concatenate([np.cumsum(converted[order][::-1])[::-1], [0]])  # conversions at index >= i
    total_wins = int(wins_from[0]) if scores.size else 0
    first_kept = np.searchsorted(sorted_scores, thresholds, side="right")  # scores > t start here
    rows = []
    b2 = beta * beta
    for t, start in zip(thresholds.tolist(), first_kept.tolist()):
        kept = int(scores.size - start)
        wins = int(wins_from[start])
        precision = wins / kept if kept else None
        recall = wins / total_wins if total_wins else 0.0
        p = precision or 0.0
        f = (1 + b2) * p * recall / (b2 * p + recall) if (p + recall) > 0 else 0.0
        rows.append(ThresholdRow(float(t), kept, wins, precision, recall, f))
    return rows


def propose_threshold(rows: Sequence[ThresholdRow], rule: ThresholdRule) -> ThresholdRow | None:
    """The row the rule picks; None when no threshold satisfies it (e.g. a precision floor
    above what any threshold reaches). ``rows`` in increasing threshold order."""
    useful = [r for r in rows if r.mqls > 0]
    if rule.kind == "recall":
        meeting = [r for r in useful if r.recall >= rule.value]
        return meeting[-1] if meeting else None
    if rule.kind == "precision":
        return next((r for r in useful if (r.precision or 0.0) >= rule.value), None)
    if rule.kind == "fbeta":
        best = max((r.f_beta for r in useful), default=None)
        return None if best is None else [r for r in useful if r.f_beta == best][-1]
    raise ValueError(f"unknown rule {rule.kind!r}; expected one of {', '.join(RULES)}")


def signal_lift(present: BoolArray, converted: BoolArray, names: Sequence[str]) -> list[SignalLift]:
    """``present[i, j]``: MQL i carried signal j at handoff (non-zero points)."""
    n = converted.size
    base = float(converted.mean()) if n else 0.0
    with_counts = present.sum(axis=0)
    with_wins = (present & converted[:, None]).sum(axis=0)
    total_wins = int(converted.sum())
    out = []
    for j, name in enumerate(names):
        k, w = int(with_counts[j]), int(with_wins[j])
        rate_with = w / k if k else None
        rate_without = (total_wins - w) / (n - k) if n - k else None
        lift = rate_with / base if rate_with is not None and base > 0 else None
        out.append(SignalLift(name, k, rate_with, rate_without, lift))
    return out


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = np.exp(-np.logaddexp(0.0, -z))
    return out


def _penalised_loss(design: FloatArray, y: FloatArray, beta: FloatArray, penalty: FloatArray) -> float:
    z = design @ beta
    # -log-likelihood: sum(log(1 + e^z) - y z), computed without overflow
    return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * beta * beta))


def fit_logistic(
    features: FloatArray, converted: BoolArray, *, l2: float, max_iterations: int = 100, tolerance: float = 1e-9
) -> LogisticFit:
    """Minimises -log L + l2/2 * |coefficients|^2 (the intercept is not penalised) by Newton's
    method: each step solves (X'WX + l2 I) d = gradient, halving the step while the loss rises
    (IRLS with a line search). ``features``: n x k; ``converted``: n booleans."""
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    n, k = features.shape
    design = np.hstack([np.ones((n, 1)), features.astype(np.float64)])
    y = converted.astype(np.float64)
    penalty = np.full(k + 1, float(l2))
    penalty[0] = 0.0
    beta = np.zeros(k + 1)
    rate = min(max(float(y.mean()), 1e-6), 1 - 1e-6) if n else 0.5
    beta[0] = math.log(rate / (1 - rate))
    loss = _penalised_loss(design, y, beta, penalty)
    converged, steps = False, 0
    while steps < max_iterations:
        steps += 1
        p = _sigmoid(design @ beta)
        gradient = design.T @ (p - y) + penalty * beta
        weights = p * (1 - p)
        hessian = (design * weights[:, None]).T @ design + np.diag(penalty) + 1e-10 * np.eye(k + 1)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while True:
            candidate = beta - scale * step
            new_loss = _penalised_loss(design, y, candidate, penalty)
            if new_loss <= loss + 1e-12 or scale < 1e-6:
                break
            scale /= 2
        beta, loss = candidate, new_loss
        if float(np.max(np.abs(scale * step))) < tolerance:
            converged = True
            break
    return LogisticFit(float(beta[0]), tuple(float(b) for b in beta[1:]), steps, converged, float(l2))


def points_scale(coefficients: Sequence[float], live_points: Sequence[float], mean_units: Sequence[float]) -> float:
    """Points per logit unit such that the average MQL's refitted points, in absolute value,
    equal its live points: the refitted model keeps the live model's size, so its scores and
    thresholds stay comparable, while the weight moves between signals. 0 when nothing was
    learnt (every coefficient zero)."""
    live = sum(abs(w) * m for w, m in zip(live_points, mean_units))
    fitted = sum(abs(b) * m for b, m in zip(coefficients, mean_units))
    return live / fitted if fitted > 0 else 0.0
