"""Bounded label values for :mod:`streams.metrics`: label guards, the metric wrapper that
applies them, the application's closed vocabularies (:class:`Vocabulary`) and score bands.

The runtime defines no business vocabulary of its own: event kinds, lifecycle stages, CRM
statuses, dispositions and dead-letter reason codes arrive as a :class:`Vocabulary`, built by
the composition root (``leadflow.compose.METRIC_VOCABULARY``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

log = logging.getLogger(__name__)

OTHER = "other"
NONE = "none"
SCORE_BANDS = ("<50", "50-60", "60-70", "70-80", "80-90", "90+")
# Lower edges of SCORE_BANDS[1:].
_BAND_EDGES = (50.0, 60.0, 70.0, 80.0, 90.0)

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,63}")
_DIGITS = re.compile(r"[0-9]{1,4}")


# --- Label guards ---------------------------------------------------------------------------


def _as_label_text(value: object) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class LabelGuard:
    """Maps an arbitrary value to a bounded label value.

    ``allowed`` given: a closed vocabulary, anything outside it becomes ``"other"``.
    Otherwise ``pattern`` must match the whole value and at most ``max_values`` distinct values
    are admitted (first come, first kept); the rest become ``"other"``.
    """

    def __init__(
        self,
        name: str,
        *,
        allowed: Iterable[str] | None = None,
        pattern: re.Pattern[str] = _IDENTIFIER,
        max_values: int = 50,
        nullable: bool = True,
        convert: Callable[[object], object] | None = None,
    ) -> None:
        self.name = name
        self.allowed = (frozenset(allowed) | ({NONE} if nullable else frozenset())) if allowed is not None else None
        self.convert = convert
        self.pattern = pattern
        self.max_values = max_values
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._warned = False
        self.metric_name = "?"  # set by BoundedMetric

    def __call__(self, value: object) -> str:
        text = _as_label_text(self.convert(value) if self.convert else value)
        if self.allowed is not None:
            return text if text in self.allowed else self._reject("not in its vocabulary")
        if text == NONE or text in self._seen:
            return text
        if not self.pattern.fullmatch(text):
            return self._reject("not an identifier")
        with self._lock:
            if text in self._seen:
                return text
            if len(self._seen) >= self.max_values:
                return self._reject(f"more than {self.max_values} distinct values")
            self._seen.add(text)
        return text

    def _reject(self, why: str) -> str:
        if not self._warned:
            self._warned = True
            # Never log the value itself: it may be an email or other personal data.
            log.warning(
                "metric %s: a value of label %r was %s; recorded as %r (logged once)",
                self.metric_name,
                self.name,
                why,
                OTHER,
            )
        return OTHER


def closed_guard(name: str, allowed: Iterable[str], *, nullable: bool = False) -> LabelGuard:
    return LabelGuard(name, allowed=allowed, nullable=nullable)


def ident_guard(name: str, *, max_values: int = 50) -> LabelGuard:
    return LabelGuard(name, max_values=max_values)


def number_guard(name: str, *, max_values: int) -> LabelGuard:
    return LabelGuard(name, pattern=_DIGITS, max_values=max_values)


class BoundedMetric:
    """A labelled prometheus_client metric whose ``labels()`` bounds every value.

    Anything else (``collect``, ``clear``, ``_name`` ...) is delegated to the wrapped metric,
    available as ``.metric``.
    """

    __slots__ = ("metric", "label_names", "_guards")

    def __init__(self, metric: Any, guards: Iterable[LabelGuard]) -> None:
        self.metric = metric
        self._guards = {g.name: g for g in guards}
        self.label_names: tuple[str, ...] = tuple(metric._labelnames)
        if set(self._guards) != set(self.label_names):
            raise ValueError(f"guards {sorted(self._guards)} != labels {self.label_names}")
        for guard in self._guards.values():
            guard.metric_name = metric._name

    def _bounded(self, values: tuple[object, ...], kwargs: Mapping[str, object]) -> dict[str, str]:
        if values and kwargs:
            raise ValueError("pass label values either positionally or by name, not both")
        if values:
            if len(values) != len(self.label_names):
                raise ValueError(f"{self.metric._name}: expected labels {self.label_names}")
            kwargs = dict(zip(self.label_names, values))
        if set(kwargs) != set(self.label_names):
            raise ValueError(f"{self.metric._name}: expected labels {self.label_names}, got {tuple(sorted(kwargs))}")
        return {name: self._guards[name](kwargs[name]) for name in self.label_names}

    def bounded_values(self, *values: object, **kwargs: object) -> tuple[str, ...]:
        """The label values ``labels()`` would record, in label order."""
        bounded = self._bounded(values, kwargs)
        return tuple(bounded[n] for n in self.label_names)

    def labels(self, *values: object, **kwargs: object) -> Any:
        return self.metric.labels(*self.bounded_values(*values, **kwargs))

    def remove(self, *values: object, **kwargs: object) -> None:
        with contextlib.suppress(KeyError):
            self.metric.remove(*self.bounded_values(*values, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.metric, name)

    def __repr__(self) -> str:
        return f"BoundedMetric({self.metric!r})"


# --- Helpers ----------------------------------------------------------------------------------


def score_band(score: float) -> str:
    """Bucket a score for the ``score_band`` label: ``<50``, ``50-60`` ... ``80-90``, ``90+``.

    Lower edges are inclusive (60 -> ``60-70``). NaN and -inf fall in ``<50``, +inf in ``90+``.
    """
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return SCORE_BANDS[0]
    band = 0
    for edge in _BAND_EDGES:
        if score >= edge:
            band += 1
        else:
            break
    return SCORE_BANDS[band]


def _score_band_label(value: object) -> object:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return score_band(float(value))
    return value


def score_band_guard() -> LabelGuard:
    """The ``score_band`` label: a band name, or the numeric score itself (banded here)."""
    return LabelGuard("score_band", allowed=SCORE_BANDS, nullable=False, convert=_score_band_label)


def mql_label_pairs(lowest_score: float, fast_track_above: float) -> tuple[tuple[str, str], ...]:
    """The (score_band, fast_track) label pairs an MQL can carry when its score at the crossing
    is above ``lowest_score`` (the MQL threshold) and it is fast-tracked above
    ``fast_track_above``. Bands are [lower edge, next edge)."""
    lows = (-math.inf, *_BAND_EDGES)
    highs = (*_BAND_EDGES, math.inf)
    pairs: list[tuple[str, str]] = []
    for band, low, high in zip(SCORE_BANDS, lows, highs):
        if high <= lowest_score:
            continue  # every score in the band is at or below the threshold
        if low <= fast_track_above:
            pairs.append((band, "false"))
        if high > fast_track_above:
            pairs.append((band, "true"))
    return tuple(pairs)


def elapsed_seconds(start_ms: int | float | None, end_ms: int | float) -> float | None:
    """Seconds from ``start_ms`` to ``end_ms`` (epoch ms), clamped at 0 for clock skew;
    None if there is no start."""
    if start_ms is None:
        return None
    return max(0.0, (float(end_ms) - float(start_ms)) / 1000.0)


# --- The application's vocabularies -----------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """The closed label sets the application defines, handed to ``Metrics``: a value outside
    its set is recorded as ``"other"``; the small sets are created at zero at start.

    ``dead_letter_reasons``: docs/contracts.md, "Dead-letter reason codes"."""

    event_kinds: tuple[str, ...]
    stages: tuple[str, ...]
    crm_statuses: tuple[str, ...]
    dispositions: tuple[str, ...]
    dead_letter_reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        for field in fields(self):
            values = tuple(getattr(self, field.name))
            wrong = [v for v in values if not isinstance(v, str) or not _IDENTIFIER.fullmatch(v) or v in (OTHER, NONE)]
            if not values or wrong or len(set(values)) != len(values):
                raise ValueError(
                    f"Vocabulary.{field.name} must be distinct identifiers (not {OTHER!r} "
                    f"or {NONE!r}), at least one: got {values!r}"
                )
            object.__setattr__(self, field.name, values)
