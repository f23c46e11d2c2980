"""MQLs routing could not place because its data in Redis is unusable (pure; see the agent).

``roster_error`` in routing.yaml (``agents.routing.config.RosterErrorPolicy``) says what
happens: ``fallback`` (the fallback owner now, reason ``roster_unreadable``) or ``pending``
(park the lead, route it normally once the roster is readable again; after
``max_pending_minutes`` the fallback owner takes it).

Parked leads live in routing's changelog-backed table ``lead_to_assignment`` - next to the
memos, so a lead's memo and its parked entry are written to one changelog partition, in
order, and a crash can only lose a suffix of those writes:

- ``pending:l:<lead id>`` -> ``PendingLead`` (orjson): the MQL record and why it waits;
- ``pending:i:<partition>`` -> the lead ids parked on that partition (what the re-drive timer
  reads and what ``leadflow_pending_assignments`` counts).

Parking writes the index before the entry, and un-parking removes the entry before the index:
whatever prefix survives a crash, a re-drive either routes the lead or drops a stale index
entry. Exactly once: a re-driven MQL goes through the same path as a fresh one - the
``lead_to_assignment`` memo skips it if it was assigned meanwhile, the Redis idempotency key
of its MQL event returns a decision already made, and the assignment id is derived from lead
and MQL event (``assignment.assignment_id``), so a re-emitted record is the same record.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from agents.routing.config import RosterErrorPolicy
from agents.routing.rules import FALLBACK_RULE, Decision, Plan

ROSTER_UNREADABLE, ROSTER_NOT_LOADED = "roster_unreadable", "roster_not_loaded"
_LISTS = ("reps", "territories", "rules")


def roster_document_problem(doc: object) -> str | None:
    """What is structurally wrong with a stored roster document (None = usable shape).

    Names the field, never its value (a roster holds rep names and emails)."""
    if not isinstance(doc, dict):
        return f"roster document is a {type(doc).__name__}, not an object"
    roster = doc.get("roster")
    if not isinstance(roster, dict):
        return f"roster document field 'roster' is a {type(roster).__name__}, not an object"
    for name in _LISTS:
        value = roster.get(name)
        if value is None:
            continue
        if not isinstance(value, list):
            return f"roster field '{name}' is a {type(value).__name__}, not a list"
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                return f"roster field '{name}[{i}]' is a {type(item).__name__}, not an object"
    owners = roster.get("account_owners")
    if owners is not None and not isinstance(owners, dict):
        return f"roster field 'account_owners' is a {type(owners).__name__}, not an object"
    for i, rep in enumerate(roster.get("reps") or ()):
        if not isinstance(rep.get("id"), str) or not rep["id"]:
            return f"roster field 'reps[{i}].id' is missing or not a string"
    return None


@dataclass(frozen=True)
class PendingLead:
    lead_id: str
    mql_event_id: str
    mql_number: int
    partition: int
    since_ms: int  # when the lead was first parked (max_pending_minutes counts from here)
    reason: str  # roster_unreadable or roster_not_loaded
    record: dict[str, Any]  # the LeadQualified record, routed as is when re-driven

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> PendingLead:
        d = orjson.loads(raw)
        return cls(
            d["lead_id"],
            d["mql_event_id"],
            int(d["mql_number"]),
            int(d["partition"]),
            int(d["since_ms"]),
            d["reason"],
            d["record"],
        )


def merge(existing: PendingLead | None, new: PendingLead) -> PendingLead:
    """The entry to keep when a lead is parked again: the later MQL crossing wins (an older one
    arriving late changes nothing), and the lead keeps the time it first started waiting."""
    if existing is None:
        return new
    if new.mql_number < existing.mql_number:
        return existing
    return PendingLead(
        new.lead_id,
        new.mql_event_id,
        new.mql_number,
        new.partition,
        min(existing.since_ms, new.since_ms),
        new.reason,
        new.record,
    )


def should_park(policy: RosterErrorPolicy, since_ms: int, now_ms: int) -> bool:
    """True: park (or keep waiting); False: the fallback owner takes the lead now."""
    if policy.action != "pending":
        return False
    if policy.max_pending_minutes is None:
        return True
    return now_ms - since_ms < policy.max_pending_minutes * 60_000


def local_fallback_decision(plan: Plan, now_ms: int) -> Decision:
    """The fallback owner without Redis: for when even the fallback's own Redis entries are
    unusable. The fallback owner has no capacity and is described in routing.yaml, so nothing
    in Redis is needed to name them; the assignment id stays deterministic."""
    owner = plan.stages[-1].candidates[0].rep_id
    return Decision(
        stage=len(plan.stages) - 1,
        rule=FALLBACK_RULE,
        owner_id=owner,
        assigned_at_ms=now_ms,
        roster_version=plan.roster_version,
        evaluated=((),) * (len(plan.stages) - 1) + (((owner, 0, None),),),
    )


def entry_key(lead_id: str) -> bytes:
    return f"pending:l:{lead_id}".encode()


def index_key(partition: int) -> bytes:
    return f"pending:i:{partition}".encode()


class PendingStore:
    """Parked leads in a bytes -> bytes mapping (the routing agent's Faust table). Only the
    agent's stream writes it; the re-drive timer only reads (``lead_ids``, ``count``)."""

    def __init__(self, table: MutableMapping[bytes, Any]) -> None:
        self.table = table

    def get(self, lead_id: str) -> PendingLead | None:
        raw = self.table.get(entry_key(lead_id))
        return PendingLead.from_bytes(raw) if raw else None

    def lead_ids(self, partition: int) -> list[str]:
        raw = self.table.get(index_key(partition))
        return list(orjson.loads(raw)) if raw else []

    def count(self, partitions: set[int]) -> int:
        return sum(len(self.lead_ids(p)) for p in partitions)

    def park(self, lead: PendingLead) -> PendingLead:
        """Park (or re-park) a lead; returns the entry kept (see ``merge``)."""
        kept = merge(self.get(lead.lead_id), lead)
        ids = self.lead_ids(kept.partition)
        if kept.lead_id not in ids:  # index first: see the module docstring
            self.table[index_key(kept.partition)] = orjson.dumps([*ids, kept.lead_id])
        self.table[entry_key(kept.lead_id)] = kept.to_bytes()
        return kept

    def resolve(self, lead_id: str, mql_number: int, partition: int) -> bool:
        """The lead's MQL crossing ``mql_number`` was assigned (or skipped as done): drop a
        parked entry it covers. True if one was dropped."""
        lead = self.get(lead_id)
        if lead is None or lead.mql_number > mql_number:
            return False
        self.drop(lead_id, lead.partition)
        return True

    def drop(self, lead_id: str, partition: int) -> None:
        key = entry_key(lead_id)
        if self.table.get(key) is not None:  # entry before index: see the module docstring
            del self.table[key]
        ids = self.lead_ids(partition)
        if lead_id in ids:
            ids.remove(lead_id)
            if ids:
                self.table[index_key(partition)] = orjson.dumps(ids)
            else:
                del self.table[index_key(partition)]
