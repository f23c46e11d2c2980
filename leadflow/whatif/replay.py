"""What-if replay: the retained input history re-scored with two models, in memory (pure).

No Kafka, Redis or Faust here: ``replay`` takes decoded input records (``InputRecord``, read
by ``leadflow.whatif.source`` or built by a test) and runs leadflow's own rules on them, once
per model, in event-time order:

1. capture (``agents.capture.rules.to_lead_event``, with the time the record was received as
   "now", as the worker did); rejected records are counted, not replayed;
2. erasure: a lead with an erasure request anywhere in what was read, or in ``erased``
   (the ``lead_erased`` records), is left out entirely - never replayed, never counted;
3. scoring (``agents.scoring.rules``: ``apply_event`` at each event's own time, the visitor
   buffer, the decay reviews a sweeper would have run), once with each model;
4. routing of each model's MQLs (``agents.routing``: priority, plan, priority upgrades,
   ``select_reference`` - the Python twin of the Redis selection).

Offline routing assumption (Redis is not read): the roster is the roster file; availability
(active, departed, out of office) is the file's, at the MQL's time; every rep's open-lead
count is zero at the window's start and each assignment of the replay keeps its slot to the
end (releases follow sales work the replay cannot know); round-robin cursors start at zero.
Both models get the same assumption, so their difference is the model's.

Every lead starts from nothing at the window's start (its earlier history is not replayed),
for both models alike.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.capture.exceptions import Rejected
from agents.capture.rules import CaptureLimits, to_lead_event
from agents.disposition.rules import DEFAULT_POLICY, DispositionPolicy
from agents.domain.erasure import is_erasure
from agents.domain.events import LeadEvent
from agents.routing.assignment import assignment_record
from agents.routing.config import PRIORITIES, RoutingConfig
from agents.routing.facts import classify, facts_from_mql
from agents.routing.priority import priority_policy
from agents.routing.redelivery import RoutingMemo, redelivery_action
from agents.routing.roster import Roster
from agents.routing.rules import plan
from agents.routing.selection import select_reference
from agents.routing.upgrades import plan_upgrade, upgrade_of
from agents.scoring import rules
from agents.scoring.model import ScoringModel
from agents.scoring.outputs import QualifiedOutput, VisitorLinked
from agents.scoring.state import LeadState, VisitorState
from agents.scoring.visitors import DEFAULT_MAX_BUFFERED


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One decoded input record, as read from its input topic."""

    subject: str  # form_submitted | web_activity | crm_status
    record: Mapping[str, Any]
    encoding: str  # avro | json
    raw: bytes
    received_at_ms: int  # the Kafka record's timestamp: capture's "now"
    backfill: bool = False


@dataclass(frozen=True, slots=True)
class ReplayRules:
    """What the replay runs with besides the two models (settings and configuration files)."""

    limits: CaptureLimits
    routing: RoutingConfig
    roster: Roster | None
    dispositions: DispositionPolicy = DEFAULT_POLICY
    dedup_window: int = rules.DEFAULT_DEDUP_WINDOW
    visitor_buffer_max: int = DEFAULT_MAX_BUFFERED


@dataclass(frozen=True)
class ModelRun:
    """What one model would have done over the window."""

    model_version: str
    mqls: int  # MQL crossings (priority upgrades of an MQL are not new MQLs)
    priorities: Mapping[str, int]  # per MQL crossing, its final priority -> count
    lead_priority: Mapping[str, str]  # lead id -> most urgent priority it had as an MQL
    assignments: Mapping[str, int]  # owner id -> assignments (re-routes on upgrades included)

    @property
    def mql_leads(self) -> frozenset[str]:
        return frozenset(self.lead_priority)


