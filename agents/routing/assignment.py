"""Step 3 of routing (``agents.routing.rules``): the ``lead_assigned`` record a plan and the
selection's decision make - owner, priority, first-touch deadline, the rule that matched and
why, and the audit trail (pre-skips + capacity results, in order). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.domain.identity import deterministic_id
from agents.routing.config import RoutingConfig
from agents.routing.matching import owner_of
from agents.routing.roster import Roster
from agents.routing.rules import CHOSEN, ELIGIBLE, FALLBACK_RULE, POOL, SKIPPED, Decision, Plan, audit


def assignment_id(lead_id: str, mql_event_id: str) -> str:
    return deterministic_id(lead_id, "assigned", mql_event_id, prefix="as_")


@dataclass(frozen=True, slots=True)
class Assignment:
    record: dict[str, Any]  # Avro lead_assigned fields
    fallback_reason: str | None
    rule: str
    priority: str


def assignment_record(
    p: Plan,
    decision: Decision,
    record: dict[str, Any],
    roster: Roster | None,
    config: RoutingConfig,
) -> Assignment:
    facts, priority = p.facts, p.priority
    owner = owner_of(decision.owner_id, roster, config)
    consistent = (
        decision.stage < len(p.stages)
        and p.stages[decision.stage].rule == decision.rule
        and (decision.roster_version == p.roster_version or p.roster_version < 0)
    )
    if consistent:
        trail, capacity_skips = _audit_trail(p, decision)
        stage_reason = p.stages[decision.stage].reason
    else:  # a replayed decision made with another roster version: keep what was decided
        trail = [
            audit(owner.id, CHOSEN, f"{decision.rule}: decided earlier with roster version {decision.roster_version}")
        ]
        capacity_skips, stage_reason = 0, decision.rule
    is_fallback = decision.rule == FALLBACK_RULE
    fallback_reason = None
    if is_fallback:
        fallback_reason = (
            "capacity_exhausted"
            if capacity_skips
            and p.fallback_hint
            not in ("roster_not_loaded", "nurture_owner_unavailable", "routing_error", "roster_unreadable")
            else p.fallback_hint
        )
        stage_reason = f"no rule or rep could take the lead ({fallback_reason}); assigned to the fallback {owner.name}"
    due = decision.assigned_at_ms + config.first_touch_sla_ms(priority.priority, priority.segment)
    out = {
        "event_id": assignment_id(facts.lead_id, facts.mql_event_id),
        "lead_id": facts.lead_id,
        "mql_event_id": facts.mql_event_id,
        "owner_id": owner.id,
        "owner_name": owner.name,
        "owner_role": owner.role,
        "team": owner.team,
        "priority": priority.priority,
        "assigned_at": decision.assigned_at_ms,
        "first_touch_due_at": due,
        "rule": decision.rule,
        "reason": f"{priority.priority} ({priority.reason}): {stage_reason}",
        "is_fallback": is_fallback,
        "audit": trail,
        "handoff": record["handoff"],
    }
    return Assignment(out, fallback_reason, decision.rule, priority.priority)


def _audit_trail(p: Plan, decision: Decision) -> tuple[list[dict[str, str]], int]:
    trail: list[dict[str, str]] = []
    capacity_skips = 0
    for index in range(decision.stage + 1):
        stage = p.stages[index]
        trail.extend(stage.audit_before)
        seen = decision.evaluated[index] if index < len(decision.evaluated) else ()
        for rep_id, open_count, capacity in seen:
            load = f"{open_count}/{capacity} open" if capacity is not None else f"{open_count} open, no limit"
            if index == decision.stage and rep_id == decision.owner_id:
                how = "weighted round robin, " if stage.kind == POOL else ""
                trail.append(audit(rep_id, CHOSEN, f"{stage.rule}: {how}{load}"))
            elif capacity is not None and open_count >= capacity:
                capacity_skips += 1
                trail.append(audit(rep_id, SKIPPED, f"{stage.rule}: at capacity ({load})"))
            else:
                trail.append(audit(rep_id, ELIGIBLE, f"{stage.rule}: {load}, not its turn in the round robin"))
    return trail, capacity_skips
