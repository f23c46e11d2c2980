"""Issue 16 item 1 on the pure rules: MQL crossings decided in event-time order within a
bounded reorder window (agents/scoring/reorder.py), so the MQLs of the same inputs do not
depend on how the input topics were interleaved (a restart, a broker outage)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agents.scoring import evaluate, reorder
from agents.scoring.outputs import qualified_id
from agents.scoring.reorder import ReorderWindow
from streams.settings import SettingsError, load_settings
from tests.repo_config import default_priority, default_scoring_model
from tests.unit.agents.scoring.helpers import CORP, T0, activity, crm, director_form, of, page
from tests.unit.agents.scoring.test_scoring_properties import lead_events

SECOND, MINUTE = 1000, 60_000
W, LIVE = 10 * MINUTE, 2 * SECOND
WINDOW = ReorderWindow(W, LIVE)
TOPICS = ("form_submitted", "web_activity", "crm_status")


def thresholds(model):
    """The scores at which a lead's MQL state changes."""
    return (model.thresholds.mql, model.rearm_at, model.thresholds.fast_track)


def feed(arrivals, state=None, *, window=WINDOW, paths=None):
    """Apply ``(event, processing time)`` pairs in this order; returns (state, outputs, steps)."""
    outputs, steps = [], []
    for event, now in arrivals:
        state, out = reorder.apply_event(
            state, event, default_scoring_model(), now_ms=now, window=window, priority=default_priority(), paths=paths
        )
        outputs.extend(out)
        steps.append(state)
    return state, outputs, steps


def sweep(state, now, *, window=WINDOW):
    return reorder.review(state, default_scoring_model(), now_ms=now, window=window, priority=default_priority())


def sent(outputs):
    """What sales was told: (mql_number, id, upgrade_of) of every lead_qualified, in order."""
    return [
        (o.record["mql_number"], o.record["event_id"], o.record["upgrade_of"]) for o in of(outputs, "lead_qualified")
    ]


def canonical(events):
    return sorted(events, key=lambda e: (e.occurred_at_ms, f"{e.kind}:{e.event_id}"))


@st.composite
def a_lead_within_the_window(draw):
    """A grade-A profile and up to 18 events of one lead, all within 5 minutes (< W)."""
    offsets = draw(st.lists(st.integers(0, 5 * MINUTE), min_size=1, max_size=18))
    events = [director_form(at=T0 + draw(st.integers(0, 5 * MINUTE)), eid="profile")]
    for i, offset in enumerate(offsets):  # buying signals and unsubscribes: crossings that come and go
        kind = draw(st.sampled_from(["any", "positive", "positive", "unsubscribe", "recycled"]))
        if kind == "unsubscribe":
            events.append(activity(CORP, "unsubscribe", at=T0 + offset, eid=f"u{i}"))
        elif kind == "recycled":  # score reset
            events.append(crm(CORP, "rejected", at=T0 + offset, eid=f"r{i}", disposition="not_now"))
        else:
            events.append(
                draw(lead_events(at=T0 + offset, positive_only=kind == "positive", with_profile=kind == "any"))
            )
    unique = {(e.kind, e.event_id): e for e in events}
    return canonical(unique.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(events=a_lead_within_the_window(), data=st.data())
def test_any_interleaving_of_the_same_topic_sequences_gives_the_same_mqls_and_final_state(scoring_model, events, data):
    """Without faults each event is processed live, in event-time order. With one, a prefix
    was processed live, then a restart re-reads each topic at its own pace: the rest arrives
    as any interleaving of the per-topic sequences, late by 2 s to 4 min (catch-up), with some
    of the prefix redelivered. Same MQLs (number, id) and upgrades, same final state."""
    baseline, base_out, base_steps = feed([(e, e.occurred_at_ms) for e in events])
    # A score within a hair of a threshold may decide differently minutes later (decay): not
    # what is tested here (test_processing_time covers the delay itself).
    for state, event in zip(base_steps, events):
        score = evaluate(state, scoring_model, event.occurred_at_ms).score
        assume(all(abs(score - level) > 0.02 for level in thresholds(scoring_model)))

    cut = data.draw(st.integers(0, len(events) - 1), label="processed before the crash")
    queues = {topic: [e for e in events[cut:] if e.kind == topic] for topic in TOPICS}
    order = data.draw(st.permutations([t for t in TOPICS for _ in queues[t]]), label="topic interleaving")
    redelivered = data.draw(st.lists(st.sampled_from(events[:cut]), max_size=3) if cut else st.just([]))
    arrivals, clock = [(e, e.occurred_at_ms) for e in events[:cut]], events[cut - 1].occurred_at_ms if cut else 0
    for event in [*redelivered, *(queues[topic].pop(0) for topic in order)]:
        delay = data.draw(st.integers(LIVE + 1, 4 * MINUTE), label="catch-up lag")
        clock = max(clock, event.occurred_at_ms + delay)
        arrivals.append((event, clock))
    faulty, fault_out, _ = feed(arrivals)

    end = max(e.occurred_at_ms for e in events) + W + 1  # every deferred decision is due by now
    baseline, more_base = sweep(baseline, end)
    faulty, more_fault = sweep(faulty, end)
    assert sorted(sent(base_out + more_base)) == sorted(sent(fault_out + more_fault))
    assert len({i for _, i, _ in sent(fault_out + more_fault)}) == len(sent(fault_out + more_fault)), "each once"
    assert baseline.window is None and faulty.window is None, "a quiet lead carries no window"
    assert faulty.to_dict() == baseline.to_dict()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(lead_events(), min_size=1, max_size=20), data=st.data())