@dataclass(frozen=True)
class WhatIf:
    """Live model vs candidate over one window. Holds lead ids (for the deltas) but its
    summary (``to_dict``) carries only counts, rep ids and priorities."""

    from_ms: int
    to_ms: int
    inputs_read: int
    events_replayed: int
    rejected: int
    erased_leads: int
    live: ModelRun
    candidate: ModelRun
    notes: tuple[str, ...] = field(default=())

    @property
    def gained(self) -> frozenset[str]:
        return self.candidate.mql_leads - self.live.mql_leads

    @property
    def lost(self) -> frozenset[str]:
        return self.live.mql_leads - self.candidate.mql_leads

    def priority_changes(self) -> dict[tuple[str, str], int]:
        """(live priority, candidate priority) -> leads, for leads that are MQLs under both."""
        both = self.live.mql_leads & self.candidate.mql_leads
        changes = Counter(
            (self.live.lead_priority[lead], self.candidate.lead_priority[lead])
            for lead in both
            if self.live.lead_priority[lead] != self.candidate.lead_priority[lead]
        )
        return dict(sorted(changes.items()))

    def rep_deltas(self) -> dict[str, tuple[int, int]]:
        """owner id -> (live assignments, candidate assignments), owners whose count changed."""
        owners = sorted(set(self.live.assignments) | set(self.candidate.assignments))
        counts = {o: (self.live.assignments.get(o, 0), self.candidate.assignments.get(o, 0)) for o in owners}
        return {o: c for o, c in counts.items() if c[0] != c[1]}

    def to_dict(self) -> dict[str, Any]:
        def run(r: ModelRun) -> dict[str, Any]:
            return {
                "model_version": r.model_version,
                "mqls": r.mqls,
                "mql_leads": len(r.lead_priority),
                "priorities": {p: r.priorities.get(p, 0) for p in PRIORITIES},
                "assignments": dict(sorted(r.assignments.items())),
            }

        return {
            "window": {"from_ms": self.from_ms, "to_ms": self.to_ms},
            "inputs_read": self.inputs_read,
            "events_replayed": self.events_replayed,
            "rejected": self.rejected,
            "erased_leads_skipped": self.erased_leads,
            "live": run(self.live),
            "candidate": run(self.candidate),
            "mqls_gained": len(self.gained),
            "mqls_lost": len(self.lost),
            "priority_changes": [{"from": a, "to": b, "leads": n} for (a, b), n in self.priority_changes().items()],
            "rep_deltas": {o: {"live": a, "candidate": b, "delta": b - a} for o, (a, b) in self.rep_deltas().items()},
            "notes": list(self.notes),
        }


def replay(
    inputs: Iterable[InputRecord],
    live: ScoringModel,
    candidate: ScoringModel,
    setup: ReplayRules,
    *,
    from_ms: int,
    to_ms: int,
    erased: Iterable[str] = (),
    notes: tuple[str, ...] = (),
) -> WhatIf:
    """Both models over the events that happened in ``[from_ms, to_ms)``."""
    captured, read, rejected, erased_ids = capture_all(inputs, setup.limits)
    erased_ids |= set(erased)
    events = sorted(
        (
            e
            for e in captured
            if from_ms <= e.occurred_at_ms < to_ms and (e.lead_id is None or e.lead_id not in erased_ids)
        ),
        key=lambda e: (e.occurred_at_ms, rules.dedup_key_of(e)),
    )
    seen_erased = {e.lead_id for e in captured if e.lead_id in erased_ids}
    return WhatIf(
        from_ms=from_ms,
        to_ms=to_ms,
        inputs_read=read,
        events_replayed=len(events),
        rejected=rejected,
        erased_leads=len(seen_erased),
        live=run_model(events, live, setup, until_ms=to_ms),
        candidate=run_model(events, candidate, setup, until_ms=to_ms),
        notes=notes,
    )


def capture_all(inputs: Iterable[InputRecord], limits: CaptureLimits) -> tuple[list[LeadEvent], int, int, set[str]]:
    """(captured events other than erasure requests, records read, records rejected, lead ids
    with an erasure request)."""
    events: list[LeadEvent] = []
    erased: set[str] = set()
    read = rejected = 0
    for item in inputs:
        read += 1
        try:
            event = to_lead_event(
                item.subject,
                item.record,
                item.encoding,
                raw=item.raw,
                received_at_ms=item.received_at_ms,
                now_ms=item.received_at_ms,
                limits=limits,
                backfill=item.backfill,
            )
        except Rejected:
            rejected += 1
            continue
        if is_erasure(event):
            assert event.lead_id is not None  # a CRM status always names its lead
            erased.add(event.lead_id)
        else:
            events.append(event)
    return events, read, rejected, erased


def run_model(events: list[LeadEvent], model: ScoringModel, setup: ReplayRules, *, until_ms: int) -> ModelRun:
    """Score ``events`` (in event-time order) with ``model`` and route its MQLs."""
    mqls = _score(events, model, setup, until_ms=until_ms)
    return _route(mqls, model.version, setup)


