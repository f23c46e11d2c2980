"""Redelivery and repeated MQLs: what the routing agent remembers per lead, and what it skips.

The agent keeps, per lead (table ``lead_to_assignment``), the last MQL event it assigned with
its crossing number and priority. A redelivered MQL event is a duplicate (nothing is emitted);
an older crossing arriving late is stale; another event for the same crossing is routed again
only when it raises the priority (a P1 signal arriving for a lead assigned as P2 moves it to
an AE, and its open slot moves with it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.routing.config import PRIORITIES
from agents.routing.facts import LeadFacts


def is_upgrade(previous: str, new: str) -> bool:
    return PRIORITIES.index(new) < PRIORITIES.index(previous)


@dataclass
class RoutingMemo:
    """What the agent remembers per lead (table ``lead_to_assignment``)."""

    mql_event_id: str
    mql_number: int
    priority: str
    record: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"mql_event_id": self.mql_event_id, "mql_number": self.mql_number,
                "priority": self.priority, "record": self.record}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoutingMemo:
        return cls(d["mql_event_id"], int(d["mql_number"]), d["priority"], d.get("record") or {})


def redelivery_action(memo: RoutingMemo | None, facts: LeadFacts, priority: str) -> str | None:
    """None = route this MQL; else why it is skipped: ``duplicate`` (this very MQL event was
    assigned already), ``stale`` (an older MQL crossing than the one assigned last) or
    ``same_mql`` (another event for the same crossing that does not raise the priority; a
    raise - e.g. a P1 signal on a P2 lead - is routed again)."""
    if memo is None:
        return None
    if memo.mql_event_id == facts.mql_event_id:
        return "duplicate"
    if facts.mql_number < memo.mql_number:
        return "stale"
    if memo.mql_number == facts.mql_number and not is_upgrade(memo.priority, priority):
        return "same_mql"
    return None