def test_live_traffic_and_late_uploads_are_decided_exactly_as_without_the_window(events, data):
    """Live events in order (the normal case) and events processed a window or more late in any
    order (backfills, offline uploads, retry queues): the same outputs, at the same time."""
    events = canonical({(e.kind, e.event_id): e for e in events}.values())
    late = data.draw(st.permutations(events))
    lag = data.draw(st.integers(W, 400 * 86_400_000))
    for arrivals in (
        [(e, e.occurred_at_ms + LIVE) for e in events],
        [(e, max(x.occurred_at_ms for x in late[: i + 1]) + lag) for i, e in enumerate(late)],
    ):
        windowed, out, _ = feed(arrivals)
        plain, plain_out, _ = feed(arrivals, window=reorder.OFF)
        assert out == plain_out
        assert windowed.to_dict() | {"window": None} == plain.to_dict() | {"window": None}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(events=a_lead_within_the_window(), data=st.data())
def test_a_catch_up_event_applied_once_decides_exactly_as_a_rebuilt_path(events, data):
    """Issue 14: the newest event of a lead, arriving late (catch-up), is applied once instead
    of rebuilding the tail; the outputs and every intermediate state are those of the rebuild."""
    arrivals, clock = [], 0
    for event in data.draw(st.permutations(events), label="arrival order"):
        clock = max(clock, event.occurred_at_ms + data.draw(st.integers(0, 4 * MINUTE), label="lag"))
        arrivals.append((event, clock))
    fast, fast_out, fast_steps = feed(arrivals)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reorder, "_CATCH_UP_FAST_PATH", False)
        slow, slow_out, slow_steps = feed(arrivals)
    assert fast_out == slow_out
    assert [s.to_dict() for s in fast_steps] == [s.to_dict() for s in slow_steps]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(events=a_lead_within_the_window(), data=st.data())
def test_a_rebuild_reusing_the_cached_path_decides_exactly_as_one_from_the_snapshot(events, data):
    """Issue 14: a rebuild re-applies only the entries after the first one that changed
    (reorder.PathCache). Any arrival order, lag and redelivery, with reviews in between: the
    outputs and every state are those of rebuilds that start from the snapshot each time."""
    arrivals, clock = [], 0
    order = data.draw(st.permutations(events), label="arrival order")
    for event in [*order, *data.draw(st.lists(st.sampled_from(events), max_size=3), label="redelivered")]:
        clock = max(clock, event.occurred_at_ms + data.draw(st.integers(0, 4 * MINUTE), label="lag"))
        arrivals.append((event, clock))
    reviews = data.draw(st.sets(st.integers(0, len(arrivals) - 1), max_size=3), label="reviews after")

    def run(paths):
        state, outputs, states = None, [], []
        for i, (event, now) in enumerate(arrivals):
            state, out = reorder.apply_event(
                state,
                event,
                default_scoring_model(),
                now_ms=now,
                window=WINDOW,
                priority=default_priority(),
                paths=paths,
            )
            outputs.extend(out)
            if i in reviews:
                state, out = reorder.review(
                    state,
                    default_scoring_model(),
                    now_ms=now + W // 2,
                    window=WINDOW,
                    priority=default_priority(),
                    paths=paths,
                )
                outputs.extend(out)
            states.append(state.to_dict())
        return outputs, states

    cache = reorder.PathCache(8)
    assert run(cache) == run(None)


