"""SLA reassignment, pure side: planning without the owner who missed the SLA, the audit text,
the record, and the idempotency decision on redelivered or outdated breaches."""

from __future__ import annotations

import orjson
import pytest

from agents.routing.config import RoutingConfig
from agents.routing.facts import classify, facts_from_mql
from agents.routing.reassign import (
    MANAGER_RULE,
    breach_reason,
    describe_duration,
    facts_of,
    facts_to_dict,
    memo_after,
    plan_reassignment,
    reassign_action,
    reassignment_id,
    reassignment_record,
    wants_reassignment,
)
from agents.routing.redelivery import RoutingMemo
from agents.routing.rules import plan
from agents.routing.selection import select_reference
from agents.sla.rules import breach_id
from tests.repo_config import default_routing_config
from tests.unit.agents.routing.helpers import MINUTE, NOW, mql, rep, roster, route

HOUR = 60 * MINUTE
POOL_RULE = {
    "name": "pool",
    "match": {"countries": ["US"]},
    "members": ["ae-ana", "ae-ben", "ae-cy"],
    "default_owner": "mgr-mia",
}
REPS = [
    rep("ae-ana", team="na-sales", manager="mgr-mia"),
    rep("ae-ben", team="na-sales", manager="mgr-mia"),
    rep("ae-cy", team="na-sales", manager="mgr-mia"),
    rep("mgr-mia", "manager", round_robin=False),
    rep("ae-other"),
]


def first_routing(r=None, *, open_leads=None, cursors=None):
    """An MQL routed as the agent does it, and the memo the agent keeps."""
    r = r or roster(REPS, rules=[POOL_RULE])
    record = mql(form_kind="demo_request", country="US")
    p, _, assigned, _ = route(record, r, open_leads=open_leads, cursors=cursors)
    memo = RoutingMemo(
        record["event_id"],
        1,
        assigned["priority"],
        assigned,
        owners=(assigned["owner_id"],),
        first_assigned_at=assigned["assigned_at"],
        facts=facts_to_dict(p.facts, p.priority),
    )
    return r, record, memo


def breach_of(memo, *, tier=2, due_after=4 * HOUR, action="reassign"):
    rec = memo.record
    return {
        "event_id": breach_id(rec["lead_id"], rec["event_id"], tier),
        "lead_id": rec["lead_id"],
        "assignment_id": rec["event_id"],
        "owner_id": rec["owner_id"],
        "priority": rec["priority"],
        "tier": tier,
        "escalate_to_role": "manager",
        "escalate_to_id": "mgr-mia",
        "due_at": memo.first_assigned_at + due_after,
        "breached_at": memo.first_assigned_at + due_after + 500,
        "minutes_late": 0.008,
        "action": action,
        "first_assigned_at": memo.first_assigned_at,
    }


def reassign(r, memo, breach, *, open_leads, cursors, now_ms, config: RoutingConfig | None = None):
    """What the agent does with a reassigning breach, with the reference selection for Redis."""
    config = config or default_routing_config()
    facts, priority = facts_of(memo, config)
    base = plan({}, r, config, now_ms=now_ms, roster_version=1, facts=facts, priority=priority)
    p = plan_reassignment(
        base,
        owner_id=breach["owner_id"],
        previous=memo.owners,
        roster=r,
        config=config,
        now_ms=now_ms,
        why=breach_reason(breach, memo),
    )
    if p is None:
        return None, None
    d = select_reference(p, open_leads, cursors, lead_id=breach["lead_id"], now_ms=now_ms)
    return p, reassignment_record(p, d, memo, breach, r, config)


# --- planning -------------------------------------------------------------------------------


def test_reassignment_goes_to_the_next_rep_of_the_same_pool_and_moves_the_open_slot():
    open_leads, cursors = {}, {}
    r, record, memo = first_routing(open_leads=open_leads, cursors=cursors)
    old = memo.record["owner_id"]
    assert memo.record["rule"] == "rule:pool" and open_leads[old] == {record["lead_id"]}
    _, a = reassign(r, memo, breach_of(memo), open_leads=open_leads, cursors=cursors, now_ms=NOW + 4 * HOUR)
    new = a.record["owner_id"]
    assert new in {"ae-ana", "ae-ben", "ae-cy"} - {old} and a.record["rule"] == "rule:pool"
    assert open_leads[old] == set() and open_leads[new] == {record["lead_id"]}  # released, taken: one move
    assert (a.record["audit"][0]["candidate"], a.record["audit"][0]["decision"]) == (old, "skipped")
    assert old not in [e["candidate"] for e in a.record["audit"] if e["decision"] in ("chosen", "eligible")]


