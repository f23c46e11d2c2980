"""Pure routing rules: MQL -> priority -> an ordered routing plan -> the assignment record.

No Faust, Redis or Prometheus here (a unit test enforces it). The split of work:

1. ``plan(record, roster, config, now_ms)`` (pure) decides the priority and lists the
   *stages* to try, in order, each with its candidates and an audit of everyone it skipped
   and why (inactive, departed, out of office, wrong role, rule not matched...):

   P1/P2 (a rep role from the priority table: AE, SDR):
     a. ``account_owner``: the owner of the lead's account domain (capacity ignored unless
        ``account_owner.ignore_capacity`` is false);
     b. ``rule:<name>``: the first territory/attribute rule whose conditions hold and that has
        members of the needed role; weighted round robin among its available members, then
        ``rule:<name>:default_owner``;
     c. ``territory:<id>``: weighted round robin among the available reps of the role who
        serve the lead's territory (so a US lead reaches North America reps even when no rule
        names its case);
     d. ``round_robin:<role>``: weighted round robin among all available reps of the role
        (``round_robin: true``) not already considered - the last resort before
     e. ``fallback``: the named fallback owner - always takes the lead.
   The lead type only decides the priority, hence the role; who owns the lead is decided by
   the steps above from the lead's attributes (account, territory, segment, industry...).
   Every rule tried is in the audit trail, in this order.
   P3: ``nurture`` (the nurture owner), then ``fallback``.
   No roster loaded: ``fallback`` with reason ``roster_not_loaded``.
   A record written before lead_qualified v3 has unknown firmographics (``agents.routing.facts``):
   the audit's first line says so, and the steps that need them do not match.

2. The Redis adapter (``agents.routing.roster_store``) runs the stages atomically in one Lua call:
   the first ``single`` stage whose candidate has room (open leads < capacity) wins; a
   ``pool`` stage picks by *smooth weighted round robin* where each available rep's weight is
   its remaining capacity (capacity - open leads), so equal reps alternate (counts within
   one of each other) and a rep with three times the room gets three times the leads until
   the room evens out; reps with no room are skipped (audited "at capacity"). Cursors and
   open-lead sets are updated in the same call, together with the idempotency key of the
   MQL event, so two workers never hand out the same slot and a redelivered MQL gets its
   first decision back. ``agents.routing.selection.select_reference`` is the same algorithm
   in Python (the unit tests' oracle, and the specification of the Lua script).

3. ``agents.routing.assignment.assignment_record(plan, decision, ...)`` (pure) builds the
   ``lead_assigned`` record: owner, priority, first-touch deadline (SLA from the priority
   table, per segment), the rule that matched and why, and the audit trail (pre-skips +
   capacity results, in order).

Fallback reasons (metric label, bounded): ``roster_not_loaded``,
``nurture_owner_unavailable``, ``capacity_exhausted`` (someone suitable existed but was
full), ``no_available_owner`` (suitable reps exist but are inactive/departed/out of office),
``no_candidates`` (nobody has the role), ``routing_error`` (a bug; see the agent),
``roster_unreadable`` (routing's data in Redis is corrupt; ``agents.routing.pending``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.routing.config import RoutingConfig
from agents.routing.facts import LEGACY_FACTS_NOTE, LeadFacts, PriorityDecision, classify, facts_from_mql
from agents.routing.matching import describe_match, rule_mismatch, serves
from agents.routing.roster import Rep, Roster, Rule

SINGLE, POOL = "single", "pool"
CHOSEN, SKIPPED, ELIGIBLE = "chosen", "skipped", "eligible"
NOT_MATCHED, NOT_APPLICABLE = "not_matched", "not_applicable"
FALLBACK_RULE, NURTURE_RULE, ACCOUNT_OWNER_RULE = "fallback", "nurture", "account_owner"
FALLBACK_REASONS = (
    "roster_not_loaded",
    "nurture_owner_unavailable",
    "capacity_exhausted",
    "no_available_owner",
    "no_candidates",
    "routing_error",
    "roster_unreadable",
)


@dataclass(frozen=True, slots=True)
class Candidate:
    rep_id: str
    capacity: int | None  # None = no limit


@dataclass(frozen=True, slots=True)
class Stage:
    rule: str  # "account_owner", "rule:<name>", "rule:<name>:default_owner", "round_robin:<role>", ...
    kind: str  # SINGLE or POOL
    candidates: tuple[Candidate, ...]
    reason: str  # why this stage applies, for the record's reason
    pool: str | None = None  # round-robin cursor name (POOL stages)
    audit_before: tuple[dict[str, str], ...] = ()  # skips/non-matches evaluated before this stage


@dataclass(frozen=True, slots=True)
class Plan:
    facts: LeadFacts
    priority: PriorityDecision
    role: str | None  # None for nurture
    territory: str | None
    stages: tuple[Stage, ...]  # the last one is always the fallback
    fallback_hint: str  # fallback reason if the last stage is reached without capacity skips
    roster_version: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What the atomic selection decided (returned by the Lua script, stored for replays)."""

    stage: int
    rule: str
    owner_id: str
    assigned_at_ms: int
    roster_version: int
    # Per stage evaluated (up to and including the chosen one): (rep, open leads, capacity or None).
    evaluated: tuple[tuple[tuple[str, int, int | None], ...], ...] = ()
    replay: bool = False


