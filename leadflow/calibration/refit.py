"""Refitted signal weights that stay explainable: points per signal, rounded, within ranges.

Each signal's feature is its *units* at handoff: breakdown points / the base model's points for
that signal (a fit signal is 0 or 1; a behavioural one is its decayed, capped count). An L2
logistic regression (``maths.fit_logistic``) gives logit per unit; ``maths.points_scale`` turns
that into points with the live model's overall size; the points are rounded and clamped to the
practitioner ranges (``config/calibration-ranges.yaml``, from the domain brief) unless
``unbounded``. A signal carried by fewer than ``min_signal_mqls`` handoffs keeps its live points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.domain.config_errors import describe_error
from agents.domain.yamlio import read_yaml
from agents.scoring.evaluation import INACTIVITY_SIGNAL
from agents.scoring.model import ScoringModel
from leadflow.calibration.maths import BoolArray, FloatArray, LogisticFit, fit_logistic, points_scale
from streams.settings import REPO_ROOT

DEFAULT_RANGES_PATH = REPO_ROOT / "config" / "calibration-ranges.yaml"


class RangesError(ValueError):
    """The ranges file is unusable; one line naming the file and the key."""


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    min: float
    max: float
    signals: list[str] = Field(min_length=1)


class _RangesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    ranges: dict[str, _Range]


def load_ranges(path: Path = DEFAULT_RANGES_PATH) -> dict[str, tuple[float, float]]:
    """signal -> (min points, max points)."""

    def error(problems: object, source: str) -> RangesError:
        items = problems if isinstance(problems, list) else [problems]
        return RangesError(f"invalid {source}: {'; '.join(map(str, items))}")

    raw = read_yaml(path, error)
    try:
        parsed = _RangesFile.model_validate(raw)
    except ValidationError as exc:
        raise error([describe_error(e) for e in exc.errors()], str(path)) from None
    out: dict[str, tuple[float, float]] = {}
    for name, spec in parsed.ranges.items():
        if spec.min > spec.max:
            raise error(f"ranges.{name}: min {spec.min:g} is above max {spec.max:g}", str(path))
        for signal in spec.signals:
            if signal in out:
                raise error(f"ranges.{name}: signal {signal!r} is already in another range", str(path))
            out[signal] = (spec.min, spec.max)
    return out


def signal_weights(model: ScoringModel) -> dict[str, float]:
    """Points per unit of every signal a breakdown can name (zero-point ones left out)."""
    fit = model.fit_signals
    weights = {name: rule.points for name, rule in model.signals.items()}
    weights.update(
        senior_title=fit.senior_title.points,
        company_size=fit.company_size.points,
        icp_industry=fit.icp_industry.points,
        free_email=fit.free_email.points,
        competitor_domain=fit.competitor_domain.points,
    )
    weights[INACTIVITY_SIGNAL] = model.inactivity.points
    return {name: w for name, w in weights.items() if w}


def units_matrix(points: Sequence[Mapping[str, float]], weights: Mapping[str, float]) -> tuple[list[str], FloatArray]:
    """(signal names in model order, n x k units at handoff) for the signals of ``weights``."""
    names = list(weights)
    column = {name: j for j, name in enumerate(names)}
    units = np.zeros((len(points), len(names)))
    for i, row in enumerate(points):
        for signal, value in row.items():
            j = column.get(signal)
            if j is not None:
                units[i, j] = value / weights[signal]
    return names, units


@dataclass(frozen=True, slots=True)
class SignalRefit:
    signal: str
    live_points: float
    coefficient: float | None  # logit per unit; None when kept (too little data)
    fitted_points: float | None  # before rounding and clamping
    points: float  # what the new model file gets
    mqls_with: int
    note: str  # "", "kept: ...", "clamped to ...", ...


@dataclass(frozen=True, slots=True)
class Refit:
    signals: tuple[SignalRefit, ...]
    fit: LogisticFit
    scale: float  # points per logit unit
    bounded: bool

    def changed(self) -> dict[str, float]:
        return {s.signal: s.points for s in self.signals if s.points != s.live_points}

    def rescore(self, scores: FloatArray, names: Sequence[str], units: FloatArray) -> FloatArray:
        """Scores at handoff under the refitted points (the rest of the breakdown unchanged)."""
        delta = np.array([self._points(n) - self._live(n) for n in names])
        out: FloatArray = scores + units @ delta
        return out

    def _points(self, name: str) -> float:
        return next((s.points for s in self.signals if s.signal == name), 0.0)

    def _live(self, name: str) -> float:
        return next((s.live_points for s in self.signals if s.signal == name), 0.0)


def refit_weights(
    names: Sequence[str],
    units: FloatArray,
    converted: BoolArray,
    weights: Mapping[str, float],
    *,
    l2: float,
    min_signal_mqls: int,
    ranges: Mapping[str, tuple[float, float]] | None,
) -> Refit:
    """``ranges`` None: unbounded (only the model file's own rules apply: behavioural points
    are non-zero, the inactivity penalty is not positive)."""
    carried = (units != 0).sum(axis=0)
    fitted = [j for j in range(len(names)) if carried[j] >= min_signal_mqls]
    fit = fit_logistic(units[:, fitted], converted, l2=l2)
    mean_units = np.abs(units[:, fitted]).mean(axis=0) if fitted else np.zeros(0)
    scale = points_scale(fit.coefficients, [weights[names[j]] for j in fitted], mean_units.tolist())
    coefficient = {names[j]: fit.coefficients[i] for i, j in enumerate(fitted)}
    out = []
    for j, name in enumerate(names):
        live = weights[name]
        if name not in coefficient:
            note = f"kept: {int(carried[j])} MQLs carry it (< {min_signal_mqls})"
            out.append(SignalRefit(name, live, None, None, live, int(carried[j]), note))
            continue
        raw = coefficient[name] * scale
        points, note = _explainable(name, raw, live, None if ranges is None else ranges.get(name), ranges is None)
        out.append(SignalRefit(name, live, coefficient[name], raw, points, int(carried[j]), note))
    return Refit(tuple(out), fit, scale, ranges is not None)


def _explainable(
    name: str, raw: float, live: float, bounds: tuple[float, float] | None, unbounded: bool
) -> tuple[float, str]:
    points = float(round(raw))
    note = ""
    if bounds is not None:
        low, high = bounds
        if not low <= points <= high:
            points, note = min(max(points, low), high), f"clamped to {low:g}..{high:g}"
    elif not unbounded:
        note = "no practitioner range"
    if name == INACTIVITY_SIGNAL and points > 0:
        points, note = 0.0, "a penalty: floored at 0"
    behavioural = name not in _FIT_OR_PENALTY
    if behavioural and points == 0:  # the model file needs non-zero points; keep the sign learnt
        points = math.copysign(1.0, raw if raw else live)
        note = note or "about 0: the model file needs a non-zero value"
    return points + 0.0, note


_FIT_OR_PENALTY = frozenset(
    {"senior_title", "company_size", "icp_industry", "free_email", "competitor_domain", INACTIVITY_SIGNAL}
)
