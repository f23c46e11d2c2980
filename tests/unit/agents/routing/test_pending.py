"""Unusable roster data in Redis never loses an MQL: fallback owner or a durable parked entry
(agents.routing.pending, roster_error in routing.yaml, agents.routing.roster_store.RosterDataError)."""

from __future__ import annotations

import orjson
import pytest

from agents.routing import pending
from agents.routing.assignment import assignment_id, assignment_record
from agents.routing.config import RosterErrorPolicy, parse_routing_config
from agents.routing.exceptions import RoutingConfigError
from agents.routing.pending import PendingLead, PendingStore, roster_document_problem, should_park
from agents.routing.roster_store import RosterDataError, RosterStore
from agents.routing.rules import FALLBACK_REASONS, fallback_plan
from tests.unit.agents.routing.helpers import MINUTE, NOW, mql, rep, roster
from tests.unit.agents.routing.test_routing_config import with_change

SECRET = "ann.secret@corp.example.com"


def valid_doc() -> dict:
    return {"roster": roster([{**rep("ann"), "name": SECRET}]).to_dict(), "meta": {}}


def doc_with(**fields) -> dict:
    doc = valid_doc()
    doc["roster"].update(fields)
    return doc


def parked(lead_id: str = "ld_1", *, number: int = 1, since: int = NOW, partition: int = 0) -> PendingLead:
    return PendingLead(
        lead_id,
        f"mql_{lead_id}_{number}",
        number,
        partition,
        since,
        pending.ROSTER_UNREADABLE,
        {"lead_id": lead_id, "mql_number": number},
    )


# --- the roster document's shape -----------------------------------------------------------


def test_a_valid_document_has_no_problem():
    assert roster_document_problem(valid_doc()) is None


# The documents are built inside the test (their roster is checked against routing.yaml): the
# parameters are how to build them.
@pytest.mark.parametrize(
    "make_doc,expected",
    [
        (lambda: doc_with(reps="not-a-list"), "roster field 'reps' is a str, not a list"),
        (lambda: doc_with(reps=[SECRET]), "roster field 'reps[0]' is a str, not an object"),
        (lambda: doc_with(rules={"a": 1}), "roster field 'rules' is a dict, not a list"),
        (lambda: doc_with(account_owners=[SECRET]), "roster field 'account_owners' is a list, not an object"),
        (lambda: doc_with(reps=[{"name": SECRET}]), "roster field 'reps[0].id' is missing or not a string"),
        (lambda: {"meta": {}}, "roster document field 'roster' is a NoneType, not an object"),
        (lambda: [1, 2], "roster document is a list, not an object"),
    ],
)
def test_a_corrupt_document_is_named_by_field_never_by_value(make_doc, expected):
    problem = roster_document_problem(make_doc())
    assert problem == expected
    assert SECRET not in problem


class _Client:  # RosterStore only registers its scripts at construction
    def register_script(self, _source):
        return None


@pytest.mark.parametrize(
    "make_raw,expected",
    [
        (
            lambda: orjson.dumps(doc_with(reps="not-a-list")),
            "leadflow:roster:doc: roster field 'reps' is a str, not a list",
        ),
        (lambda: b"{not json", "roster document leadflow:roster:doc is not valid JSON"),
        (
            lambda: orjson.dumps(doc_with(reps=[{"id": "x", "capacity": "lots"}])),
            "a roster entry has a field of the wrong type",
        ),
    ],
)
def test_the_store_turns_a_corrupt_document_into_a_roster_data_error(make_raw, expected):
    raw = make_raw()
    with pytest.raises(RosterDataError) as info:
        RosterStore(_Client(), "leadflow")._parse(raw)
    assert expected in info.value.detail
    assert info.value.reason == "roster_unreadable"


def test_the_store_parses_a_valid_document():
    parsed, _meta = RosterStore(_Client(), "leadflow")._parse(orjson.dumps(valid_doc()))
    assert "ann" in parsed.reps


# --- policy ---------------------------------------------------------------------------------


def test_default_policy_is_the_fallback_owner_now(routing_config):
    assert routing_config.roster_error == RosterErrorPolicy(action="fallback", max_pending_minutes=None)
    assert not should_park(routing_config.roster_error, NOW, NOW)


