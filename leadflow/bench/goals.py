"""Goals a bench holds its figures to (issue 14), shared by `leadflow bench` and
``make bench-recovery``: each goal's limit, the measured figure and whether it is met."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Goal:
    figure: str  # key in the run's figures
    label: str
    limit: float
    unit: str
    direction: Literal[">=", "<="] = "<="  # ">=" for throughputs, "<=" for costs and delays

    def met_by(self, value: float) -> bool:
        return value >= self.limit if self.direction == ">=" else value <= self.limit


def evaluate_goals(goals: Sequence[Goal], figures: Mapping[str, float | None]) -> list[dict[str, Any]]:
    """Each goal: its limit, the measured figure and whether it is met (None: not measured)."""
    out = []
    for goal in goals:
        value = figures.get(goal.figure)
        out.append(
            {
                "figure": goal.figure,
                "goal": goal.label,
                "limit": goal.limit,
                "unit": goal.unit,
                "measured": value,
                "met": None if value is None else goal.met_by(value),
            }
        )
    return out


def goal_rows(goals: Sequence[Goal], evaluated: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(goal, limit, measured, met) per evaluated goal, as text."""
    direction = {g.figure: g.direction for g in goals}
    rows = []
    for g in evaluated:
        measured = "not measured" if g["measured"] is None else f"{g['measured']:,.1f} {g['unit']}"
        met = "n/a" if g["met"] is None else ("met" if g["met"] else "NOT MET")
        rows.append((g["goal"], f"{direction[g['figure']]} {g['limit']:,.0f} {g['unit']}", measured, met))
    return rows


def goal_table(
    goals: Sequence[Goal], evaluated: Sequence[Mapping[str, Any]], extra: Sequence[tuple[str, str]] = ()
) -> str:
    """Plain-text table of ``goal_rows``; ``extra``: (label, value) rows of figures no goal holds."""
    rows = [("goal", "limit", "measured", "met"), *goal_rows(goals, evaluated)]
    rows.extend((label, "-", value, "-") for label, value in extra)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)
