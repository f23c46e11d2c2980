"""The calibration cohort: MQL handoffs joined with the CRM outcomes that followed them (pure).

A handoff is one MQL (``lead_qualified`` without ``upgrade_of``): the score and breakdown the
lead had when it was handed to sales. A CRM status belongs to the lead's latest handoff at or
before it (event time), so a lead recycled and re-qualified contributes one row per MQL.
Each handoff is then labelled for the target:

- converted: a status at or beyond the target was reached (``TARGETS``);
- not converted: otherwise, a ``rejected`` (any disposition, or none) or ``closed_lost``;
- open: neither yet (excluded from the maths, counted in the report).

Leads whose CRM stream says ``erasure_requested`` are dropped entirely.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agents.domain.events import CRM_STATUSES

# Target -> the CRM statuses that count as reaching it (docs/model-tuning.md, "Outcomes").
TARGETS: Mapping[str, frozenset[str]] = {
    "sql": frozenset({"sql", "converted", "closed_won"}),  # MQL -> SQL, the business's measure
    "opportunity": frozenset({"converted", "closed_won"}),
    "won": frozenset({"closed_won"}),
}
LOST_STATUSES = frozenset({"rejected", "closed_lost"})
ERASED_STATUS = "erasure_requested"
assert all(s <= set(CRM_STATUSES) for s in (*TARGETS.values(), LOST_STATUSES)), "statuses drifted"


@dataclass(frozen=True, slots=True)
class Handoff:
    """One MQL as sales got it. ``points``: breakdown signal -> points at handoff (no emails)."""

    lead_id: str
    mql_id: str
    occurred_at_ms: int
    score: float
    points: Mapping[str, float]
    model_version: str
    source: str = "kafka"  # kafka | csv


@dataclass(frozen=True, slots=True)
class Outcome:
    lead_id: str
    event_id: str
    occurred_at_ms: int
    status: str
    disposition: str | None = None


@dataclass(frozen=True, slots=True)
class Labelled:
    handoff: Handoff
    converted: bool


@dataclass(frozen=True, slots=True)
class Cohort:
    rows: tuple[Labelled, ...]  # handoffs in the window with a decided outcome
    target: str
    window_from_ms: int | None  # as asked (None: unbounded), else the handoffs' span
    window_to_ms: int | None
    handoffs: int  # in the window, whatever their outcome
    open: int  # in the window, no decided outcome yet
    outcomes_without_mql: int  # leads with a decided outcome but no MQL before it
    erased_leads: int
    model_versions: Mapping[str, int] = field(default_factory=dict)
    sources: Mapping[str, int] = field(default_factory=dict)
    dispositions: Mapping[str, int] = field(default_factory=dict)  # of the rejections counted

    @property
    def decided(self) -> int:
        return len(self.rows)

    @property
    def converted(self) -> int:
        return sum(1 for r in self.rows if r.converted)


def follow_ups(
    handoffs: Iterable[Handoff], outcomes: Iterable[Outcome]
) -> tuple[dict[str, dict[str, Handoff]], dict[tuple[str, str], list[Outcome]], set[str], dict[str, list[Outcome]]]:
    """(lead -> {MQL id: handoff}, (lead, MQL id) -> the CRM statuses that followed it, erased
    leads, lead -> its CRM statuses before any MQL). Duplicates (the same MQL id or CRM event id
    delivered twice) count once."""
    by_lead: dict[str, dict[str, Handoff]] = defaultdict(dict)
    for h in handoffs:
        by_lead[h.lead_id].setdefault(h.mql_id, h)
    statuses: dict[str, dict[str, Outcome]] = defaultdict(dict)
    for o in outcomes:
        statuses[o.lead_id].setdefault(o.event_id, o)
    erased = {lead for lead, events in statuses.items() if any(o.status == ERASED_STATUS for o in events.values())}
    followed: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    orphaned: dict[str, list[Outcome]] = defaultdict(list)
    for lead, events in statuses.items():
        if lead in erased:
            continue
        mqls = sorted(by_lead.get(lead, {}).values(), key=lambda h: (h.occurred_at_ms, h.mql_id))
        times = [h.occurred_at_ms for h in mqls]
        for o in sorted(events.values(), key=lambda o: (o.occurred_at_ms, o.event_id)):
            i = bisect.bisect_right(times, o.occurred_at_ms) - 1
            if i < 0:
                orphaned[lead].append(o)
            else:
                followed[(lead, mqls[i].mql_id)].append(o)
    return by_lead, followed, erased, orphaned


def build_cohort(
    handoffs: Iterable[Handoff],
    outcomes: Iterable[Outcome],
    *,
    target: str = "sql",
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> Cohort:
    """Join, label and window (``from_ms`` <= handoff time < ``to_ms``)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    reached = TARGETS[target]
    by_lead, followed, erased, orphaned = follow_ups(handoffs, outcomes)
    decisive = reached | LOST_STATUSES
    orphans = sum(1 for events in orphaned.values() if any(o.status in decisive for o in events))
    rows: list[Labelled] = []
    window: list[Handoff] = []
    versions: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    dispositions: Counter[str] = Counter()
    for lead, mql_map in by_lead.items():
        if lead in erased:
            continue
        for h in mql_map.values():
            if (from_ms is not None and h.occurred_at_ms < from_ms) or (
                to_ms is not None and h.occurred_at_ms >= to_ms
            ):
                continue
            window.append(h)
            versions[h.model_version] += 1
            sources[h.source] += 1
            got = followed.get((lead, h.mql_id), [])
            if any(o.status in reached for o in got):
                rows.append(Labelled(h, True))
            elif any(o.status in LOST_STATUSES for o in got):
                rows.append(Labelled(h, False))
                lost = next(o for o in got if o.status in LOST_STATUSES)
                dispositions[lost.disposition or ("none" if lost.status == "rejected" else lost.status)] += 1
    rows.sort(key=lambda r: (r.handoff.occurred_at_ms, r.handoff.mql_id))
    span = [h.occurred_at_ms for h in window]
    return Cohort(
        rows=tuple(rows),
        target=target,
        window_from_ms=from_ms if from_ms is not None else (min(span) if span else None),
        window_to_ms=to_ms if to_ms is not None else (max(span) if span else None),
        handoffs=len(window),
        open=len(window) - len(rows),
        outcomes_without_mql=orphans,
        erased_leads=len(erased),
        model_versions=dict(versions),
        sources=dict(sources),
        dispositions=dict(dispositions),
    )
