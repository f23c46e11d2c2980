"""Redelivery and repeated MQLs: what the routing agent remembers per lead, and what it skips.

The agent keeps, per lead (table ``lead_to_assignment``), the last MQL event it assigned with
its crossing number and priority. A redelivered MQL event is a duplicate (nothing is emitted);
an older crossing arriving late is stale; another event for the same crossing is routed again
only when it raises the priority (scoring re-issues the MQL when a P1 signal arrives for a
lead assigned as P2; ``agents.routing.upgrades`` and ``priority_upgrade`` in routing.yaml say
whether it moves to an AE, its open slot with it, or stays with its owner at P1).

For SLA reassignments (``agents.routing.reassign``) the memo also keeps what is needed to
route the same MQL again without its record: the lead's facts and priority (``facts``), the
owners this MQL has had, in order (``owners``: never offered it again), and when it was first
assigned (``first_assigned_at``). ``record`` is always the lead's current assignment.
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
    owners: tuple[str, ...] = ()  # owners this MQL has had, first one first (SLA reassignments)
    first_assigned_at: int | None = None  # the MQL's first assignment (the SLA ladder's anchor)
    facts: dict[str, Any] | None = None  # LeadFacts + priority (agents.routing.reassign.facts_to_dict)
    # Routed in the scoring agent that emitted the MQL: the copy the routing agent reads back
    # from the MQL topic is expected, not a redelivery (not counted as a duplicate).
    in_process: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = {
            "mql_event_id": self.mql_event_id,
            "mql_number": self.mql_number,
            "priority": self.priority,
            "record": self.record,
            "owners": list(self.owners),
            "first_assigned_at": self.first_assigned_at,
            "facts": self.facts,
        }
        if self.in_process:  # absent otherwise: memos written before it read the same
            d["in_process"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoutingMemo:
        record = d.get("record") or {}
        owners = tuple(d.get("owners") or ([record["owner_id"]] if record.get("owner_id") else []))
        first = d.get("first_assigned_at", record.get("assigned_at"))
        return cls(
            d["mql_event_id"],
            int(d["mql_number"]),
            d["priority"],
            record,
            owners,
            int(first) if first is not None else None,
            d.get("facts"),
            bool(d.get("in_process", False)),
        )


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
