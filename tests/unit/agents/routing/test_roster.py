"""Roster validation: the default roster loads; every defect is refused naming its entry."""

from __future__ import annotations

import copy

import pytest

from agents.routing.exceptions import RosterError
from agents.routing.roster import Roster, parse_roster, to_epoch_ms
from tests.repo_config import default_routing_config
from tests.unit.agents.routing.helpers import NOW, QUEUES, rep

BASE = {
    "territories": [{"id": "na", "countries": ["US", "CA"]}, {"id": "emea", "countries": ["GB", "DE"]}],
    "reps": [rep("ae-ana", territories=["na"]), rep("sdr-sam", "SDR"), rep("mgr-mia", "manager")] + QUEUES,
    "rules": [{"name": "na", "match": {"territories": ["na"]}, "default_owner": "mgr-mia"}],
    "account_owners": {"acme.com": "ae-ana"},
}


def problems(raw, **kw) -> list[str]:
    with pytest.raises(RosterError) as info:
        parse_roster(raw, config=default_routing_config(), now_ms=NOW, **kw)
    return info.value.problems


def changed(**edits):
    raw = copy.deepcopy(BASE)
    for key, fn in edits.items():
        fn(raw[key])
    return raw


def test_default_roster_is_valid_and_warns_about_its_departed_account_owner(default_roster_raw, routing_config):
    roster = parse_roster(default_roster_raw, config=routing_config, now_ms=NOW)
    assert {"AE", "SDR", "manager", "head_of_sales", "nurture", "queue"} <= {r.role for r in roster.reps.values()}
    assert len(roster.territories) >= 2 and roster.rules
    assert any("globex.de" in w and "inactive" in w for w in roster.warnings)


def test_valid_roster_round_trips_through_its_redis_document(routing_config):
    roster = parse_roster(BASE, config=routing_config, now_ms=NOW)
    assert Roster.from_dict(roster.to_dict()) == roster


def test_unknown_territory_names_the_rep_and_the_rule():
    raw = changed(
        reps=lambda reps: reps[0].update(territories=["apac"]),
        rules=lambda rules: rules[0]["match"].update(territories=["mars"]),
    )
    found = problems(raw)
    assert "reps[0] (id 'ae-ana').territories: unknown territory 'apac'" in found
    assert "rules[0] (name 'na').match.territories: unknown territory 'mars'" in found


def test_inactive_default_owner_is_refused():
    raw = changed(reps=lambda reps: reps[2].update(active=False))
    assert "rules[0] (name 'na').default_owner: 'mgr-mia' is inactive" in problems(raw)


def test_departed_default_owner_is_refused():
    raw = changed(reps=lambda reps: reps[2].update(departed_at="2025-06-30T00:00:00Z"))
    assert any(
        p.startswith("rules[0] (name 'na').default_owner: 'mgr-mia' departed on 2025-06-30") for p in problems(raw)
    )


def test_default_owner_out_of_office_today_is_only_a_warning(routing_config):
    raw = changed(reps=lambda reps: reps[2].update(out_of_office=[{"from": "2025-12-20", "until": "2026-01-10"}]))
    roster = parse_roster(raw, config=routing_config, now_ms=NOW)
    assert any("mgr-mia" in w and "out of office until 2026-01-10" in w for w in roster.warnings)


def test_duplicate_ids_name_both_positions():
    raw = changed(reps=lambda reps: reps.append(rep("ae-ana", name="Another Ana")))
    assert "reps[5] (id 'ae-ana'): duplicate id (first at reps[0])" in problems(raw)


@pytest.mark.parametrize("capacity", [0, -3])
def test_capacity_must_be_positive(capacity):
    raw = changed(reps=lambda reps: reps[1].update(capacity=capacity))
    assert f"reps[1] (id 'sdr-sam').capacity: must be greater than 0 (max open leads), got {capacity}" in problems(raw)


def test_capacity_is_required_for_routed_roles():
    raw = changed(reps=lambda reps: reps[0].pop("capacity"))
    assert any(p.startswith("reps[0] (id 'ae-ana').capacity: required for role 'AE'") for p in problems(raw))


