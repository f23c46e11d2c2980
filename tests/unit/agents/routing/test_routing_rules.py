"""Routing rules: account owner, territory/attribute rules, weighted round robin, capacity,
availability, fallback - with the audit trail and the assignment record."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.routing.assignment import assignment_id
from agents.routing.facts import LEGACY_FACTS_NOTE, facts_from_mql
from agents.routing.redelivery import RoutingMemo, redelivery_action
from tests.unit.agents.routing.helpers import MINUTE, NOW, legacy, mql, rep, roster, route

AES = [rep("ae-a"), rep("ae-b"), rep("ae-c")]


def audit_of(record, decision=None):
    return [(a["candidate"], a["decision"]) for a in record["audit"] if decision in (None, a["decision"])]


def full(*rep_ids, n=10):
    """Open-lead sets with every listed rep at n open leads."""
    return {r: {f"other-{r}-{i}" for i in range(n)} for r in rep_ids}


# --- account owner --------------------------------------------------------------------------


def test_account_owner_wins_even_at_capacity(codec):
    r = roster(AES + [rep("ae-owner")], account_owners={"acme.com": "ae-owner"})
    _, decision, record, _ = route(mql("dana@acme.com"), r, open_leads=full("ae-owner"))
    assert (record["owner_id"], record["rule"], record["is_fallback"]) == ("ae-owner", "account_owner", False)
    assert "owns the account acme.com" in record["reason"]
    assert audit_of(record) == [("ae-owner", "chosen")]
    codec.encode("lead_assigned", record)  # the record matches the Avro contract


def test_inactive_account_owner_is_skipped_with_the_reason():
    r = roster(AES + [rep("ae-owner", active=False)], account_owners={"acme.com": "ae-owner"})
    _, _, record, _ = route(mql("dana@acme.com"), r)
    assert record["owner_id"] != "ae-owner" and record["rule"] == "round_robin:AE"
    assert record["audit"][0] == {
        "candidate": "ae-owner",
        "decision": "skipped",
        "reason": "account owner of acme.com: inactive",
    }


def test_out_of_office_account_owner_is_skipped():
    ooo = [{"from": "2025-12-30T00:00:00Z", "until": "2026-01-03T00:00:00Z"}]
    r = roster(AES + [rep("ae-owner", out_of_office=ooo)], account_owners={"acme.com": "ae-owner"})
    _, _, record, _ = route(mql("dana@acme.com"), r)
    assert record["owner_id"] != "ae-owner"
    assert "out of office until 2026-01-03T00:00:00Z" in record["audit"][0]["reason"]


def test_account_owner_respects_capacity_when_configured(routing_config):
    config = routing_config.model_copy(
        update={"account_owner": routing_config.account_owner.model_copy(update={"ignore_capacity": False})}
    )
    r = roster(AES + [rep("ae-owner")], account_owners={"acme.com": "ae-owner"})
    _, _, record, _ = route(mql("dana@acme.com"), r, open_leads=full("ae-owner"), config=config)
    assert record["owner_id"] != "ae-owner"
    assert ("ae-owner", "skipped") in audit_of(record)


# --- territory / attribute rules ------------------------------------------------------------

TERRITORY_REPS = [
    rep("ae-na", territories=["na"]),
    rep("ae-emea1", territories=["emea"], segments=["enterprise"]),
    rep("ae-emea2", territories=["emea"]),
    rep("ae-anywhere"),
    rep("mgr-emea", "manager", round_robin=False),
]
EMEA_RULE = {"name": "emea", "match": {"territories": ["emea"]}, "default_owner": "mgr-emea"}


def test_territory_rule_routes_to_the_reps_who_name_the_territory():
    r = roster(TERRITORY_REPS, rules=[EMEA_RULE])
    open_leads, cursors = {}, {}
    owners = Counter(
        route(mql(country="GB"), r, open_leads=open_leads, cursors=cursors)[2]["owner_id"] for _ in range(4)
    )
    assert owners == {"ae-emea2": 4}  # not ae-anywhere (names no territory), not ae-emea1 (enterprise only)
    big = Counter(
        route(mql(country="GB", company_size=5000), r, open_leads=open_leads, cursors=cursors)[2]["owner_id"]
        for _ in range(2)
    )
    assert set(big) == {"ae-emea1", "ae-emea2"}  # an enterprise lead: both serve it
    _, _, record, _ = route(mql(country="US"), r)
    # No rule names North America, so the reps serving its territory come before anyone anywhere.
    assert (record["rule"], record["owner_id"]) == ("territory:na", "ae-na")
    assert record["audit"][0] == {
        "candidate": "rule:emea",
        "decision": "not_matched",
        "reason": "territory na not in ['emea']",
    }


def test_a_record_written_before_v3_is_routed_without_firmographics_and_the_audit_says_so():
    """No regex on the handoff's display text: an MQL without structured facts has no country,
    so no territory rule or territory pool matches it; the role's round robin takes it."""
    r = roster(TERRITORY_REPS, rules=[EMEA_RULE])
    _, _, record, _ = route(legacy(mql(country="GB")), r)
    assert record["audit"][0] == {
        "candidate": "firmographics",
        "decision": "not_applicable",
        "reason": LEGACY_FACTS_NOTE,
    }
    assert record["audit"][1] == {
        "candidate": "rule:emea",
        "decision": "not_matched",
        "reason": "territory unknown not in ['emea']",
    }
    assert record["rule"] == "round_robin:AE" and not record["is_fallback"]
    _, _, control, _ = route(mql(country="GB"), r)  # the same lead as a v3 record
    assert control["rule"] == "rule:emea" and "firmographics" not in [a["candidate"] for a in control["audit"]]