def test_everyone_who_already_had_the_mql_is_skipped():
    open_leads, cursors = {}, {}
    r, record, memo = first_routing(open_leads=open_leads, cursors=cursors)
    _, second = reassign(r, memo, breach_of(memo), open_leads=open_leads, cursors=cursors, now_ms=NOW + 4 * HOUR)
    memo2 = memo_after(memo, second.record)
    assert memo2.owners == (memo.record["owner_id"], second.record["owner_id"])
    _, third = reassign(
        r,
        memo2,
        breach_of(memo2, tier=3, due_after=24 * HOUR),
        open_leads=open_leads,
        cursors=cursors,
        now_ms=NOW + 24 * HOUR,
    )
    assert third.record["owner_id"] == ({"ae-ana", "ae-ben", "ae-cy"} - set(memo2.owners)).pop()
    skipped = {e["candidate"]: e["reason"] for e in third.record["audit"] if e["decision"] == "skipped"}
    assert skipped[memo.record["owner_id"]] == "reassign: already had this lead"
    assert skipped[second.record["owner_id"]].startswith("reassign: first touch SLA breached by")


def test_when_the_pool_is_used_up_the_plan_moves_on_and_never_back_to_the_owner(routing_config):
    r = roster(
        [rep("ae-ana", manager="mgr-mia"), rep("mgr-mia", "manager", round_robin=False)],
        rules=[{"name": "pool", "match": {"countries": ["US"]}, "members": ["ae-ana"], "default_owner": "mgr-mia"}],
    )
    open_leads = {}
    _, record, memo = first_routing(r, open_leads=open_leads)
    assert memo.record["owner_id"] == "ae-ana"
    _, a = reassign(r, memo, breach_of(memo), open_leads=open_leads, cursors={}, now_ms=NOW + HOUR)
    assert (a.record["owner_id"], a.record["rule"]) == ("mgr-mia", "rule:pool:default_owner")
    # the default owner misses it too: no AE left, the fallback owner takes it
    memo2 = memo_after(memo, a.record)
    _, b = reassign(r, memo2, breach_of(memo2, tier=3), open_leads=open_leads, cursors={}, now_ms=NOW + 2 * HOUR)
    assert (b.record["owner_id"], b.record["is_fallback"]) == (routing_config.fallback.owner_id, True)
    # and if the fallback owner misses it, nobody else is left: the lead stays
    memo3 = memo_after(memo2, b.record)
    p, none = reassign(r, memo3, breach_of(memo3, tier=3), open_leads=open_leads, cursors={}, now_ms=NOW + 3 * HOUR)
    assert p is None and none is None


def test_manager_target_puts_the_owners_manager_first_else_the_next_rep(routing_config):
    config = routing_config.model_copy(
        update={"reassignment": routing_config.reassignment.model_copy(update={"to": "manager"})}
    )
    open_leads = {}
    r, _, memo = first_routing(open_leads=open_leads)
    _, a = reassign(r, memo, breach_of(memo), open_leads=open_leads, cursors={}, now_ms=NOW + HOUR, config=config)
    assert (a.record["owner_id"], a.record["rule"]) == ("mgr-mia", MANAGER_RULE)
    assert "Mgr-Mia manages" in a.record["reason"]
    away = roster(
        [*REPS[:3], rep("mgr-mia", "manager", round_robin=False, active=False), REPS[4]],
        rules=[{**POOL_RULE, "default_owner": "ae-other"}],
    )
    _, b = reassign(away, memo, breach_of(memo), open_leads={}, cursors={}, now_ms=NOW + HOUR, config=config)
    assert b.record["rule"] == "rule:pool" and b.record["owner_id"] != memo.record["owner_id"]
    assert {"candidate": "mgr-mia", "decision": "skipped", "reason": f"{MANAGER_RULE}: inactive"} in b.record["audit"]


# --- the record and its audit text ---------------------------------------------------------