def test_pending_waits_until_max_pending_minutes_then_falls_back():
    unlimited = RosterErrorPolicy(action="pending")
    assert should_park(unlimited, NOW, NOW + 10_000 * MINUTE)
    capped = RosterErrorPolicy(action="pending", max_pending_minutes=5)
    assert should_park(capped, NOW, NOW + 5 * MINUTE - 1)
    assert not should_park(capped, NOW, NOW + 5 * MINUTE)


@pytest.mark.parametrize(
    "value,expected",
    [
        ({"action": "wait"}, "roster_error.action: expected one of the allowed values, got 'wait'"),
        ({"action": "pending", "max_pending_minutes": 0}, "roster_error.max_pending_minutes"),
        ({"action": "pending", "retry": 1}, "roster_error.retry: unknown key"),
    ],
)
def test_bad_roster_error_policy_names_the_key(value, expected):
    with pytest.raises(RoutingConfigError) as info:
        parse_routing_config(with_change("roster_error", value))
    assert any(expected in p for p in info.value.problems), info.value.problems


# --- the fallback assignment without a usable roster --------------------------------------


def test_fallback_for_an_unreadable_roster_names_the_reason_and_keeps_the_assignment_id(routing_config):
    record = mql()
    plan = fallback_plan(
        record,
        routing_config,
        reason="roster_unreadable",
        roster_version=-1,
        note="roster unusable: roster field 'reps' is a str, not a list",
    )
    decision = pending.local_fallback_decision(plan, NOW)
    out = assignment_record(plan, decision, record, None, routing_config)
    assert "roster_unreadable" in FALLBACK_REASONS
    assert out.fallback_reason == "roster_unreadable"
    assert out.record["owner_id"] == routing_config.fallback.owner_id and out.record["is_fallback"]
    assert out.record["event_id"] == assignment_id(record["lead_id"], record["event_id"])
    assert out.record["audit"][0]["reason"] == "roster unusable: roster field 'reps' is a str, not a list"
    assert out.record["audit"][-1]["decision"] == "chosen"
    assert out.record["priority"] == "P1"  # a hot lead keeps its priority (and its 10-minute SLA)


# --- the parked entries ---------------------------------------------------------------------


def test_park_indexes_the_lead_once_and_survives_a_round_trip_through_bytes():
    table: dict[bytes, bytes] = {}
    store = PendingStore(table)
    store.park(parked("ld_1"))
    store.park(parked("ld_1"))
    store.park(parked("ld_2", partition=1))
    assert store.lead_ids(0) == ["ld_1"] and store.lead_ids(1) == ["ld_2"]
    assert store.count({0, 1}) == 2 and store.count({1}) == 1
    assert PendingStore(dict(table)).get("ld_1") == parked("ld_1")  # what the changelog replays


def test_a_later_mql_replaces_the_parked_one_but_keeps_the_waiting_time():
    store = PendingStore({})
    store.park(parked(number=1, since=NOW))
    kept = store.park(parked(number=2, since=NOW + MINUTE))
    assert (kept.mql_number, kept.since_ms) == (2, NOW)
    assert store.park(parked(number=1, since=NOW + 2 * MINUTE)).mql_number == 2  # late, older: ignored


def test_resolve_drops_only_what_the_assignment_covers():
    table: dict[bytes, bytes] = {}
    store = PendingStore(table)
    store.park(parked(number=2))
    assert not store.resolve("ld_1", 1, 0)  # an older crossing does not cover crossing 2
    assert store.get("ld_1") is not None
    assert store.resolve("ld_1", 2, 0)
    assert store.get("ld_1") is None and store.lead_ids(0) == [] and table == {}
    assert not store.resolve("ld_1", 2, 0)  # idempotent


def test_an_index_entry_without_its_lead_is_dropped():
    table: dict[bytes, bytes] = {pending.index_key(0): orjson.dumps(["ld_gone", "ld_1"])}
    store = PendingStore(table)
    store.drop("ld_gone", 0)
    assert store.lead_ids(0) == ["ld_1"]


def test_data_error_defaults_to_roster_unreadable():
    assert RosterDataError("x").reason == "roster_unreadable"
    assert RosterDataError("x", pending.ROSTER_NOT_LOADED).reason == "roster_not_loaded"