def audit(candidate: str, decision: str, reason: str) -> dict[str, str]:
    return {"candidate": candidate, "decision": decision, "reason": reason}


# --- 1. planning --------------------------------------------------------------------------


def plan(
    record: dict[str, Any],
    roster: Roster | None,
    config: RoutingConfig,
    *,
    now_ms: int,
    roster_version: int = 0,
    facts: LeadFacts | None = None,
    priority: PriorityDecision | None = None,
) -> Plan:
    facts = facts or facts_from_mql(record, config)
    priority = priority or classify(facts, config)
    rule_of_priority = config.priorities[priority.priority]  # type: ignore[index]
    role = None if rule_of_priority.nurture else rule_of_priority.role
    territory = roster.territory_for(facts.country) if roster else None
    builder = _Builder(roster, now_ms)
    if not facts.facts_known:  # a record written before lead_qualified v3 (agents.routing.facts)
        builder.note(audit("firmographics", NOT_APPLICABLE, LEGACY_FACTS_NOTE))
    if roster is None:
        hint = "roster_not_loaded"
        builder.note(audit("roster", SKIPPED, "no roster loaded in Redis (run `leadflow roster load FILE`)"))
    elif role is None:
        hint = _plan_nurture(builder, roster, config)
    else:
        hint = _plan_rep(builder, roster, config, facts, priority, role, territory.id if territory else None)
    builder.stage(
        FALLBACK_RULE,
        SINGLE,
        [Candidate(config.fallback.owner_id, None)],
        reason="no rule or rep could take the lead",
    )
    return Plan(
        facts=facts,
        priority=priority,
        role=role,
        territory=territory.id if territory else None,
        stages=tuple(builder.stages),
        fallback_hint=hint,
        roster_version=roster_version,
    )


def fallback_plan(
    record: dict[str, Any], config: RoutingConfig, *, reason: str, roster_version: int = 0, note: str | None = None
) -> Plan:
    """A plan that goes straight to the fallback owner (used when planning itself failed, or
    when the roster in Redis is unusable: ``note`` says what was wrong, for the audit)."""
    facts = facts_from_mql(record, config)
    try:
        priority = classify(facts, config)
    except Exception:  # noqa: BLE001 - last resort: never leave the lead unassigned
        priority = PriorityDecision(
            config.default_lead_type.priority, config.default_lead_type.name, None, "unclassified"
        )
    stage = Stage(
        FALLBACK_RULE,
        SINGLE,
        (Candidate(config.fallback.owner_id, None),),
        reason="routing failed",
        audit_before=(audit("routing", SKIPPED, note or f"routing rules failed ({reason})"),),
    )
    return Plan(
        facts=facts,
        priority=priority,
        role=None,
        territory=None,
        stages=(stage,),
        fallback_hint=reason,
        roster_version=roster_version,
    )


class _Builder:
    def __init__(self, roster: Roster | None, now_ms: int) -> None:
        self.roster = roster
        self.now_ms = now_ms
        self.stages: list[Stage] = []
        self.pending: list[dict[str, str]] = []
        self.considered: set[str] = set()  # reps already audited or offered (not repeated)
        self.unavailable = 0  # suitable reps skipped as inactive/departed/out of office

    def note(self, entry: dict[str, str]) -> None:
        self.pending.append(entry)

    def stage(self, rule: str, kind: str, candidates: list[Candidate], *, reason: str, pool: str | None = None) -> None:
        self.stages.append(Stage(rule, kind, tuple(candidates), reason, pool, tuple(self.pending)))
        self.pending = []
        self.considered.update(c.rep_id for c in candidates)

    def available(self, rep: Rep, context: str) -> bool:
        """Audit a suitable rep who cannot take leads now; True if they can."""
        why = rep.unavailable_reason(self.now_ms)
        if why is None:
            return True
        self.note(audit(rep.id, SKIPPED, f"{context}: {why}"))
        self.considered.add(rep.id)
        self.unavailable += 1
        return False


