"""The first-touch clock state machine: open, stop, breach each tier once, in order."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.sla.config import parse_sla_config
from agents.sla.exceptions import SlaError
from agents.sla.rules import (
    Assigned,
    LeadClock,
    Tick,
    Touched,
    apply,
    breach_id,
    next_due_ms,
    open_priority,
)

S, M, H = 1_000, 60_000, 3_600_000
T0 = 1_735_689_600_000
LEAD = "ld_00000000000000000001"

CONFIG = parse_sla_config(
    {
        "version": "test",
        "first_touch": {"clock_skew_tolerance": "2m"},
        "escalation": {
            "P1": {
                "from": "assigned",
                "tiers": [
                    {"after": "2h", "role": "rep"},
                    {"after": "4h", "role": "manager"},
                    {"after": "24h", "role": "head_of_sales"},
                ],
            },
            "P2": {"from": "due", "tiers": [{"after": "2h", "role": "manager"}]},
            "P3": {"tiers": []},
        },
        "contacts": {"manager": {"by_team": {"na-sales": "mgr-marco"}}, "head_of_sales": {"default": "hos-hana"}},
    }
)
REASSIGN = parse_sla_config(
    {
        "version": "reassign",
        "reassignment": {"enabled": True, "max_per_mql": 1},
        "escalation": {"P1": {"tiers": [{"after": "2h", "role": "manager"}]}},
    }
)


def assignment(*, aid="as-1", mql="mql-1", at=T0, due=None, priority="P1", owner="ae-ana", team="na-sales"):
    return Assigned(
        {
            "event_id": aid,
            "lead_id": LEAD,
            "mql_event_id": mql,
            "owner_id": owner,
            "owner_name": owner,
            "owner_role": "AE",
            "team": team,
            "priority": priority,
            "assigned_at": at,
            "first_touch_due_at": due if due is not None else at + 10 * M,
        }
    )


def touch(at, *, eid="crm-1", status="first_touch", rep="ae-ana"):
    return Touched(LEAD, eid, status, rep, at)


def run(steps, state=None, config=CONFIG):
    """steps: (event, now_ms); returns (state, outputs)."""
    outputs = []
    for event, now in steps:
        state, out = apply(state, event, config, now_ms=now)
        outputs.extend(out)
    return state, outputs


def breaches(outputs):
    return [o.record for o in outputs if o.subject == "sla_breached"]


def touches(outputs):
    return [o for o in outputs if o.subject == "sla_first_touch"]


def test_assignment_opens_a_clock_due_at_the_first_touch_deadline():
    state, out = run([(assignment(), T0)])
    assert out == [] and state.is_open and open_priority(state) == "P1"
    assert next_due_ms(state) == T0 + 10 * M
    assert [(t.number, t.due_ms, t.role, t.contact_id) for t in state.clock.tiers] == [
        (0, T0 + 10 * M, "owner", "ae-ana"),
        (1, T0 + 2 * H, "rep", "ae-ana"),
        (2, T0 + 4 * H, "manager", "mgr-marco"),
        (3, T0 + 24 * H, "head_of_sales", "hos-hana"),
    ]


def test_nothing_happens_before_the_deadline():
    state, _ = run([(assignment(), T0)])
    same, out = apply(state, Tick(), CONFIG, now_ms=T0 + 10 * M - 1)
    assert same is state and out == []


def test_breach_after_the_deadline_names_lead_owner_priority_tier_and_lateness():
    state, out = run([(assignment(), T0), (Tick(), T0 + 10 * M + 3 * S)])
    [breach] = breaches(out)
    assert breach == {
        "event_id": breach_id(LEAD, "as-1", 0),
        "lead_id": LEAD,
        "assignment_id": "as-1",
        "owner_id": "ae-ana",
        "priority": "P1",
        "tier": 0,
        "escalate_to_role": "owner",
        "escalate_to_id": "ae-ana",
        "due_at": T0 + 10 * M,
        "breached_at": T0 + 10 * M + 3 * S,
        "minutes_late": 0.05,
        "action": "escalate",
        "first_assigned_at": T0,
    }
    assert state.clock.fired == (0,) and next_due_ms(state) == T0 + 2 * H
    again, out = apply(state, Tick(), CONFIG, now_ms=T0 + 11 * M)
    assert again is state and out == []  # a redelivered sweep fires nothing twice


def test_escalation_tiers_fire_in_order_each_once():
    state, out = run([(assignment(), T0)] + [(Tick(), T0 + m * M) for m in range(0, 25 * 60, 7)])
    assert [(b["tier"], b["escalate_to_role"], b["escalate_to_id"]) for b in breaches(out)] == [
        (0, "owner", "ae-ana"),
        (1, "rep", "ae-ana"),
        (2, "manager", "mgr-marco"),
        (3, "head_of_sales", "hos-hana"),
    ]
    assert not state.is_open and open_priority(state) is None  # nothing left to escalate


def test_a_late_sweep_fires_every_tier_due_in_deadline_order():
    _, out = run([(assignment(), T0), (Tick(), T0 + 5 * H)])
    assert [b["tier"] for b in breaches(out)] == [0, 1, 2]
    assert [b["minutes_late"] for b in breaches(out)] == [290.0, 180.0, 60.0]


def test_touch_in_time_stops_the_clock_and_records_time_to_first_touch():
    state, out = run([(assignment(), T0), (touch(T0 + 4 * M), T0 + 4 * M), (Tick(), T0 + 30 * H)])
    assert breaches(out) == [] and not state.is_open and next_due_ms(state) is None
    [first] = touches(out)
    assert (first.priority, first.team, first.seconds, first.after_breach) == ("P1", "na-sales", 240.0, False)


def test_touch_after_a_breach_still_records_time_to_first_touch_and_cancels_later_tiers():
    state, out = run(
        [(assignment(), T0), (Tick(), T0 + 11 * M), (touch(T0 + 50 * M), T0 + 50 * M), (Tick(), T0 + 30 * H)]
    )
    assert [b["tier"] for b in breaches(out)] == [0]
    [first] = touches(out)
    assert first.seconds == 3000.0 and first.after_breach is True


def test_touch_after_the_last_tier_still_records_time_to_first_touch():
    state, out = run([(assignment(priority="P3", due=T0 + 5 * 24 * H), T0), (Tick(), T0 + 6 * 24 * H)])
    assert not state.is_open and [b["tier"] for b in breaches(out)] == [0]
    state, out = run([(touch(T0 + 7 * 24 * H), T0 + 7 * 24 * H)], state)
    assert touches(out)[0].seconds == 7 * 24 * 3600.0 and touches(out)[0].after_breach


def test_second_touch_changes_nothing_observable():
    state, _ = run([(assignment(), T0), (touch(T0 + M), T0 + M)])
    after, out = run([(touch(T0 + 2 * M, eid="crm-2", status="working"), T0 + 2 * M)], state)
    assert out == [] and after.clock == state.clock and after.last_touch.event_id == "crm-2"


def test_statuses_outside_stop_statuses_do_not_stop_the_clock():
    config = parse_sla_config({"version": "x", "first_touch": {"stop_statuses": ["first_touch"]}})
    state, _ = run([(assignment(), T0)], config=config)
    same, out = apply(state, touch(T0 + M, status="working"), config, now_ms=T0 + M)
    assert same is state and out == []


def test_crm_touch_that_overtook_the_assignment_opens_the_clock_stopped():
    state, _ = run([(touch(T0 + 30 * S), T0 + 30 * S)])
    assert state.clock is None and state.last_touch.at_ms == T0 + 30 * S
    state, out = run([(assignment(), T0 + 31 * S)], state)
    assert not state.is_open and touches(out)[0].seconds == 30.0


def test_touch_before_the_assignment_counts_only_within_the_skew_tolerance():
    state, out = run([(assignment(), T0), (touch(T0 - 1 * M, eid="skewed"), T0)])
    assert not state.is_open and touches(out)[0].seconds == 0.0
    state, out = run([(assignment(aid="as-2"), T0), (touch(T0 - 10 * M, eid="old"), T0)])
    assert state.is_open and touches(out) == []


def test_redelivered_or_older_assignment_changes_nothing():
    state, _ = run([(assignment(aid="as-2", at=T0 + M), T0 + M)])
    for event in (assignment(aid="as-2", at=T0 + M), assignment(aid="as-1", at=T0)):
        same, out = apply(state, event, CONFIG, now_ms=T0 + 2 * M)
        assert same is state and out == []


def test_new_mql_after_recycling_supersedes_the_old_clock():
    state, _ = run([(assignment(), T0), (Tick(), T0 + 11 * M)])
    later = T0 + 40 * 24 * H
    state, out = run([(assignment(aid="as-9", mql="mql-2", at=later), later), (Tick(), later + 11 * M)], state)
    assert state.clock.assignment_id == "as-9" and state.clock.mql_assigned_at_ms == later
    assert [(b["assignment_id"], b["tier"]) for b in breaches(out)] == [("as-9", 0)]


def test_p1_breach_asks_for_reassignment_once_per_mql_and_escalation_keeps_its_anchor():
    state, out = run([(assignment(), T0), (Tick(), T0 + 11 * M)], config=REASSIGN)
    [b0] = breaches(out)
    assert (b0["escalate_to_role"], b0["escalate_to_id"]) == ("reassign", None)
    # routing re-assigns the same MQL to the next rep: new tier-0 deadline, same escalation anchor
    state, out = run(
        [(assignment(aid="as-2", owner="ae-ben", at=T0 + 12 * M), T0 + 12 * M), (Tick(), T0 + 23 * M)],
        state,
        config=REASSIGN,
    )
    [b1] = breaches(out)
    assert (b1["assignment_id"], b1["owner_id"], b1["tier"], b1["escalate_to_role"]) == ("as-2", "ae-ben", 0, "owner")
    assert state.clock.reassignments == 1 and state.clock.mql_assigned_at_ms == T0
    state, out = run([(Tick(), T0 + 2 * H)], state, config=REASSIGN)
    assert [(b["tier"], b["escalate_to_role"]) for b in breaches(out)] == [(1, "manager")]
    # a third assignment of the same MQL keeps tier 1 fired (due at the same anchored time)
    state, out = run(
        [(assignment(aid="as-3", owner="ae-cy", at=T0 + 3 * H), T0 + 3 * H), (Tick(), T0 + 3 * H + 11 * M)],
        state,
        config=REASSIGN,
    )
    assert [(b["assignment_id"], b["tier"]) for b in breaches(out)] == [("as-3", 0)]


LADDER_REASSIGN = parse_sla_config(
    {
        "version": "ladder-reassign",
        "reassignment": {"enabled": True, "priorities": ["P1", "P2"], "tiers": [2], "max_per_mql": 1},
        "escalation": {
            "P1": {
                "from": "assigned",
                "tiers": [
                    {"after": "2h", "role": "rep"},
                    {"after": "4h", "role": "manager"},
                    {"after": "24h", "role": "head_of_sales"},
                ],
            },
            "P2": {
                "from": "due",
                "tiers": [
                    {"after": "2h", "role": "rep"},
                    {"after": "4h", "role": "manager"},
                    {"after": "24h", "role": "head_of_sales"},
                ],
            },
        },
        "contacts": {"manager": {"by_team": {"na-sales": "mgr-marco"}}, "head_of_sales": {"default": "hos-hana"}},
    }
)


def test_a_ladder_tier_can_reassign_and_keeps_its_role_and_contact():
    state, out = run([(assignment(), T0), (Tick(), T0 + 4 * H)], config=LADDER_REASSIGN)
    assert [(b["tier"], b["escalate_to_role"], b["escalate_to_id"], b["action"]) for b in breaches(out)] == [
        (0, "owner", "ae-ana", "escalate"),
        (1, "rep", "ae-ana", "escalate"),
        (2, "manager", "mgr-marco", "reassign"),
    ]
    assert {b["first_assigned_at"] for b in breaches(out)} == {T0}


def test_reassignment_gives_a_fresh_tier_0_and_the_ladder_continues_without_restarting():
    state, _ = run([(assignment(), T0), (Tick(), T0 + 4 * H)], config=LADDER_REASSIGN)
    later = T0 + 4 * H + M  # routing's reassignment of the same MQL to ae-ben
    state, out = run([(assignment(aid="as-2", owner="ae-ben", at=later), later)], state, config=LADDER_REASSIGN)
    assert out == [] and state.is_open and state.clock.owner_id == "ae-ben"
    assert state.clock.fired == (1, 2) and state.clock.mql_assigned_at_ms == T0
    state, out = run([(Tick(), later + 10 * M), (Tick(), T0 + 24 * H)], state, config=LADDER_REASSIGN)
    assert [(b["assignment_id"], b["owner_id"], b["tier"], b["due_at"], b["action"]) for b in breaches(out)] == [
        ("as-2", "ae-ben", 0, later + 10 * M, "escalate"),  # the new owner's own first-touch deadline
        ("as-2", "ae-ben", 3, T0 + 24 * H, "escalate"),
    ]  # the original ladder, on its original schedule
    assert not state.is_open


def test_a_due_anchored_ladder_continues_from_the_first_deadline_after_reassignment():
    due = T0 + 48 * H
    state, out = run([(assignment(priority="P2", due=due), T0), (Tick(), due + 4 * H)], config=LADDER_REASSIGN)
    assert [(b["tier"], b["action"]) for b in breaches(out)] == [(0, "escalate"), (1, "escalate"), (2, "reassign")]
    later = due + 4 * H + M
    state, _ = run(
        [(assignment(aid="as-2", owner="ae-ben", priority="P2", at=later, due=later + 48 * H), later)],
        state,
        config=LADDER_REASSIGN,
    )
    assert [(t.number, t.due_ms) for t in state.clock.tiers if t.number] == [
        (1, due + 2 * H),
        (2, due + 4 * H),
        (3, due + 24 * H),
    ]
    assert next_due_ms(state) == due + 24 * H  # not 24 h after the new owner's deadline


def test_max_per_mql_stops_further_reassigning_tiers():
    config = parse_sla_config(
        {
            "version": "x",
            "reassignment": {"enabled": True, "tiers": [0, 1], "max_per_mql": 1},
            "escalation": {"P1": {"tiers": [{"after": "2h", "role": "manager"}]}},
        }
    )
    state, out = run([(assignment(), T0), (Tick(), T0 + 11 * M)], config=config)
    assert [(b["tier"], b["action"]) for b in breaches(out)] == [(0, "reassign")]
    state, out = run(
        [(assignment(aid="as-2", owner="ae-ben", at=T0 + 12 * M), T0 + 12 * M), (Tick(), T0 + 2 * H)],
        state,
        config=config,
    )
    assert [(b["tier"], b["action"]) for b in breaches(out)] == [(0, "escalate"), (1, "escalate")]


def test_clocks_saved_before_tier_actions_still_load():
    from agents.sla.rules import Tier

    assert Tier.from_list([1, T0, "manager", "mgr-marco"]).action == "escalate"
    assert Tier.from_list([0, T0, "reassign", None]).action == "reassign"
    tier = Tier(2, T0, "manager", None, "reassign")
    assert Tier.from_list(tier.to_list()) == tier


def test_p2_escalation_counts_from_the_deadline():
    due = T0 + 48 * H
    state, out = run([(assignment(priority="P2", due=due), T0), (Tick(), due + 2 * H)])
    assert [(b["tier"], b["due_at"]) for b in breaches(out)] == [(0, due), (1, due + 2 * H)]


def test_state_round_trips_through_orjson():
    state, _ = run([(assignment(), T0), (Tick(), T0 + 11 * M), (touch(T0 + 20 * M), T0 + 20 * M)])
    assert LeadClock.from_dict(orjson.loads(orjson.dumps(state.to_dict()))) == state


def test_wrong_lead_and_bad_records_are_errors():
    state, _ = run([(assignment(), T0)])
    with pytest.raises(SlaError):
        apply(state, Touched("ld_other", "e", "first_touch", None, T0), CONFIG, now_ms=T0)
    with pytest.raises(SlaError, match="first_touch_due_at"):
        apply(None, Assigned({"event_id": "x", "lead_id": LEAD, "assigned_at": T0}), CONFIG, now_ms=T0)


@settings(max_examples=80, deadline=None)
@given(
    ticks=st.lists(st.integers(0, 30 * 60), min_size=1, max_size=30),
    touch_at=st.one_of(st.none(), st.integers(0, 30 * 60)),
    restart_every=st.integers(1, 5),
)
def test_each_due_tier_fires_exactly_once_in_order_whatever_the_sweep_times(ticks, touch_at, restart_every):
    """Sweeps at arbitrary (increasing) minutes, an optional touch, the state serialized and
    reloaded every few steps (a restart): every tier due before the touch fires exactly once,
    in deadline order, and nothing after the touch."""
    minutes = sorted(ticks)
    steps = [(Tick(), T0 + m * M) for m in minutes]
    if touch_at is not None:
        steps.append((touch(T0 + touch_at * M), T0 + touch_at * M))
        steps.sort(key=lambda s: s[1])
    state, outputs = run([(assignment(), T0)])
    for i, step in enumerate(steps):
        state, out = run([step], state)
        outputs.extend(out)
        if i % restart_every == 0:
            state = LeadClock.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    fired = [b["tier"] for b in breaches(outputs)]
    assert fired == sorted(fired) and len(fired) == len(set(fired))
    # Ticks sort before a touch of the same millisecond (stable sort): they still count.
    stop = T0 + touch_at * M if touch_at is not None else None
    sweeps = [T0 + m * M for m in minutes if stop is None or T0 + m * M <= stop]
    expected = [t.number for t in state.clock.tiers if sweeps and t.due_ms <= max(sweeps)]
    assert sorted(fired) == sorted(expected)
    for b in breaches(outputs):
        assert b["breached_at"] >= b["due_at"]