def test_the_path_cache_is_used_by_a_catch_up_drain_and_bounded():
    """A catch-up drain of one lead with a deferred MQL (every later event rebuilds): the cached
    path spares re-applying the tail each time; the cache holds at most max_steps lead states
    (least recently used leads out first) and forgets an erased lead."""
    form, web = _form_and_web()
    arrivals = [(e, T0 + MINUTE + i) for i, e in enumerate([form, *web])]  # a minute late: catch-up
    cache = reorder.PathCache(64)
    cached_state, cached_out, _ = feed(arrivals, paths=cache)
    plain_state, plain_out, _ = feed(arrivals)
    assert cached_out == plain_out and cached_state.to_dict() == plain_state.to_dict()
    assert cache.reused_steps >= 3, cache.reused_steps  # rebuilds after the deferred crossing reused the path
    assert len(cache) == 1 and cache.steps == len(arrivals)

    other = replace(form, lead_id="ld_" + "0" * 20, event_id="other")
    other_arrivals = [(other, T0 + MINUTE), (replace(web[0], lead_id=other.lead_id), T0 + MINUTE + 1)]
    small = reorder.PathCache(len(arrivals))
    feed(arrivals, paths=small)
    assert len(small) == 1
    feed(other_arrivals, paths=small)
    assert len(small) == 1 and small.steps <= len(arrivals)  # the first lead went out for the second
    small.forget(other.lead_id)
    assert len(small) == 0 and small.steps == 0
    with pytest.raises(ValueError, match="max_steps"):
        reorder.PathCache(0)


# --- the example of the finding: a form that overtakes nothing, web activity that does ------


def _form_and_web(at=T0):
    """Demo request from a grade-A director (40) + pricing (55: MQL 1) + unsubscribe (40: ends)
    + pricing again (55: MQL 2), the form on one topic, the pages on another."""
    form = director_form(at=at, eid="form")
    web = [
        page(at=at + 100, eid="p1"),
        activity(CORP, "unsubscribe", at=at + 200, eid="u"),
        page(at=at + 300, eid="p2"),
    ]
    return form, web


@pytest.mark.parametrize("window", [WINDOW, reorder.OFF], ids=["window", "arrival-order"])
def test_web_activity_overtaking_the_form_changes_no_mql(window):
    form, web = _form_and_web()
    in_order, out_in_order, _ = feed([(e, e.occurred_at_ms + 50) for e in [form, *web]], window=window)
    overtaken, out_overtaken, _ = feed(
        [(e, e.occurred_at_ms + 50) for e in web] + [(form, form.occurred_at_ms + 400)], window=window
    )
    lead = form.lead_id
    assert sent(out_in_order) == [(1, qualified_id(lead, 1), None), (2, qualified_id(lead, 2), None)]
    if window is reorder.OFF:  # the control: in arrival order the form hides the first crossing
        assert sent(out_overtaken) == [(1, qualified_id(lead, 1), None)]
        return
    assert sent(out_overtaken) == sent(out_in_order), "live (the form was 400 ms late): sent at once"
    assert overtaken.mql_number == 2 and overtaken.to_dict()["window"]["tail"] is not None


# --- the window edge ------------------------------------------------------------------------


def _lead_with_an_unsubscribe_a_window_later():
    """Live: a grade-A demo request at T0 (40 points), an unsubscribe at T0 + W (25)."""
    form = director_form(at=T0, eid="form")
    unsubscribe = activity(CORP, "unsubscribe", at=T0 + W, eid="u")
    state, out, _ = feed([(form, T0), (unsubscribe, T0 + W)])
    assert sent(out) == [] and state.mql_number == 0
    return state


def test_an_event_exactly_a_window_old_is_decided_on_the_event_time_path():
    state = _lead_with_an_unsubscribe_a_window_later()
    # A pricing view at T0 (55 points before the unsubscribe: a crossing), processed 5 s after
    # the unsubscribe: exactly W before the newest event, so inside the window.
    state, out, _ = feed([(page(at=T0, eid="late-pricing"), T0 + W + 5 * SECOND)], state)
    assert sent(out) == [(1, qualified_id(state.lead_id, 1), None)], "the MQL a live run sent"
    assert (state.mql_number, state.mql, state.mql_sent) == (1, False, 1), "and the unsubscribe ended it"


def test_an_event_just_beyond_the_window_is_late_and_never_emits_a_historical_crossing():
    state = _lead_with_an_unsubscribe_a_window_later()
    state, out, _ = feed([(page(at=T0 - 1, eid="late-pricing"), T0 + W + 5 * SECOND)], state)
    assert sent(out) == [] and (state.mql_number, state.mql) == (0, False), "added decayed at the lead's clock: 40"
    assert of(out, "lead_scored")[0].record["score"] == pytest.approx(40, abs=0.01)


def test_a_backfilled_crossing_inside_the_window_is_counted_never_sent():
    state = _lead_with_an_unsubscribe_a_window_later()
    state, out, _ = feed([(replace(page(at=T0, eid="bf"), backfill=True), T0 + W + 5 * SECOND)], state)
    assert sent(out) == [] and state.mql_number == 1 and state.stage == "nurture"