def _plan_nurture(b: _Builder, roster: Roster, config: RoutingConfig) -> str:
    rep = roster.reps.get(config.nurture_owner)
    if rep is None:
        b.note(audit(config.nurture_owner, SKIPPED, "nurture owner is not in the roster"))
        return "nurture_owner_unavailable"
    if b.available(rep, "nurture owner"):
        b.stage(NURTURE_RULE, SINGLE, [Candidate(rep.id, None)], reason="P3 goes to the nurture owner")
    return "nurture_owner_unavailable"


def _plan_rep(
    b: _Builder,
    roster: Roster,
    config: RoutingConfig,
    facts: LeadFacts,
    priority: PriorityDecision,
    role: str,
    territory: str | None,
) -> str:
    # a. account owner
    owner_id = roster.account_owners.get(facts.domain or "") if config.account_owner.enabled else None
    if owner_id is not None and owner_id in roster.reps:
        rep = roster.reps[owner_id]
        if b.available(rep, f"account owner of {facts.domain}"):
            capacity = None if config.account_owner.ignore_capacity else rep.capacity
            b.stage(
                ACCOUNT_OWNER_RULE,
                SINGLE,
                [Candidate(rep.id, capacity)],
                reason=f"{rep.name} owns the account {facts.domain}",
            )
    # b. territory / attribute rules: the first one that matches and serves the role
    for rule in roster.rules:
        mismatch = rule_mismatch(rule, facts, priority, role, territory)
        if mismatch is not None:
            b.note(audit(f"rule:{rule.name}", NOT_MATCHED, mismatch))
            continue
        if _plan_rule(b, roster, rule, facts, priority, role, territory):
            break
    # c. the reps of the role who serve the lead's territory
    if config.territory_round_robin.enabled and territory is not None:
        _plan_territory(b, roster, role, territory)
    # d. weighted round robin among all reps of the role
    if config.round_robin.enabled:
        pool = []
        for rep in roster.reps_with_role(role):
            if rep.id in b.considered or not rep.round_robin:
                continue
            if b.available(rep, f"round robin {role}"):
                pool.append(Candidate(rep.id, rep.capacity))
        if pool:
            b.stage(
                f"round_robin:{role}",
                POOL,
                pool,
                pool=f"round_robin:{role}",
                reason=f"weighted round robin among available {role}s",
            )
    if not roster.reps_with_role(role) and owner_id is None:
        return "no_candidates"
    return "no_available_owner" if b.unavailable else "no_candidates"


def _plan_territory(b: _Builder, roster: Roster, role: str, territory: str) -> None:
    name = f"territory:{territory}"
    pool = []
    for rep in roster.reps_with_role(role):
        if rep.id in b.considered or not rep.round_robin or territory not in rep.territories:
            continue
        if b.available(rep, name):
            pool.append(Candidate(rep.id, rep.capacity))
    if pool:
        b.stage(
            name,
            POOL,
            pool,
            pool=f"{name}:{role}",
            reason=f"weighted round robin among available {role}s serving territory {territory}",
        )
    else:
        b.note(audit(name, NOT_APPLICABLE, f"no other available {role} serves territory {territory}"))


def _plan_rule(
    b: _Builder,
    roster: Roster,
    rule: Rule,
    facts: LeadFacts,
    priority: PriorityDecision,
    role: str,
    territory: str | None,
) -> bool:
    """Stages for a matching rule; False if it has nobody of the needed role (try the next)."""
    name = f"rule:{rule.name}"
    if rule.members:
        members = [roster.reps[m] for m in rule.members if m in roster.reps]
        wrong = [m for m in members if m.role != role]
        members = [m for m in members if m.role == role]
    else:  # reps of the role who serve the lead's territory and segment (see serves())
        members = [rep for rep in roster.reps_with_role(role) if serves(rep, rule, territory, priority.segment)]
        wrong = []
    if not members:
        b.note(audit(name, NOT_APPLICABLE, f"matched, but has no {role} members for this lead"))
        return False
    for rep in wrong:
        if rep.id not in b.considered:
            b.note(audit(rep.id, SKIPPED, f"{name}: role {rep.role}, a {priority.priority} lead needs a {role}"))
    pool = [Candidate(rep.id, rep.capacity) for rep in members if rep.id not in b.considered and b.available(rep, name)]
    why = describe_match(rule, facts, priority, territory)
    if pool:
        b.stage(name, POOL, pool, pool=f"{name}:{role}", reason=f"matched rule {rule.name} ({why})")
    owner = roster.reps.get(rule.default_owner)
    if owner is not None and owner.id not in b.considered and b.available(owner, f"{name} default owner"):
        b.stage(
            f"{name}:default_owner",
            SINGLE,
            [Candidate(owner.id, owner.capacity)],
            reason=f"matched rule {rule.name} ({why}); its members could not take the lead, default owner",
        )
    return True
