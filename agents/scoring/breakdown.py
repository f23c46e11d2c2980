"""One named contribution to a score: what the fit checks, the evaluation and the outputs share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class BreakdownItem:
    """One named contribution to a score (Avro ``BreakdownItem``)."""

    signal: str
    points: float
    detail: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {"signal": self.signal, "points": self.points, "detail": self.detail}
