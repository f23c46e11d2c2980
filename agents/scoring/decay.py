"""Continuous half-life decay of behavioural points, computed from event time.

A behavioural occurrence at time t_e is worth ``points x 2^-((t - t_e) / half_life)`` at
time t: every contribution decays from its *own* event time, so an 18-month-old download
weighs ~1/8 of its points even when the lead was active yesterday, and the score at a
given time depends only on the events, not on when they were processed (replays agree).

Because one half-life applies to all signals, a signal's decayed sum is stored as a single
number valid at one time (``units`` at ``at_ms``) and moved forward by one multiplication.
Caps saturate at insertion - ``min(cap, decayed + new)`` - so a capped signal starts
decaying as soon as activity stops (capping only at read would let 1,000 repeats keep the
signal pinned at its cap for years). For same-time events the order does not matter
(additions of one sign with one cap commute); for a late event of another time, results
can differ from in-order arrival only while a cap is saturated.

``first_time_at_or_below`` solves "when does this score fall to a level?" exactly for the
decay review: between breakpoints (a clamped term starting to decay, the inactivity step)
the score is ``c + e x 2^-(t-t0)/H``, whose crossing has a closed form.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def decay_factor(elapsed_ms: float, half_life_ms: float) -> float:
    """2^-(elapsed / half-life); elapsed <= 0 (a late event in the lead's past) is no decay."""
    if elapsed_ms <= 0:
        return 1.0
    return 0.5 ** (elapsed_ms / half_life_ms)


def add_units(
    units: float, units_at_ms: int, *, event_ms: int, clock_ms: int, award: float, cap_units: float, half_life_ms: float
) -> float:
    """Decayed units at ``clock_ms`` after adding ``award`` occurrences that happened at ``event_ms``."""
    current = units * decay_factor(clock_ms - units_at_ms, half_life_ms)
    return min(cap_units, current + award * decay_factor(clock_ms - event_ms, half_life_ms))


def first_time_at_or_below(
    *,
    t0: float,
    half_life_ms: float,
    constant: float,
    terms: Iterable[tuple[float, float, float]],
    steps: Iterable[tuple[float, float]],
    level: float,
) -> float | None:
    """Earliest t >= t0 where ``score(t) <= level``, or None if it never gets there.

    score(t) = constant + sum(points x min(cap, units x 2^-(t-t0)/H) for each term)
               + sum(delta for (time, delta) in steps if t >= time)
    ``terms`` are (points, units at t0, cap units); ``steps`` model the inactivity penalty.
    """
    terms = list(terms)
    steps = list(steps)

    def unclamp_time(units: float, cap: float) -> float:
        # A term above its cap (only after a cap was lowered) holds the cap until this time.
        return t0 + half_life_ms * math.log2(units / cap) if units > cap else t0

    breaks = {unclamp_time(u, k) for _, u, k in terms} | {ts for ts, _ in steps}
    edges = [t0, *sorted(b for b in breaks if b > t0), math.inf]
    for lo, hi in zip(edges, edges[1:]):
        const = constant + sum(delta for ts, delta in steps if ts <= lo)
        expo = 0.0
        for points, units, cap in terms:
            if unclamp_time(units, cap) >= hi:
                const += points * cap
            else:
                expo += points * units
        if const + expo * decay_factor(lo - t0, half_life_ms) <= level:
            return lo
        if expo > 0 and const < level:
            crossing = t0 + half_life_ms * math.log2(expo / (level - const))
            if crossing < hi:
                return max(crossing, lo)
    return None