# --- latency: live events are decided at once; catch-up waits for the window ------------------


def test_a_live_crossing_is_sent_by_the_event_that_causes_it(scoring_model):
    form, web = _form_and_web()
    state, out, _ = feed([(form, T0 + 5), (web[0], T0 + 100 + LIVE)])
    assert sent(out) == [(1, qualified_id(form.lead_id, 1), None)]
    assert reorder.next_review_at_ms(state, scoring_model) != T0 + 100 + W, "nothing deferred"


def test_a_catch_up_crossing_is_deferred_to_event_time_plus_window_then_sent_once(scoring_model):
    form, web = _form_and_web()
    lag = 30 * SECOND  # catch-up after a restart: not live
    state, out, _ = feed([(form, T0 + lag), (web[0], T0 + 100 + lag)])
    assert sent(out) == [] and state.mql_number == 1 and state.stage == "nurture"
    assert of(out, "lead_scored")[-1].record["mql"] is False, "not an MQL until it is sent"
    due = reorder.next_review_at_ms(state, scoring_model)
    assert due == T0 + 100 + W
    early, nothing = sweep(state, due - 1)
    assert sent(nothing) == []
    state, out = sweep(state, due)
    assert sent(out) == [(1, qualified_id(form.lead_id, 1), None)]
    assert state.stage == "mql" and state.window is None
    told = of(out, "lead_scored")
    assert [(r.record["stage"], r.record["mql"]) for r in told] == [("mql", True)], "consumers learn the new stage"
    assert told[0].record["event_id"] == sweep(early, due)[1][-1].record["event_id"], "a repeated sweep: same id"
    assert sent(sweep(state, due + W)[1]) == []


def test_a_live_event_sends_the_deferred_mqls_before_its_own():
    form, web = _form_and_web()
    lag = 30 * SECOND
    state, out, _ = feed([(form, T0 + lag), (web[0], T0 + 100 + lag), (web[1], T0 + 200 + lag)])
    assert sent(out) == [] and state.mql_number == 1
    state, out, _ = feed([(web[2], T0 + 300)], state)  # live again (its own clock is behind: fine)
    lead = form.lead_id
    assert sent(out) == [(1, qualified_id(lead, 1), None), (2, qualified_id(lead, 2), None)]


def test_the_window_state_is_bounded_and_goes_away_when_the_lead_is_quiet():
    form, web = _form_and_web()
    state, _, _ = feed([(e, e.occurred_at_ms) for e in [form, *web]])
    assert [entry[0]["event_id"] for entry in state.window["tail"]] == ["form", "p1", "u", "p2"]
    state, _, _ = feed([(page(at=T0 + W + 250, eid="p3"), T0 + W + 250)], state)
    assert [entry[0]["event_id"] for entry in state.window["tail"]] == ["p2", "p3"], "older than W: settled"
    state, _ = sweep(state, T0 + 2 * W + 250)
    assert state.window is None


def test_redelivery_inside_the_window_changes_nothing(scoring_model, routing_priority):
    form, web = _form_and_web()
    state, _, _ = feed([(form, T0 + 30 * SECOND)])
    again, out = reorder.apply_event(
        state, form, scoring_model, now_ms=T0 + 40 * SECOND, window=WINDOW, priority=routing_priority
    )
    assert again is state and out == []


# --- configuration ---------------------------------------------------------------------------


def test_the_window_is_validated():
    assert ReorderWindow.from_seconds(60, 2) == ReorderWindow(60_000, 2_000)
    assert ReorderWindow.from_seconds(0, 0) == reorder.OFF
    for window_s, live_s in ((math.nan, 2), (-1, 0), (60, math.inf)):
        with pytest.raises(ValueError, match="reorder window"):
            ReorderWindow.from_seconds(window_s, live_s)
    with pytest.raises(ValueError, match="live_ms"):
        ReorderWindow(1000, 1000)
    assert load_settings().reorder_window_s == 180 and load_settings().live_event_bound_s == 2
    for overrides, named in (
        ({"reorder_window_s": "nan"}, "LEADFLOW_REORDER_WINDOW_S"),
        ({"reorder_window_s": -5}, "LEADFLOW_REORDER_WINDOW_S"),
        ({"live_event_bound_s": 200}, "LEADFLOW_LIVE_EVENT_BOUND_S"),
    ):
        with pytest.raises(SettingsError, match=named):
            load_settings(**overrides)
    assert load_settings(reorder_window_s=0, live_event_bound_s=5).reorder_window_s == 0, "0 = off"
