"""A lead's score at a point in time: fit + decayed engagement, as a named breakdown.

Which points are which:
- fit (``fit_signals``; never decay, recomputed from the profile): senior title, company
  size, ICP industry, free email, competitor domain - see ``fit.py``;
- behavioural (``signals``; decay with the half-life from their own event time, capped per
  signal): page visits, forms, email opens/clicks, webinars, downloads, unsubscribe...;
- inactivity: a flat penalty while the lead's last buyer activity is older than
  ``inactivity.after_days``. It is a state, not an event: it does not decay and disappears
  as soon as the lead is active again.

score = fit points + behavioural points + inactivity penalty. It qualifies (MQL) when the
fit gate passes and score > ``thresholds.mql``; an MQL holds while score > ``mql_rearm_at``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from agents.scoring.breakdown import BreakdownItem
from agents.scoring.decay import decay_factor, first_time_at_or_below
from agents.scoring.fit import FitAssessment, assess_fit

if TYPE_CHECKING:
    from agents.scoring.model import ScoringModel
    from agents.scoring.state import LeadState

INACTIVITY_SIGNAL = "inactivity"


@dataclass(frozen=True, slots=True)
class _Contribution:
    """A behavioural signal's points at evaluation time: a breakdown item once explained."""

    signal: str
    points: float
    count: int
    last_ms: int

    def item(self) -> BreakdownItem:
        events = "1 event" if self.count == 1 else f"{self.count} events"
        return BreakdownItem(self.signal, round(self.points, 2) + 0.0, f"{events}, last {_date(self.last_ms)}")


@dataclass(frozen=True, slots=True)
class Evaluation:
    at_ms: int
    fit: FitAssessment
    # The inputs of ``engagement_items``: worded only when an output or a view asks (most
    # evaluations only decide: the reorder window's path, delivery checks; issue 14).
    contributions: tuple[_Contribution, ...]
    inactivity: BreakdownItem | None
    engagement_score: float
    active_signals: frozenset[str]  # behavioural signals adding points now
    mql_threshold: float
    rearm_at: float
    fast_track_threshold: float

    @property
    def engagement_items(self) -> tuple[BreakdownItem, ...]:
        items = tuple(c.item() for c in self.contributions)
        return items if self.inactivity is None else (*items, self.inactivity)

    @property
    def fit_score(self) -> float:
        return self.fit.points

    @property
    def score(self) -> float:
        return self.fit.points + self.engagement_score

    @property
    def breakdown(self) -> tuple[BreakdownItem, ...]:
        return self.fit.items + self.engagement_items

    @property
    def qualifies(self) -> bool:
        """Crosses into MQL: passes the fit gate and is strictly above the threshold."""
        return self.fit.passed and self.score > self.mql_threshold

    @property
    def holds_mql(self) -> bool:
        """An existing MQL stays one while above the re-arm level."""
        return self.fit.passed and self.score > self.rearm_at

    @property
    def fast_track(self) -> bool:
        return self.score > self.fast_track_threshold


def inactivity_due_ms(state: LeadState, model: ScoringModel) -> int | None:
    """When the no-activity penalty applies (last buyer activity + the inactivity period)."""
    since = state.last_engaged_ms if state.last_engaged_ms is not None else state.created_at_ms
    return None if since is None else since + model.inactivity_ms


def evaluate(state: LeadState, model: ScoringModel, at_ms: int, fit: FitAssessment | None = None) -> Evaluation:
    """Score ``state`` as of ``at_ms`` (>= the time of every signal in it)."""
    fit = fit or assess_fit(state, model)
    half_life = model.half_life_ms
    parts: list[_Contribution] = []
    engagement = 0.0
    active: set[str] = set()
    order = model.signal_order
    for name in sorted((n for n in state.signals if n in order), key=order.__getitem__):
        rule, total = model.signals[name], state.signals[name]  # model order: a stable breakdown
        units = min(model.cap_units[name], total.units * decay_factor(at_ms - total.at_ms, half_life))
        points = units * rule.points
        if abs(points) < 0.005:  # shows as 0.00: fully decayed, or below the `every` count
            continue
        engagement += points
        if points > 0:
            active.add(name)
        parts.append(_Contribution(name, points, total.count, total.last_ms))
    due = inactivity_due_ms(state, model)
    inactivity = None
    if due is not None and at_ms >= due and model.inactivity.points:
        engagement += model.inactivity.points
        since = due - model.inactivity_ms
        inactivity = BreakdownItem(
            INACTIVITY_SIGNAL,
            model.inactivity.points,
            f"no activity for {model.inactivity.after_days:g}+ days (last {_date(since)})",
        )
    return Evaluation(
        at_ms=at_ms,
        fit=fit,
        contributions=tuple(parts),
        inactivity=inactivity,
        engagement_score=engagement,
        active_signals=frozenset(active),
        mql_threshold=model.thresholds.mql,
        rearm_at=model.rearm_at,
        fast_track_threshold=model.thresholds.fast_track,
    )


def time_score_falls_to(state: LeadState, model: ScoringModel, level: float) -> int | None:
    """Earliest time >= the lead's clock at which its score is <= ``level`` without new events.

    Returned 1 ms after the exact crossing so a review at that time sees the score below.
    """
    t0 = state.as_of_ms
    half_life = model.half_life_ms
    terms = []
    for name, rule in model.signals.items():
        total = state.signals.get(name)
        if total is not None:
            units = total.units * decay_factor(t0 - total.at_ms, half_life)
            terms.append((rule.points, units, model.cap_units[name]))
    due = inactivity_due_ms(state, model)
    constant = assess_fit(state, model).points
    steps = []
    if due is not None and model.inactivity.points:
        if due <= t0:
            constant += model.inactivity.points
        else:
            steps.append((due, model.inactivity.points))
    crossing = first_time_at_or_below(
        t0=t0, half_life_ms=half_life, constant=constant, terms=terms, steps=steps, level=level
    )
    if crossing is None:
        return None
    return t0 if crossing <= t0 else math.ceil(crossing) + 1


def _date(ms: int) -> str:
    return _day(ms // 86_400_000)


@lru_cache(maxsize=4096)
def _day(day_number: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day_number * 86_400))
