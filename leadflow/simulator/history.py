"""Simulated history for calibration: MQL records with breakdowns, and the CRM outcomes that
followed them, with a known ground truth (``CrmSimulator(signal_lift=...)``).

Pure and seeded: the traffic simulator's events go through capture's and scoring's own rules
(no Kafka, no workers); each MQL is given an invented assignment (owner by priority, the
default SLA) and the CRM simulator's reaction to it, which is fed back to scoring in event-time
order (a rejected lead is recycled and may qualify again). One shortcut: an anonymous page
view is scored as its lead's from the start, as if the form had already linked the visitor
(the pipeline merges it when the form arrives).

    history = simulate_history(seed=7, events=20_000, mix={"smb_buyer": 1},
                               signal_lift={"product_page_visit": 4.0})
    history.mqls      # lead_qualified records (contract fields; Avro-encodable)
    history.crm       # crm_status records, in time order
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from agents.capture.rules import CaptureLimits, to_lead_event
from agents.scoring import rules
from agents.scoring.model import ScoringModel
from agents.scoring.outputs import QualifiedOutput
from agents.scoring.state import LeadState
from leadflow.simulator.crm import DEFAULT_SLA_MS, INLINE_OWNERS, CrmSimulator
from leadflow.simulator.sessions import CRM_STATUS, TrafficSimulator

HISTORY_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_LIMITS = CaptureLimits(max_event_age_days=100 * 365)  # history: every event is "now" when scored


@dataclass
class SimulatedHistory:
    mqls: list[dict[str, Any]] = field(default_factory=list)
    crm: list[dict[str, Any]] = field(default_factory=list)
    personas: dict[str, str] = field(default_factory=dict)  # lead id -> persona


def simulate_history(
    *,
    seed: int,
    events: int,
    model: ScoringModel,
    mix: Mapping[str, float] | None = None,
    signal_lift: Mapping[str, float] | None = None,
    start_ms: int = HISTORY_START_MS,
    arrival_every_s: float = 20.0,
) -> SimulatedHistory:
    """``events`` simulator input events (forms and web activity) and what followed them."""
    crm = CrmSimulator(seed, signal_lift=signal_lift)
    sim = TrafficSimulator(seed, start_ms=start_ms, mix=mix, arrival_every_s=arrival_every_s, avro_share=0.0)
    out = SimulatedHistory()
    states: dict[str, LeadState] = {}
    pending: list[tuple[int, int, dict[str, Any]]] = []  # CRM records due, by time
    order = itertools.count()

    def score(event: Any, persona: str) -> None:
        lead = event.lead_id
        state, outputs = rules.apply_event(states.get(lead), event, model, now_ms=event.occurred_at_ms)
        states[lead] = state
        for output in outputs:
            if isinstance(output, QualifiedOutput) and not output.record.get("upgrade_of"):
                out.mqls.append(output.record)
                for action in crm.react(_assignment(output.record), persona=persona, signals=_signals(output.record)):
                    heapq.heappush(pending, (action.at_ms, next(order), action.record))

    for sim_event in sim.take(events):
        while pending and pending[0][0] <= sim_event.at_ms:
            _, _, record = heapq.heappop(pending)
            _crm(record, out, score, sim)
        if sim_event.record is None or sim_event.lead_id is None or sim_event.subject == CRM_STATUS:
            continue
        event = to_lead_event(
            sim_event.subject,
            sim_event.record,
            "json",
            raw=b"",
            received_at_ms=sim_event.at_ms,
            now_ms=sim_event.at_ms,
            limits=_LIMITS,
        )
        if event.lead_id is None:  # anonymous: the simulator knows whose it is
            event = replace(event, lead_id=sim_event.lead_id, visitor_id=None)
        out.personas[sim_event.lead_id] = sim_event.persona
        score(event, sim_event.persona)
    while pending:  # the reps finish what they started
        _, _, record = heapq.heappop(pending)
        _crm(record, out, score, sim)
    return out


def _crm(record: dict[str, Any], out: SimulatedHistory, score: Any, sim: TrafficSimulator) -> None:
    out.crm.append(record)
    event = to_lead_event(
        "crm_status",
        record,
        "json",
        raw=b"",
        received_at_ms=record["occurred_at"],
        now_ms=record["occurred_at"],
        limits=_LIMITS,
    )
    score(event, out.personas.get(record["lead_id"], ""))


def _assignment(mql: Mapping[str, Any]) -> dict[str, Any]:
    priority = mql.get("priority_hint") or "P2"
    assigned_at = int(mql["qualified_at"])
    return {
        "event_id": f"as-{mql['event_id']}",
        "lead_id": mql["lead_id"],
        "owner_id": INLINE_OWNERS.get(priority, INLINE_OWNERS["P2"])[0],
        "assigned_at": assigned_at,
        "first_touch_due_at": assigned_at + DEFAULT_SLA_MS.get(priority, DEFAULT_SLA_MS["P2"]),
        "priority": priority,
    }


def _signals(mql: Mapping[str, Any]) -> list[str]:
    return [item["signal"] for item in mql.get("breakdown") or () if item["points"] > 0]
