"""Priority upgrades: a P1 signal on a lead already assigned for the same MQL (pure; no framework imports).

Scoring re-issues an MQL's LeadQualified when the lead's priority rises while it is an MQL
(same ``mql_number``, its own ``event_id``, ``upgrade_of`` = the MQL's id; issue 11 item 5).
``redelivery.redelivery_action`` routes such a record again only when routing's own priority
for it (``facts.classify``) is more urgent than the one the lead was assigned with, so each
raise is acted on once; a redelivered upgrade is a ``duplicate``, the original MQL arriving
again is ``same_mql``. What routing then does is ``priority_upgrade.policy`` in routing.yaml:

- ``reroute`` (default): the lead is routed again as a lead of the new priority - the priority
  table's role (P1: an AE) through the usual steps (account owner, rules, territory, round
  robin, fallback), and its open slot moves to the new owner. An owner who already has that
  role (and is available) keeps the lead: moving it to another AE would only add a hand-off.
- ``keep_owner``: the current owner keeps the lead whatever their role, if they are still
  available (not inactive, departed or out of office) and not the fallback owner; otherwise
  as ``reroute``.

Either way a new ``lead_assigned`` is emitted (id from lead + the upgrade's event id, so a
redelivery gets the same record from the Redis decision), with the new priority and its SLA
counted from now: ``first_touch_due_at`` = assignment time + the new priority's first-touch
SLA (P1: 10 minutes), and the SLA agent opens a new clock for it. A kept owner shows as rule
``keep_owner`` with the reason ``priority raised from P2 to P1 on the same MQL; <name> keeps
the lead (priority_upgrade: keep_owner)``.
"""

from __future__ import annotations

from dataclasses import replace

from agents.routing.config import RoutingConfig
from agents.routing.redelivery import RoutingMemo, is_upgrade
from agents.routing.roster import Roster
from agents.routing.rules import SINGLE, SKIPPED, Candidate, Plan, Stage, audit

KEEP_OWNER_RULE = "keep_owner"
REROUTE, KEEP_OWNER = "reroute", "keep_owner"


def upgrade_of(memo: RoutingMemo | None, mql_number: int, priority: str) -> str | None:
    """The priority the lead had when this record raises it for the same MQL, else None."""
    if memo is None or memo.mql_number != mql_number or not is_upgrade(memo.priority, priority):
        return None
    return memo.priority


def plan_upgrade(plan: Plan, memo: RoutingMemo, roster: Roster | None, config: RoutingConfig, *, now_ms: int) -> Plan:
    """``plan`` (the lead's plan at its new priority) adjusted for ``priority_upgrade.policy``:
    a first stage that keeps the current owner when the policy says so, else an audit line
    saying why the owner changes."""
    old, new = memo.priority, plan.priority.priority
    raised = f"priority raised from {old} to {new} on the same MQL"
    priority = replace(plan.priority, reason=f"{plan.priority.reason}; {raised}")
    plan = replace(plan, priority=priority)
    owner_id = memo.record.get("owner_id")
    rep = roster.reps.get(owner_id) if roster is not None and owner_id else None
    policy = config.priority_upgrade.policy
    why_not = _why_not_keep(rep, owner_id, plan.role, policy, config, now_ms)
    if why_not is None:
        assert rep is not None  # _why_not_keep: a rep no longer in the roster does not keep the lead
        stage = Stage(
            KEEP_OWNER_RULE,
            SINGLE,
            (Candidate(rep.id, None),),
            reason=f"{raised}; {rep.name} keeps the lead (priority_upgrade: {policy})",
        )
        return replace(plan, stages=(stage, *plan.stages))
    first, *rest = plan.stages
    note = audit(owner_id or "owner", SKIPPED, f"priority_upgrade ({policy}): {why_not}")
    return replace(plan, stages=(replace(first, audit_before=(note, *first.audit_before)), *rest))


def _why_not_keep(
    rep, owner_id: str | None, role: str | None, policy: str, config: RoutingConfig, now_ms: int
) -> str | None:
    """None = the current owner keeps the lead; else why it is routed again."""
    if owner_id is None or owner_id == config.fallback.owner_id:
        return "the lead was with the fallback owner"
    if rep is None:
        return f"{owner_id} is no longer in the roster"
    unavailable = rep.unavailable_reason(now_ms)
    if unavailable is not None:
        return f"{owner_id} is {unavailable}"
    if policy == KEEP_OWNER:
        return None
    if role is not None and rep.role == role:
        return None  # reroute, but the owner already has the role the new priority needs
    needed = f"role {role}" if role else "the nurture owner"
    return f"the new priority goes to {needed}, {owner_id} has role {rep.role}"