def _score(
    events: list[LeadEvent], model: ScoringModel, setup: ReplayRules, *, until_ms: int
) -> list[tuple[int, dict[str, Any]]]:
    """The lead_qualified records a live worker would have sent, with the time each was decided."""
    priority = priority_policy(setup.routing)
    leads: dict[str, LeadState] = {}
    visitors: dict[str, VisitorState] = {}
    due: list[tuple[int, str]] = []  # (review time, lead id): the sweeper's due index
    mqls: list[tuple[int, dict[str, Any]]] = []

    def save(state: LeadState) -> None:
        leads[state.lead_id] = state
        at = rules.next_review_at_ms(state, model)
        if at is not None:
            heapq.heappush(due, (at, state.lead_id))

    def take(outputs: list[Any], now_ms: int, pending: list[LeadEvent]) -> None:
        for out in outputs:
            if isinstance(out, QualifiedOutput):
                mqls.append((now_ms, out.record))
            elif isinstance(out, VisitorLinked):
                vstate, forwards = rules.link_visitor(
                    visitors.get(out.visitor_id), out.lead_id, visitor_id=out.visitor_id
                )
                visitors[out.visitor_id] = vstate
                pending.extend(forwards)

    def score(event: LeadEvent, now_ms: int) -> None:
        pending = [event]
        while pending:
            ev = pending.pop(0)
            assert ev.lead_id is not None  # identified events only (forwards carry their lead)
            old = leads.get(ev.lead_id)
            new, outputs = rules.apply_event(
                old,
                ev,
                model,
                now_ms=now_ms,
                dedup_window=setup.dedup_window,
                dispositions=setup.dispositions,
                priority=priority,
            )
            if new is old:  # a duplicate
                continue
            save(new)
            take(outputs, now_ms, pending)

    def run_reviews(until: int) -> None:
        while due and due[0][0] <= until:
            at, lead_id = heapq.heappop(due)
            state = leads[lead_id]
            if rules.next_review_at_ms(state, model) != at:
                continue  # rescheduled since, as the sweeper's stale entries
            new, outputs = rules.review(state, model, now_ms=at)
            leads[lead_id] = new
            take(outputs, at, [])
            later = rules.next_review_at_ms(new, model)
            if later is not None and later > at:
                heapq.heappush(due, (later, lead_id))

    for event in events:
        now_ms = event.occurred_at_ms  # processed live, as it happened
        run_reviews(now_ms)
        if event.lead_id is not None:
            score(event, now_ms)
        elif event.visitor_id is not None:
            vstate, forwards = rules.apply_visitor_event(
                visitors.get(event.visitor_id), event, model, max_buffered=setup.visitor_buffer_max
            )
            visitors[event.visitor_id] = vstate
            for forward in forwards:
                score(forward, now_ms)
    run_reviews(until_ms)
    return mqls


def _route(mqls: list[tuple[int, dict[str, Any]]], version: str, setup: ReplayRules) -> ModelRun:
    """Route MQL records as the routing agent does, with the offline roster assumption."""
    config, roster = setup.routing, setup.roster
    memos: dict[str, RoutingMemo] = {}
    open_leads: dict[str, set[str]] = {}
    cursors: dict[str, dict[str, int]] = {}
    crossings: dict[tuple[str, int], str] = {}
    assignments: Counter[str] = Counter()
    for now_ms, record in mqls:
        facts = facts_from_mql(record, config)
        decided = classify(facts, config)
        memo = memos.get(facts.lead_id)
        if redelivery_action(memo, facts, decided.priority) is not None:
            continue  # the same MQL without a priority raise: the agent skips it too
        the_plan = plan(record, roster, config, now_ms=now_ms, facts=facts, priority=decided)
        if memo is not None and upgrade_of(memo, facts.mql_number, decided.priority):
            the_plan = plan_upgrade(the_plan, memo, roster, config, now_ms=now_ms)
        decision = select_reference(the_plan, open_leads, cursors, lead_id=facts.lead_id, now_ms=now_ms)
        assignment = assignment_record(the_plan, decision, record, roster, config)
        memos[facts.lead_id] = RoutingMemo(facts.mql_event_id, facts.mql_number, assignment.priority, assignment.record)
        assignments[assignment.record["owner_id"]] += 1
        crossings[(facts.lead_id, facts.mql_number)] = assignment.priority
    lead_priority: dict[str, str] = {}
    for (lead_id, _), prio in crossings.items():
        known = lead_priority.get(lead_id)
        if known is None or PRIORITIES.index(prio) < PRIORITIES.index(known):
            lead_priority[lead_id] = prio
    return ModelRun(
        model_version=version,
        mqls=len(crossings),
        priorities=dict(Counter(crossings.values())),
        lead_priority=lead_priority,
        assignments=dict(assignments),
    )
