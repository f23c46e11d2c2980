"""Priority upgrades (issue 11 item 5): scoring re-issues an MQL with a raised priority; routing
re-routes it or keeps the owner, as ``priority_upgrade.policy`` in routing.yaml says, once."""

from __future__ import annotations

import pytest

from agents.routing.assignment import assignment_id, assignment_record
from agents.routing.config import parse_routing_config, read_yaml
from agents.routing.exceptions import RoutingConfigError
from agents.routing.facts import classify, facts_from_mql
from agents.routing.redelivery import RoutingMemo, redelivery_action
from agents.routing.rules import plan
from agents.routing.selection import select_reference
from agents.routing.upgrades import KEEP_OWNER_RULE, plan_upgrade, upgrade_of
from tests.unit.agents.routing.helpers import MINUTE, NOW, REPO, mql, rep, roster, route

OOO = [{"from": "2020-01-01T00:00:00Z", "until": "2099-01-01T00:00:00Z"}]


def _config(policy: str):
    raw = read_yaml(REPO / "config" / "routing.yaml", RoutingConfigError)
    raw["priority_upgrade"] = {"policy": policy}
    return parse_routing_config(raw)


def _scenario(config, reps=None, *, now_ms: int = NOW + 60 * MINUTE):
    """A P2 webinar lead assigned to an SDR, then scoring's re-issued MQL after a demo request."""
    r = roster(reps or [rep("sdr-a", "SDR"), rep("ae-a"), rep("ae-b")])
    open_leads, cursors = {}, {}
    first = mql(form_kind="webinar_registration", fit_grade="C", priority_hint="P2")
    _, _, assigned, _ = route(first, r, open_leads=open_leads, cursors=cursors, config=config)
    assert (assigned["priority"], assigned["owner_id"]) == ("P2", "sdr-a")
    memo = RoutingMemo(first["event_id"], 1, "P2", assigned)
    upgrade = {
        **first,
        "event_id": first["event_id"] + "-up-P1",
        "priority_hint": "P1",
        "upgrade_of": first["event_id"],
        "previous_priority_hint": "P2",
        "breakdown": first["breakdown"] + [{"signal": "contact_request", "points": 20.0, "detail": None}],
        "signals": first["signals"] + [{"signal": "contact_request", "points": 20.0}],
        "form_kinds": sorted({*first["form_kinds"], "demo_request"}),
        "handoff": {**first["handoff"], "trigger": "contact_request (demo_request form)"},
    }
    facts = facts_from_mql(upgrade, config)
    priority = classify(facts, config)
    assert redelivery_action(memo, facts, priority.priority) is None, "a raise is routed"
    assert upgrade_of(memo, facts.mql_number, priority.priority) == "P2"
    base = plan(upgrade, r, config, now_ms=now_ms, roster_version=1, facts=facts, priority=priority)
    p = plan_upgrade(base, memo, r, config, now_ms=now_ms)
    decision = select_reference(p, open_leads, cursors, lead_id=first["lead_id"], now_ms=now_ms)
    record = assignment_record(p, decision, upgrade, r, config).record
    return first, upgrade, record, open_leads, memo


def test_default_policy_is_reroute_and_a_demo_request_moves_the_sdr_lead_to_an_ae_at_p1(routing_config, codec):
    assert routing_config.priority_upgrade.policy == "reroute"
    first, upgrade, record, open_leads, _ = _scenario(routing_config)
    assert (record["priority"], record["owner_role"]) == ("P1", "AE") and record["owner_id"] in {"ae-a", "ae-b"}
    assert record["event_id"] == assignment_id(first["lead_id"], upgrade["event_id"])
    assert record["mql_event_id"] == upgrade["event_id"]
    assert record["first_touch_due_at"] - record["assigned_at"] == 10 * MINUTE
    assert "priority raised from P2 to P1 on the same MQL" in record["reason"]
    assert record["audit"][0] == {
        "candidate": "sdr-a",
        "decision": "skipped",
        "reason": "priority_upgrade (reroute): the new priority goes to role AE, sdr-a has role SDR",
    }
    assert open_leads["sdr-a"] == set() and open_leads[record["owner_id"]] == {first["lead_id"]}, "the slot moved"
    codec.encode("lead_assigned", record)


def test_keep_owner_policy_keeps_the_sdr_and_tightens_the_sla_to_p1():
    first, upgrade, record, open_leads, _ = _scenario(_config("keep_owner"))
    assert (record["owner_id"], record["priority"], record["rule"]) == ("sdr-a", "P1", KEEP_OWNER_RULE)
    assert record["first_touch_due_at"] - record["assigned_at"] == 10 * MINUTE, "P1's SLA, from now"
    assert record["reason"].endswith("Sdr-A keeps the lead (priority_upgrade: keep_owner)")
    assert record["audit"] == [{"candidate": "sdr-a", "decision": "chosen", "reason": "keep_owner: 1 open, no limit"}]
    assert open_leads == {"sdr-a": {first["lead_id"]}}


def test_keep_owner_falls_back_to_a_reroute_when_the_owner_cannot_take_it_now():
    now = NOW + 60 * MINUTE
    _, _, _, _, memo = _scenario(_config("keep_owner"))
    away = roster([rep("sdr-a", "SDR", out_of_office=OOO), rep("ae-a")])
    upgrade = mql(form_kind="demo_request", fit_grade="C")
    p = plan_upgrade(
        plan(upgrade, away, _config("keep_owner"), now_ms=now), memo, away, _config("keep_owner"), now_ms=now
    )
    assert p.stages[0].rule != KEEP_OWNER_RULE
    assert "sdr-a is out of office" in p.stages[0].audit_before[0]["reason"]


def test_reroute_keeps_an_owner_who_already_has_the_new_role(routing_config):
    now = NOW + 60 * MINUTE
    memo = RoutingMemo("mql-1", 1, "P2", {"owner_id": "ae-owner"})
    r = roster([rep("ae-owner"), rep("ae-b")])
    p = plan_upgrade(
        plan(mql(form_kind="demo_request"), r, routing_config, now_ms=now), memo, r, routing_config, now_ms=now
    )
    assert p.stages[0].rule == KEEP_OWNER_RULE and p.stages[0].candidates[0].rep_id == "ae-owner"
    fallback = RoutingMemo("mql-1", 1, "P2", {"owner_id": routing_config.fallback.owner_id})
    p = plan_upgrade(
        plan(mql(form_kind="demo_request"), r, _config("keep_owner"), now_ms=now),
        fallback,
        r,
        _config("keep_owner"),
        now_ms=now,
    )
    assert p.stages[0].rule != KEEP_OWNER_RULE, "the triage queue does not keep an upgraded lead"


def test_each_raise_is_acted_on_once(routing_config):
    first, upgrade, record, _, memo = _scenario(routing_config)
    after = RoutingMemo(upgrade["event_id"], 1, "P1", record)
    again = facts_from_mql(upgrade, routing_config)
    assert redelivery_action(after, again, "P1") == "duplicate"
    original = facts_from_mql(first, routing_config)
    assert redelivery_action(after, original, classify(original, routing_config).priority) == "same_mql"
    assert upgrade_of(after, 1, "P1") is None and upgrade_of(memo, 2, "P1") is None  # a new MQL is not an upgrade


def test_policy_is_validated_at_load_naming_the_key():
    with pytest.raises(RoutingConfigError, match="priority_upgrade.policy"):
        _config("promote")
