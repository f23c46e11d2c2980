"""Shadow model (pure): where a candidate scoring model's MQL decision differs from the live one.

The candidate scores every event with the very same rules (``reorder.apply_event``) on its own
state; nothing it outputs is sent. This module compares the two results of one event:

- ``gained``: the candidate crossed the MQL threshold (a new LeadQualified, not a priority
  upgrade) and the live lead did not cross and holds no open MQL episode;
- ``lost``: the live lead crossed and the candidate did not cross and holds no open episode;
- anything else agrees (both crossed, neither did, or one crossed while the other already
  held an MQL: a crossing earlier under one model is counted once, when it happens).

The decision's id is deterministic over the lead, the direction and the crossing's MQL number,
so a redelivered event yields the same record, never a second one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agents.domain.identity import deterministic_id
from agents.scoring.outputs import LEAD_QUALIFIED, LEAD_SCORED, Output
from agents.scoring.state import LeadState

SHADOW_DECISION = "shadow_decision"
DIRECTIONS = ("gained", "lost")
Direction = Literal["gained", "lost"]


@dataclass(frozen=True, slots=True)
class Scored:
    """One model's result for an event: its new state and what it would send."""

    state: LeadState
    outputs: Sequence[Output]
    model_version: str

    @property
    def crossing(self) -> dict[str, Any] | None:
        """The new MQL's record (not a priority upgrade), if this event made one."""
        for out in self.outputs:
            if out.subject == LEAD_QUALIFIED and not out.record.get("upgrade_of"):
                return out.record
        return None

    @property
    def score(self) -> float | None:
        """The score the decision saw: the crossing's, else the newest lead_scored's."""
        crossing = self.crossing
        if crossing is not None:
            return float(crossing["score"])
        scored = [out.record["score"] for out in self.outputs if out.subject == LEAD_SCORED]
        return float(scored[-1]) if scored else None


@dataclass(frozen=True, slots=True)
class ShadowDecisionOutput:
    """A ``shadow_decision`` record (fields of schemas/shadow_decision.v1.avsc)."""

    key: str  # lead id
    record: dict[str, Any]
    subject: str = SHADOW_DECISION

    @property
    def direction(self) -> str:
        return str(self.record["direction"])

    @property
    def source(self) -> str:
        return str(self.record["first_touch_source"])

    @property
    def band(self) -> str:
        return str(self.record["score_band"])


def shadow_decision_id(lead_id: str, direction: str, mql_number: int) -> str:
    return deterministic_id(lead_id, "shadow", direction, mql_number, prefix="sd_")


def compare(
    live: Scored,
    candidate: Scored,
    *,
    cause_event_id: str,
    now_ms: int,
    band_of: Callable[[float], str],
    unknown_source: str,
) -> ShadowDecisionOutput | None:
    """The disagreement this event made, or None when the two models agree. ``band_of`` bands
    the crossing score (the metric's ``score_band``); ``unknown_source`` labels a lead with no
    attributed first touch."""
    live_crossing, candidate_crossing = live.crossing, candidate.crossing
    direction: Direction
    if candidate_crossing is not None and live_crossing is None and not live.state.mql:
        direction, crossing = "gained", candidate_crossing
    elif live_crossing is not None and candidate_crossing is None and not candidate.state.mql:
        direction, crossing = "lost", live_crossing
    else:
        return None
    lead_id = live.state.lead_id
    score = float(crossing["score"])
    record = {
        "event_id": shadow_decision_id(lead_id, direction, int(crossing["mql_number"])),
        "lead_id": lead_id,
        "direction": direction,
        "cause_event_id": cause_event_id,
        "occurred_at": int(crossing["occurred_at"]),
        "decided_at": now_ms,
        "live_score": live.score,
        "live_model_version": live.model_version,
        "candidate_score": candidate.score,
        "candidate_model_version": candidate.model_version,
        "first_touch_source": crossing.get("first_touch_source") or unknown_source,
        "score_band": band_of(score),
    }
    return ShadowDecisionOutput(key=lead_id, record=record)