def test_lead_type_sets_the_priority_and_territory_still_picks_the_owner():
    """A US lead with pricing views and a demo form is typed demo_request (first listed type
    wins ties); a rule keyed on another lead type does not match, yet the lead must reach North
    America AEs, never a round robin across EMEA reps."""
    reps = [
        rep("ae-na", territories=["na"]),
        rep("ae-emea", territories=["emea"]),
        rep("mgr-na", "manager", round_robin=False),
    ]
    rules = [
        {
            "name": "na-pricing",
            "match": {"territories": ["na"], "lead_types": ["pricing_with_form"]},
            "default_owner": "mgr-na",
        }
    ]
    r = roster(reps, rules=rules)
    open_leads, cursors = {}, {}
    for _ in range(5):
        _, _, record, _ = route(
            mql(country="US", signals={"pricing_page_visit": 30.0, "contact_request": 20.0}),
            r,
            open_leads=open_leads,
            cursors=cursors,
        )
        assert record["priority"] == "P1" and record["owner_role"] == "AE"
        assert (record["rule"], record["owner_id"]) == ("territory:na", "ae-na")
    assert [a["candidate"] for a in record["audit"]] == ["rule:na-pricing", "ae-na"]
    assert "serving territory na" in record["reason"]


def test_round_robin_across_the_role_is_the_last_resort():
    reps = [rep("ae-emea", territories=["emea"]), rep("ae-away", territories=["na"], active=False)]
    _, _, record, _ = route(mql(country="US"), roster(reps))
    assert (record["rule"], record["owner_id"]) == ("round_robin:AE", "ae-emea")
    assert [(a["candidate"], a["decision"]) for a in record["audit"]] == [
        ("ae-away", "skipped"),
        ("territory:na", "not_applicable"),
        ("ae-emea", "chosen"),
    ]


def test_territory_step_can_be_switched_off(routing_config):
    config = routing_config.model_copy(
        update={"territory_round_robin": routing_config.territory_round_robin.model_copy(update={"enabled": False})}
    )
    reps = [rep("ae-na", territories=["na"]), rep("ae-emea", territories=["emea"])]
    rules_seen = {route(mql(country="US"), roster(reps), config=config)[2]["rule"] for _ in range(3)}
    assert rules_seen == {"round_robin:AE"}


def test_rule_reason_says_why_it_matched():
    r = roster(TERRITORY_REPS, rules=[{**EMEA_RULE, "match": {"territories": ["emea"], "segments": ["enterprise"]}}])
    _, _, record, _ = route(mql(country="DE", company_size=5000), r)
    assert (record["rule"], record["owner_id"]) == ("rule:emea", "ae-emea1")  # the only one naming the segment
    assert "matched rule emea (territory emea, segment enterprise)" in record["reason"]


