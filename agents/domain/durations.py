"""Durations written with a unit, the one parser of them: ``90s``, ``10m``, ``2h``, ``5d``.

Used by ``config/sla.yaml`` (escalation tiers, checkpoints, clock skew), ``leadflow demo``
(which divides every SLA duration by its speed-up) and the dev stack's Prometheus tooling (the
Grafana range/interval variables: ``1h30m``, ``500ms``).

Grammar: one or more terms ``<number><unit>``, the number an integer or a decimal, optional
blanks around the whole and between a number and its unit; units ``ms``, ``s``, ``m`` (minutes),
``h``, ``d``, ``w`` (7 days), ``y`` (365 days), as in Prometheus. Terms add up
(``1h30m`` = 90 minutes).
"""

from __future__ import annotations

import re

UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}
_TERM = r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)"
_DURATION = re.compile(rf"^\s*{_TERM}(?:\s*{_TERM})*\s*$")
_TERMS = re.compile(_TERM)
EXAMPLES = "'90s', '10m', '2h' or '5d'"


def is_duration(text: object) -> bool:
    return isinstance(text, str) and _DURATION.match(text) is not None


def parse_duration_ms(text: object) -> int:
    """``'90s'`` -> 90000, ``'1h30m'`` -> 5400000; raises ValueError for anything else (the
    caller names the key)."""
    if not is_duration(text):
        raise ValueError(f"expected a duration such as {EXAMPLES}, got {text!r}")
    assert isinstance(text, str)
    return round(sum(float(number) * UNIT_MS[unit] for number, unit in _TERMS.findall(text)))


def format_seconds(ms: float) -> str:
    """A duration in seconds as the grammar writes it, at most millisecond precision:
    ``10_000`` -> ``'10s'``, ``166.7`` -> ``'0.167s'``."""
    return f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
