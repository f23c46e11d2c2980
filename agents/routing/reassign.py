"""SLA reassignment: an untouched lead moves to the next eligible rep (pure; no framework imports).

The SLA agent marks the breaches of the tiers that reassign (``reassignment`` in sla.yaml)
with ``action: reassign``. The routing agent reads ``<p>.out.sla-breaches`` next to the MQLs
(same key, same partition, same table ``lead_to_assignment``) and, for such a breach:

1. ``reassign_action(memo, breach)`` - the idempotency decision. None: reassign. Otherwise
   why not (the last two are counted as skipped duplicates): ``unknown_lead`` (routing never assigned this lead), ``duplicate`` (the lead's
   current assignment *is* this breach's reassignment: a redelivered breach), ``stale`` (the
   breach is about an assignment the lead no longer has: reassigned or re-routed since);
2. ``plan_reassignment(plan, ...)`` - the lead's routing plan again (``rules.plan`` from the
   facts kept in the memo), without the owner who missed the SLA and everyone who already
   had this MQL (``memo.owners``); ``reassignment.to: manager`` (routing.yaml) puts the
   missing owner's manager first. The fallback owner stays last, unless they are the owner
   who missed it: then None (``no_other_owner``; the lead stays, the ladder goes on);
3. the Redis script runs it like any plan, under the idempotency key ``reassignment_id``
   (derived from lead and breach), and moves the lead's open slot from the old owner to the
   new one in the same call; a redelivery after a crash gets the same owner and time back;
4. ``reassignment_record(...)`` - the ``lead_assigned`` record: same MQL event (the SLA agent
   continues the ladder of that MQL), a fresh first-touch deadline, ``reassigned_from``,
   ``replaces_assignment_id``, ``cause_event_id`` (the breach), and the reason
   ``reassigned: first touch SLA breached by ae-ben (tier 2, 4 h); P1 (...): ...``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agents.domain.identity import deterministic_id
from agents.routing.assignment import Assignment, assignment_record
from agents.routing.config import RoutingConfig
from agents.routing.facts import LeadFacts, PriorityDecision, facts_from_mql
from agents.routing.redelivery import RoutingMemo
from agents.routing.roster import Roster
from agents.routing.rules import (
    FALLBACK_RULE,
    NOT_APPLICABLE,
    SINGLE,
    SKIPPED,
    Candidate,
    Decision,
    Plan,
    Stage,
    audit,
)

REASSIGN = "reassign"  # sla_breached.action
MANAGER_RULE = "reassign:manager"
REDELIVERY_SKIPS = ("duplicate", "stale")  # leadflow_duplicates_skipped_total{stage="reassign_<...>"}

_S, _M, _H, _D = 1_000, 60_000, 3_600_000, 86_400_000


def wants_reassignment(breach: dict[str, Any]) -> bool:
    return breach.get("action") == REASSIGN


def reassignment_id(lead_id: str, breach_event_id: str) -> str:
    """Id of the assignment a breach causes (also its Redis idempotency key)."""
    return deterministic_id(lead_id, "reassigned", breach_event_id, prefix="as_")


def reassign_action(memo: RoutingMemo | None, breach: dict[str, Any]) -> str | None:
    """None = reassign the lead now; else why not: ``unknown_lead``, ``duplicate`` or ``stale``."""
    if memo is None or not memo.record:
        return "unknown_lead"
    current = memo.record.get("event_id")
    if current == reassignment_id(breach["lead_id"], breach["event_id"]):
        return "duplicate"
    if current != breach["assignment_id"] or memo.record.get("owner_id") != breach["owner_id"]:
        return "stale"
    return None


# --- the facts kept in the memo -------------------------------------------------------------


def facts_to_dict(facts: LeadFacts, priority: PriorityDecision) -> dict[str, Any]:
    return {
        "lead_id": facts.lead_id,
        "mql_event_id": facts.mql_event_id,
        "mql_number": facts.mql_number,
        "score": facts.score,
        "fit_grade": facts.fit_grade,
        "fast_track": facts.fast_track,
        "domain": facts.domain,
        "country": facts.country,
        "company_size": facts.company_size,
        "industry": facts.industry,
        "form_kinds": sorted(facts.form_kinds),
        "signals": sorted(facts.signals),
        "facts_known": facts.facts_known,
        "priority": [priority.priority, priority.lead_type, priority.segment, priority.reason],
    }


def facts_of(memo: RoutingMemo, config: RoutingConfig) -> tuple[LeadFacts, PriorityDecision]:
    """The facts and priority the MQL was routed with (memos written before they were kept:
    what the assignment's handoff says - form touches; firmographics and account domain unknown)."""
    d = memo.facts
    if d is None:
        rec = memo.record
        facts = facts_from_mql(
            {
                "lead_id": rec["lead_id"],
                "event_id": memo.mql_event_id,
                "mql_number": memo.mql_number,
                "handoff": rec.get("handoff"),
            },
            config,
        )
        return facts, PriorityDecision(
            memo.priority,
            "unknown",
            config.segment_for(facts.company_size),
            f"priority {memo.priority} kept from the first assignment",
        )
    facts = LeadFacts(
        lead_id=d["lead_id"],
        mql_event_id=d["mql_event_id"],
        mql_number=int(d["mql_number"]),
        score=float(d["score"]),
        fit_grade=d["fit_grade"],
        fast_track=bool(d["fast_track"]),
        domain=d["domain"],
        country=d["country"],
        company_size=d["company_size"],
        industry=d["industry"],
        form_kinds=frozenset(d["form_kinds"]),
        signals=frozenset(d["signals"]),
        facts_known=bool(d.get("facts_known", True)),  # memos before v3 kept firmographics read from the handoff
    )
    return facts, PriorityDecision(*d["priority"])


# --- planning -----------------------------------------------------------------------------


def plan_reassignment(
    base: Plan,
    *,
    owner_id: str,
    previous: tuple[str, ...],
    roster: Roster | None,
    config: RoutingConfig,
    now_ms: int,
    why: str,
) -> Plan | None:
    """``base`` (the lead's routing plan now) without ``owner_id`` (who missed the SLA: ``why``)
    and ``previous`` (everyone who had this MQL); None when nobody else can take the lead."""
    excluded = {owner_id, *previous}
    pending = [audit(owner_id, SKIPPED, f"reassign: {why}")]
    pending += [audit(o, SKIPPED, "reassign: already had this lead") for o in dict.fromkeys(previous) if o != owner_id]
    stages: list[Stage] = []
    if config.reassignment.to == "manager":
        stage, note = _manager_stage(owner_id, excluded, roster, now_ms)
        if stage is not None:
            stages.append(replace(stage, audit_before=tuple(pending)))
            pending = []
        else:
            pending.append(note)
    for stage in base.stages:
        pending.extend(stage.audit_before)
        if stage.rule == FALLBACK_RULE:  # the owner of last resort, even if they had it before
            candidates = tuple(c for c in stage.candidates if c.rep_id != owner_id)
        else:
            candidates = tuple(c for c in stage.candidates if c.rep_id not in excluded)
        if not candidates:
            pending.append(audit(stage.rule, NOT_APPLICABLE, "reassign: nobody left who has not had this lead"))
            continue
        stages.append(replace(stage, candidates=candidates, audit_before=tuple(pending)))
        pending = []
    if not stages:
        return None
    return replace(base, stages=tuple(stages))


def _manager_stage(owner_id: str, excluded: set[str], roster: Roster | None, now_ms: int):
    owner = roster.reps.get(owner_id) if roster else None
    manager = roster.reps.get(owner.manager) if owner is not None and owner.manager and roster else None
    if owner is None or manager is None:  # no owner, no manager
        return None, audit(MANAGER_RULE, NOT_APPLICABLE, f"{owner_id} has no manager in the roster")
    if manager.id in excluded:
        return None, audit(manager.id, SKIPPED, f"{MANAGER_RULE}: already had this lead")
    unavailable = manager.unavailable_reason(now_ms)
    if unavailable is not None:
        return None, audit(manager.id, SKIPPED, f"{MANAGER_RULE}: {unavailable}")
    stage = Stage(
        MANAGER_RULE,
        SINGLE,
        (Candidate(manager.id, manager.capacity),),
        reason=f"{manager.name} manages {owner.name}, who missed the SLA",
    )
    return stage, None


# --- the record ---------------------------------------------------------------------------


def describe_duration(ms: int) -> str:
    """``14_400_000`` -> ``4 h``; ``600_000`` -> ``10 min``; ``6_000`` -> ``6 s``."""
    ms = max(0, int(ms))
    if ms >= _D and ms % _D == 0:
        return f"{ms // _D} d"
    for unit, name in ((_H, "h"), (_M, "min")):
        if ms >= unit:
            return f"{round(ms / unit, 1):g} {name}"
    return f"{round(ms / _S, 1):g} s"


def breach_reason(breach: dict[str, Any], memo: RoutingMemo) -> str:
    """``first touch SLA breached by ae-ben (tier 2, 4 h)``: how long the lead had gone
    untouched at the missed deadline - since this owner's assignment for tier 0 (their own
    first-touch SLA), since the MQL's first assignment for an escalation tier."""
    tier = int(breach["tier"])
    if tier == 0:
        start = memo.record.get("assigned_at")
    else:
        start = breach.get("first_assigned_at") or memo.first_assigned_at or memo.record.get("assigned_at")
    elapsed = describe_duration(int(breach["due_at"]) - int(start)) if start is not None else "?"
    return f"first touch SLA breached by {breach['owner_id']} (tier {tier}, {elapsed})"


def reassignment_record(
    p: Plan,
    decision: Decision,
    memo: RoutingMemo,
    breach: dict[str, Any],
    roster: Roster | None,
    config: RoutingConfig,
) -> Assignment:
    """The ``lead_assigned`` record of a reassignment (see the module docstring)."""
    base = assignment_record(p, decision, {"handoff": memo.record["handoff"]}, roster, config)
    record = {
        **base.record,
        "event_id": reassignment_id(breach["lead_id"], breach["event_id"]),
        "reason": f"reassigned: {breach_reason(breach, memo)}; {base.record['reason']}",
        "reassigned_from": breach["owner_id"],
        "replaces_assignment_id": breach["assignment_id"],
        "cause_event_id": breach["event_id"],
    }
    return replace(base, record=record)


def memo_after(memo: RoutingMemo, record: dict[str, Any]) -> RoutingMemo:
    """The memo once ``record`` (a reassignment of the same MQL) is the lead's assignment."""
    return replace(memo, record=record, owners=(*memo.owners, record["owner_id"]))