def test_shape_errors_name_the_entry_by_id():
    raw = changed(reps=lambda reps: reps[1].update(capacity="lots", colour="blue"))
    found = problems(raw)
    assert "reps[1] (id 'sdr-sam').capacity: expected an integer, got 'lots'" in found
    assert "reps[1] (id 'sdr-sam').colour: unknown key (value 'blue')" in found


def test_all_problems_are_reported_together():
    raw = changed(
        reps=lambda reps: (reps[0].update(capacity=0, territories=["apac"]), reps.append(rep("sdr-sam", "SDR"))),
        rules=lambda rules: rules.append({"name": "x", "members": ["ghost"], "default_owner": "nobody"}),
    )
    found = problems(raw)
    assert len(found) == 5, found
    assert "rules[1] (name 'x').members: unknown rep 'ghost'" in found
    assert "rules[1] (name 'x').default_owner: unknown rep 'nobody'" in found


def test_out_of_office_window_must_be_ordered_and_valid():
    raw = changed(
        reps=lambda reps: reps[0].update(
            out_of_office=[
                {"from": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                {"from": "soon", "until": "later"},
            ]
        )
    )
    found = problems(raw)
    assert any(
        p.startswith("reps[0] (id 'ae-ana').out_of_office[0]: 'from' (2026-02-01T00:00:00Z) must be before")
        for p in found
    )
    assert any(p.startswith("reps[0] (id 'ae-ana').out_of_office[1]: not an ISO-8601 time") for p in found)


def test_country_in_two_territories_is_ambiguous():
    raw = changed(territories=lambda ts: ts.append({"id": "uk", "countries": ["gb"]}))
    assert "territories[2] (id 'uk').countries: 'GB' already belongs to territory 'emea'" in problems(raw)


def test_account_owner_must_exist_but_may_be_inactive(routing_config):
    raw = changed(account_owners=lambda owners: owners.update({"globex.com": "ghost", "Initech.COM": "sdr-sam"}))
    assert "account_owners.globex.com: unknown rep 'ghost'" in problems(raw)
    raw = changed(reps=lambda reps: reps[0].update(active=False))
    roster = parse_roster(raw, config=routing_config, now_ms=NOW)
    assert any("account_owners.acme.com: owner 'ae-ana' is inactive" in w for w in roster.warnings)


def test_nurture_owner_must_be_in_the_roster_and_active_fallback_must_not_be_inactive():
    raw = changed(reps=lambda reps: (reps.pop(3), reps[3].update(active=False)))
    found = problems(raw)
    assert "nurture owner 'nurture-sequence' (routing config nurture_owner): not in the roster" in found
    assert "fallback owner 'revops-triage' (routing config fallback.owner_id): is inactive" in found


def test_rule_conditions_are_checked_against_the_config():
    raw = changed(
        rules=lambda rules: rules[0]["match"].update(
            segments=["giant"], lead_types=["carrier_pigeon"], priorities=["P9"]
        )
    )
    found = problems(raw)
    assert "rules[0] (name 'na').match.segments: unknown segment 'giant'" in found
    assert "rules[0] (name 'na').match.lead_types: unknown lead type 'carrier_pigeon'" in found
    assert "rules[0] (name 'na').match.priorities: unknown priority 'P9'" in found


def test_availability_inactive_departed_out_of_office(routing_config):
    roster = parse_roster(
        changed(
            reps=lambda reps: (
                reps[0].update(out_of_office=[{"from": "2025-12-31T00:00:00Z", "until": "2026-01-02T00:00:00Z"}]),
                reps[1].update(departed_at="2026-06-01"),
            )
        ),
        config=routing_config,
        now_ms=NOW,
    )
    ana, sam = roster.reps["ae-ana"], roster.reps["sdr-sam"]
    assert ana.unavailable_reason(NOW) == "out of office until 2026-01-02T00:00:00Z"
    assert ana.unavailable_reason(to_epoch_ms("2026-01-02T00:00:00Z")) is None  # back at `until`
    assert sam.unavailable_reason(NOW) is None
    assert sam.unavailable_reason(to_epoch_ms("2026-06-01")) == "departed on 2026-06-01T00:00:00Z"


def test_times_accept_zones_naive_and_dates():
    assert to_epoch_ms("2026-01-01T01:00:00+01:00") == NOW
    assert to_epoch_ms("2026-01-01T00:00:00") == NOW
    assert to_epoch_ms("2026-01-01") == NOW