def test_attribute_rules_first_match_wins():
    rules = [
        {
            "name": "fintech",
            "match": {"industries": ["Fintech"], "min_company_size": 200},
            "members": ["ae-emea1"],
            "default_owner": "mgr-emea",
        },
        {"name": "catch-all", "members": ["ae-na"], "default_owner": "mgr-emea"},
    ]
    r = roster(TERRITORY_REPS, rules=rules)
    assert route(mql(industry="fintech", company_size=300), r)[2]["owner_id"] == "ae-emea1"
    small = route(mql(industry="fintech", company_size=50), r)[2]
    assert small["owner_id"] == "ae-na"
    assert small["audit"][0]["reason"] == "company size 50 < 200"


def test_members_of_another_role_are_skipped_and_the_rule_falls_to_its_default_owner():
    r = roster(
        TERRITORY_REPS + [rep("sdr-emea", "SDR", territories=["emea"])],
        rules=[{**EMEA_RULE, "members": ["sdr-emea", "ae-emea1"]}],
    )
    _, _, record, _ = route(mql(country="GB"), r, open_leads=full("ae-emea1"))
    assert (record["owner_id"], record["rule"]) == ("mgr-emea", "rule:emea:default_owner")
    assert ("sdr-emea", "skipped") in audit_of(record)
    assert ("ae-emea1", "skipped") in audit_of(record)  # at capacity
    assert "at capacity (10/10 open)" in next(a["reason"] for a in record["audit"] if a["candidate"] == "ae-emea1")


def test_rule_without_members_of_the_role_is_not_applicable():
    r = roster(TERRITORY_REPS + [rep("sdr-x", "SDR")], rules=[{**EMEA_RULE, "members": ["ae-emea1"]}])
    _, _, record, _ = route(mql(form_kind="webinar_registration", country="GB", fit_grade="C"), r)  # P2 -> SDR
    assert record["priority"] == "P2" and record["owner_id"] == "sdr-x"
    assert ("rule:emea", "not_applicable") in audit_of(record)


# --- capacity, availability, fallback -------------------------------------------------------


def test_capacity_exhaustion_moves_on_to_the_next_rep_then_the_fallback():
    r = roster([rep("ae-a", capacity=2), rep("ae-b", capacity=1)])
    open_leads, cursors = {}, {}
    owners = [route(mql(), r, open_leads=open_leads, cursors=cursors)[2] for _ in range(4)]
    assert Counter(o["owner_id"] for o in owners[:3]) == {"ae-a": 2, "ae-b": 1}
    last = owners[3]
    assert (last["owner_id"], last["rule"], last["is_fallback"]) == ("revops-triage", "fallback", True)
    assert "capacity_exhausted" in last["reason"]
    assert audit_of(last, "skipped") == [("ae-a", "skipped"), ("ae-b", "skipped")]


def test_inactive_departed_and_out_of_office_reps_are_never_chosen():
    ooo = [{"from": "2025-12-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"}]
    r = roster(
        [
            rep("ae-ok"),
            rep("ae-inactive", active=False),
            rep("ae-left", departed_at="2025-12-01"),
            rep("ae-away", out_of_office=ooo),
        ]
    )
    open_leads, cursors = {}, {}
    owners = Counter(route(mql(), r, open_leads=open_leads, cursors=cursors)[2]["owner_id"] for _ in range(12))
    assert owners == {"ae-ok": 10, "revops-triage": 2}
    first = route(mql(), roster([rep("ae-ok"), rep("ae-inactive", active=False)]))[2]
    assert {"candidate": "ae-inactive", "decision": "skipped", "reason": "round robin AE: inactive"} in first["audit"]