def test_record_says_why_keeps_the_mql_and_starts_a_fresh_deadline(codec):
    open_leads, cursors = {}, {}
    r, record, memo = first_routing(open_leads=open_leads, cursors=cursors)
    breach = breach_of(memo)
    at = NOW + 4 * HOUR + 3000
    _, a = reassign(r, memo, breach, open_leads=open_leads, cursors=cursors, now_ms=at)
    out = a.record
    old = memo.record["owner_id"]
    assert out["event_id"] == reassignment_id(record["lead_id"], breach["event_id"]) != memo.record["event_id"]
    assert out["mql_event_id"] == record["event_id"] and out["priority"] == "P1"
    assert (out["assigned_at"], out["first_touch_due_at"]) == (at, at + 10 * MINUTE)
    assert out["reason"].startswith(f"reassigned: first touch SLA breached by {old} (tier 2, 4 h); P1 (demo_request")
    assert (out["reassigned_from"], out["replaces_assignment_id"], out["cause_event_id"]) == (
        old,
        memo.record["event_id"],
        breach["event_id"],
    )
    assert out["handoff"] == record["handoff"]
    assert out["audit"][0] == {
        "candidate": old,
        "decision": "skipped",
        "reason": f"reassign: first touch SLA breached by {old} (tier 2, 4 h)",
    }
    _, decoded = codec.decode(codec.encode("lead_assigned", out))
    assert decoded == out


def test_the_same_breach_and_decision_give_the_same_record():
    r, _, memo = first_routing(open_leads={})
    breach = breach_of(memo)
    _, a = reassign(r, memo, breach, open_leads={}, cursors={}, now_ms=NOW + HOUR)
    _, b = reassign(r, memo, breach, open_leads={}, cursors={}, now_ms=NOW + HOUR)
    assert a.record == b.record


def test_tier_0_counts_from_the_owners_own_assignment():
    _, _, memo = first_routing(open_leads={})
    breach = {**breach_of(memo, tier=0, due_after=10 * MINUTE), "escalate_to_role": "reassign"}
    assert breach_reason(breach, memo) == f"first touch SLA breached by {memo.record['owner_id']} (tier 0, 10 min)"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (4 * 3_600_000, "4 h"),
        (90 * 60_000, "1.5 h"),
        (10 * 60_000, "10 min"),
        (6_000, "6 s"),
        (2 * 86_400_000, "2 d"),
        (26 * 3_600_000, "26 h"),
        (0, "0 s"),
        (-5, "0 s"),
    ],
)
def test_durations_read_like_a_person_wrote_them(ms, text):
    assert describe_duration(ms) == text


# --- idempotency ------------------------------------------------------------------------------


def test_only_reassigning_breaches_of_the_current_assignment_are_acted_on():
    r, _, memo = first_routing(open_leads={})
    breach = breach_of(memo)
    assert wants_reassignment(breach) and not wants_reassignment({**breach, "action": "escalate"})
    assert not wants_reassignment({k: v for k, v in breach.items() if k != "action"})  # a v1 record
    assert reassign_action(memo, breach) is None
    assert reassign_action(None, breach) == "unknown_lead"
    _, a = reassign(r, memo, breach, open_leads={}, cursors={}, now_ms=NOW + HOUR)
    after = memo_after(memo, a.record)
    assert reassign_action(after, breach) == "duplicate"  # redelivered: the reassignment is there
    older = {**breach, "event_id": "br_other", "tier": 1}  # another breach of the replaced assignment
    assert reassign_action(after, older) == "stale"
    assert reassign_action(memo, {**breach, "owner_id": "someone-else"}) == "stale"


def test_memo_round_trips_and_old_memos_still_reassign(routing_config):
    r, record, memo = first_routing(open_leads={})
    again = RoutingMemo.from_dict(orjson.loads(orjson.dumps(memo.to_dict())))
    assert again == memo
    facts, priority = facts_of(again, routing_config)
    assert facts == facts_from_mql(record, routing_config) and priority == classify(facts, routing_config)
    legacy = RoutingMemo.from_dict(
        {"mql_event_id": memo.mql_event_id, "mql_number": 1, "priority": "P1", "record": memo.record}
    )  # written before reassignment existed
    assert legacy.owners == (memo.record["owner_id"],) and legacy.first_assigned_at == memo.record["assigned_at"]
    facts, priority = facts_of(legacy, routing_config)
    # Its firmographics are not read back from the handoff's display text (lead_qualified v3):
    # unknown, so the country rule does not match and the role's round robin takes the lead.
    assert (facts.country, facts.company_size, facts.facts_known, priority.priority) == (None, None, False, "P1")
    _, a = reassign(r, legacy, breach_of(legacy), open_leads={}, cursors={}, now_ms=NOW + HOUR)
    assert a.record["owner_id"] != memo.record["owner_id"] and a.record["rule"] == "round_robin:AE"
    audit = {(e["candidate"], e["decision"]) for e in a.record["audit"]}
    assert {("firmographics", "not_applicable"), ("rule:pool", "not_matched")} <= audit
