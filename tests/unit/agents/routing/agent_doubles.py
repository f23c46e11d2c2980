"""The routing agent's unit-test doubles and steps (test_agent.py, test_in_process.py): an
in-memory roster store instead of Redis, and a hot lead through the scoring agent."""

from __future__ import annotations

import asyncio
import dataclasses

from agents.domain import wire
from agents.domain.identity import lead_id_for_email
from agents.routing.roster_store import Snapshot
from agents.routing.rules import Decision
from tests.unit.agents.scoring.helpers import CORP, T0, director_form, page

LEAD = lead_id_for_email(CORP)


class MemoryRosterStore:
    """RosterStore's answers without Redis: no roster loaded, the plan's first candidate wins,
    decisions remembered under their idempotency id (a redelivery replays them). ``fail``: raised
    by ``assign`` (a test sets it on the class)."""

    fail: Exception | None = None

    def __init__(self, client, prefix: str) -> None:
        self.decisions: dict[str, Decision] = {}

    async def snapshot(self) -> Snapshot:
        return Snapshot(0, None, {})

    async def assign(self, plan, *, now_ms: int, ttl_s: int, key_id: str | None = None) -> Decision:
        if self.fail is not None:
            raise self.fail
        key = key_id or plan.facts.mql_event_id
        if key in self.decisions:
            return dataclasses.replace(self.decisions[key], replay=True)
        stage = plan.stages[0]
        decision = Decision(
            stage=0,
            rule=stage.rule,
            owner_id=stage.candidates[0].rep_id,
            assigned_at_ms=now_ms,
            roster_version=plan.roster_version,
        )
        self.decisions[key] = decision
        return decision

    async def forget_lead(self, lead_id: str, decision_ids: list[str]) -> str | None:
        for decision_id in decision_ids:
            self.decisions.pop(decision_id, None)
        return None


def qualify(pipeline) -> None:
    """A hot lead through the scoring agent: its lead_qualified lands on the mqls channel."""
    for event in (page(at=T0), director_form(at=T0)):
        asyncio.run(pipeline.deliver("lead_events", wire.encode_lead_event(event), key=LEAD.encode()))


def assigned(pipeline) -> list[dict]:
    return [e.record for e in pipeline.emitted if e.subject == "lead_assigned"]