def test_back_from_out_of_office_means_back_in_the_pool():
    ooo = [{"from": "2025-12-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}]
    r = roster([rep("ae-a", out_of_office=ooo)])
    assert route(mql(), r, now_ms=NOW - 1)[2]["is_fallback"]
    assert route(mql(), r, now_ms=NOW)[2]["owner_id"] == "ae-a"


def test_all_reps_unavailable_is_a_named_fallback_reason():
    _, _, record, assignment = route(mql(), roster([rep("ae-a", active=False)]))
    assert record["is_fallback"] and assignment.fallback_reason == "no_available_owner"
    _, _, record, assignment = route(mql(), roster([rep("sdr-a", "SDR")]))
    assert record["is_fallback"] and assignment.fallback_reason == "no_candidates"
    assert record["owner_name"] == "RevOps triage"  # the roster's entry for the fallback id


def test_no_roster_goes_to_the_configured_fallback():
    _, _, record, assignment = route(mql(), None)
    assert (record["owner_id"], record["owner_name"], record["owner_role"], record["team"]) == (
        "revops-triage",
        "RevOps triage queue",
        "queue",
        "revops",
    )
    assert assignment.fallback_reason == "roster_not_loaded"
    assert record["audit"][0]["candidate"] == "roster"


def test_p3_goes_to_the_nurture_owner_not_a_rep():
    _, _, record, _ = route(mql(form_kind="newsletter", fit_grade="C"), roster(AES))
    assert (record["priority"], record["owner_id"], record["rule"]) == ("P3", "nurture-sequence", "nurture")
    assert record["first_touch_due_at"] == record["assigned_at"] + 5 * 24 * 60 * MINUTE


def test_p3_with_the_nurture_owner_away_goes_to_the_fallback():
    r = roster(AES)  # (a roster load refuses an inactive nurture owner; a stale one may still say so)
    r = replace(r, reps={**r.reps, "nurture-sequence": replace(r.reps["nurture-sequence"], active=False)})
    _, _, record, assignment = route(mql(form_kind="newsletter", fit_grade="C"), r)
    assert record["is_fallback"] and assignment.fallback_reason == "nurture_owner_unavailable"


# --- round robin ----------------------------------------------------------------------------


def test_round_robin_is_fair_over_100_leads_with_equal_weights():
    r = roster([rep(f"ae-{i}", capacity=1000) for i in range(4)] + [rep("ae-x", capacity=1000)])
    open_leads, cursors = {}, {}
    seen = Counter()
    for _ in range(100):
        seen[route(mql(), r, open_leads=open_leads, cursors=cursors)[2]["owner_id"]] += 1
        assert max(seen.values()) - min(seen.get(f"ae-{i}", 0) for i in range(4)) <= 1
    assert sorted(seen.values()) == [20] * 5


def test_round_robin_weights_by_remaining_capacity():
    r = roster([rep("ae-big", capacity=30), rep("ae-small", capacity=10)])
    open_leads, cursors = {}, {}
    owners = Counter(route(mql(), r, open_leads=open_leads, cursors=cursors)[2]["owner_id"] for _ in range(20))
    assert owners == {"ae-big": 15, "ae-small": 5}
    # A rep already carrying leads gets fewer new ones until the room evens out.
    r = roster([rep("ae-a", capacity=20), rep("ae-b", capacity=20)])
    open_leads = full("ae-a", n=10)
    owners = Counter(route(mql(), r, open_leads=open_leads, cursors={})[2]["owner_id"] for _ in range(14))
    assert owners == {"ae-b": 12, "ae-a": 2}


def test_reassigning_a_lead_moves_its_open_slot():
    r = roster([rep("ae-a", capacity=5), rep("sdr-a", "SDR", capacity=5)])
    open_leads = {}
    record = mql(form_kind="webinar_registration", fit_grade="C")
    assert route(record, r, open_leads=open_leads)[2]["owner_id"] == "sdr-a"
    upgrade = {
        **record,
        "event_id": record["event_id"] + "-p1",
        "breakdown": record["breakdown"] + [{"signal": "contact_request", "points": 20.0, "detail": None}],
        "signals": record["signals"] + [{"signal": "contact_request", "points": 20.0}],
    }
    assert route(upgrade, r, open_leads=open_leads)[2]["owner_id"] == "ae-a"
    assert open_leads == {"sdr-a": set(), "ae-a": {record["lead_id"]}}


# --- the record -----------------------------------------------------------------------------


def test_record_carries_sla_deadline_rule_reason_audit_and_handoff(codec):
    record_in = mql(form_kind="demo_request")
    _, decision, record, _ = route(record_in, roster(AES))
    assert record["event_id"] == assignment_id(record_in["lead_id"], record_in["event_id"])
    assert record["mql_event_id"] == record_in["event_id"] and record["lead_id"] == record_in["lead_id"]
    assert (record["priority"], record["assigned_at"]) == ("P1", decision.assigned_at_ms)
    assert record["first_touch_due_at"] == NOW + 10 * MINUTE
    assert record["reason"].startswith("P1 (demo_request -> P1): weighted round robin")
    assert record["handoff"] == record_in["handoff"]
    assert audit_of(record) == [
        ("territory:na", "not_applicable"),  # no AE names a territory
        ("ae-a", "chosen"),
        ("ae-b", "eligible"),
        ("ae-c", "eligible"),
    ]
    codec.encode("lead_assigned", record)


def test_p2_sla_is_48_hours():
    _, _, record, _ = route(mql(form_kind="content_download", fit_grade="C"), roster(AES + [rep("sdr-a", "SDR")]))
    assert (record["priority"], record["owner_id"]) == ("P2", "sdr-a")
    assert record["first_touch_due_at"] - record["assigned_at"] == 48 * 60 * MINUTE


def test_redelivery_and_same_mql_are_skipped_but_a_priority_raise_is_routed(routing_config):
    record = mql(form_kind="webinar_registration", fit_grade="C")
    facts = facts_from_mql(record, routing_config)
    memo = RoutingMemo(record["event_id"], 1, "P2")
    assert redelivery_action(None, facts, "P2") is None
    assert redelivery_action(memo, facts, "P2") == "duplicate"
    other = facts_from_mql({**record, "event_id": "another-event"}, routing_config)
    assert redelivery_action(memo, other, "P2") == "same_mql"
    assert redelivery_action(memo, other, "P1") is None  # a P1 signal arrived: route again
    requalified = facts_from_mql({**record, "event_id": "mql-2", "mql_number": 2}, routing_config)
    assert redelivery_action(memo, requalified, "P2") is None
    assert redelivery_action(RoutingMemo("mql-2", 2, "P2"), facts, "P1") == "stale"  # older crossing redelivered late


# --- properties -----------------------------------------------------------------------------

REP = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["AE", "SDR"]),
        "capacity": st.integers(1, 4),
        "active": st.booleans(),
        "away": st.booleans(),
        "territories": st.sampled_from([[], ["na"], ["emea"]]),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    reps=st.lists(REP, min_size=1, max_size=6),
    leads=st.lists(
        st.tuples(
            st.sampled_from(["demo_request", "webinar_registration", "newsletter"]), st.sampled_from(["US", "GB", "JP"])
        ),
        min_size=1,
        max_size=25,
    ),
    with_rule=st.booleans(),
)
def test_every_lead_gets_an_available_owner_within_capacity(codec, reps, leads, with_rule):
    ooo = [{"from": "2025-12-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"}]
    entries = [
        rep(
            f"r{i}",
            d["role"],
            d["capacity"],
            active=d["active"],
            territories=d["territories"],
            out_of_office=ooo if d["away"] else [],
        )
        for i, d in enumerate(reps)
    ]
    entries.append(rep("boss", "manager", capacity=2, round_robin=False))
    rules = [{"name": "emea", "match": {"territories": ["emea"]}, "default_owner": "boss"}] if with_rule else []
    r = roster(entries, rules=rules)
    open_leads, cursors = {}, {}
    for form_kind, country in leads:
        _, _, record, _ = route(
            mql(form_kind=form_kind, country=country, fit_grade="C"), r, open_leads=open_leads, cursors=cursors
        )
        owner = r.reps.get(record["owner_id"])
        assert owner is not None, "always a named owner from the roster"
        assert owner.unavailable_reason(NOW) is None, "never an inactive or absent owner"
        assert [a["candidate"] for a in record["audit"] if a["decision"] == "chosen"] == [owner.id]
        if record["priority"] == "P3":
            assert owner.id == "nurture-sequence"
        codec.encode("lead_assigned", record)
    for rep_id, leads_open in open_leads.items():
        capacity = r.reps[rep_id].capacity
        assert capacity is None or len(leads_open) <= capacity, rep_id
