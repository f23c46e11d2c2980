"""Property-based tests: decay, order independence, replay, caps, review times."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agents.domain.events import PAGE_TYPES
from agents.scoring import evaluate, next_review_at_ms
from agents.scoring.decay import decay_factor, first_time_at_or_below
from agents.scoring.evaluation import time_score_falls_to
from tests.unit.agents.scoring.helpers import CORP, DAY, T0, activity, crm, director_form, form, page, run

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TITLES = [None, "CEO", "VP Marketing", "Head of Growth", "Marketing Manager", "Engineer", "Assistant to the CFO"]
INDUSTRIES = [None, "Software", "Retail", "Financial Services"]
COUNTRIES = [None, "US", "DE", "BR", "KP"]
SOURCES = [(None, None), ("google", "cpc"), ("linkedin", "paid_social"), ("newsletter", "email"), ("g2", None)]
POSITIVE_ACTIVITIES = ("email_open", "email_click", "webinar_attended", "content_download")
POSITIVE_PAGES = tuple(p for p in PAGE_TYPES if p != "careers")


@st.composite
def lead_events(draw, *, at=None, positive_only=False, with_profile=True):
    """One event of the lead CORP: a page view, an email/web activity, a form or a CRM status."""
    when = at if at is not None else T0 + draw(st.integers(0, 400)) * DAY // 4
    source, medium = draw(st.sampled_from(SOURCES))
    kinds = ["page", "activity", "form"] + ([] if positive_only else ["crm"])
    kind = draw(st.sampled_from(kinds))
    eid = f"e{draw(st.integers(0, 10**9))}"
    if kind == "page":
        pages = POSITIVE_PAGES if positive_only else PAGE_TYPES
        return page(CORP, draw(st.sampled_from(pages)), at=when, eid=eid, utm_source=source, utm_medium=medium)
    if kind == "activity":
        kinds = POSITIVE_ACTIVITIES if positive_only else (*POSITIVE_ACTIVITIES, "unsubscribe")
        return activity(
            CORP,
            draw(st.sampled_from(kinds)),
            at=when,
            eid=eid,
            content_title=draw(st.sampled_from([None, "Routing guide", "SLA playbook"])),
        )
    if kind == "form":
        profile = {}
        if with_profile:
            profile = {
                "job_title": draw(st.sampled_from(TITLES)),
                "industry": draw(st.sampled_from(INDUSTRIES)),
                "country": draw(st.sampled_from(COUNTRIES)),
                "company_size": draw(st.sampled_from([None, 20, 150, 5000])),
                "seconds_to_fill": draw(st.sampled_from([1.0, 30.0, None])),
            }
        return form(
            CORP,
            kind=draw(st.sampled_from(["demo_request", "newsletter", "content_download", "chat"])),
            at=when,
            eid=eid,
            utm_source=source,
            utm_medium=medium,
            hidden_lead_source=draw(st.sampled_from([None, "Web", "Partner"])),
            **profile,
        )
    status = draw(st.sampled_from(["first_touch", "working", "rejected"]))
    return crm(
        CORP,
        status,
        at=when,
        eid=eid,
        disposition=draw(st.sampled_from(["not_now", "not_icp"])) if status == "rejected" else None,
    )


def _unique(events):
    seen, out = set(), []
    for e in events:
        if e.event_id not in seen:
            seen.add(e.event_id)
            out.append(e)
    return out


def _comparable(state):
    """State as a dict, minus what legitimately depends on arrival order (a transient crossing
    between same-time events counts, and is sent, in one order only; the ledger follows)."""
    d = state.to_dict()
    d["recent_event_ids"] = sorted(d["recent_event_ids"])
    for key in ("mql_number", "qualified_at_ms", "mql_history", "mql_sent", "sent_priority"):
        d.pop(key)
    return d


def _event_time_part(state):
    """The state minus the delivery ledger and the stage label it decides (processing time)."""
    d = state.to_dict()
    for key in ("mql_sent", "sent_priority", "stage"):
        d.pop(key)
    return d


# --- decay ---------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    events=st.lists(lead_events(), min_size=1, max_size=15),
    offsets=st.lists(st.integers(0, 3000 * DAY), min_size=2, max_size=8),
)
def test_decay_is_monotonic_non_increasing_in_elapsed_time(scoring_model, events, offsets):
    state, _ = run(_unique(events))
    times = sorted(state.as_of_ms + o for o in offsets)
    per_signal = [
        {
            i.signal: abs(i.points)
            for i in evaluate(state, scoring_model, t).engagement_items
            if i.signal != "inactivity"
        }
        for t in times
    ]
    for earlier, later in zip(per_signal, per_signal[1:]):
        for signal, points in later.items():
            assert points <= earlier.get(signal, 0) + 1e-9


@PROPERTY_SETTINGS
@given(
    events=st.lists(lead_events(positive_only=True), min_size=1, max_size=15),
    offsets=st.lists(st.integers(0, 3000 * DAY), min_size=2, max_size=8),
)
def test_score_of_positive_engagement_never_rises_with_time(scoring_model, events, offsets):
    state, _ = run(_unique(events))
    scores = [evaluate(state, scoring_model, state.as_of_ms + o).score for o in sorted(offsets)]
    assert all(b <= a + 1e-9 for a, b in zip(scores, scores[1:]))


@given(a=st.floats(0, 1e12), b=st.floats(0, 1e12), half_life=st.floats(1, 1e11))
def test_decay_factor_is_monotonic_and_bounded(a, b, half_life):
    lo, hi = sorted((a, b))
    assert 0 <= decay_factor(hi, half_life) <= decay_factor(lo, half_life) <= 1


# --- order independence and replay ---------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    history=st.lists(lead_events(), max_size=8),
    batch=st.lists(lead_events(at=T0 + 200 * DAY), min_size=2, max_size=10),
    data=st.data(),
)
def test_same_time_events_are_order_independent(scoring_model, history, batch, data):
    history, batch = _unique(history), _unique(batch)
    batch = [e for e in batch if e.event_id not in {h.event_id for h in history}]
    shuffled = data.draw(st.permutations(batch))
    base, _ = run(history)
    one, _ = run(batch, base)
    other, _ = run(shuffled, base)
    assert _comparable(one) == _comparable(other)
    assert evaluate(one, scoring_model, one.as_of_ms).score == evaluate(other, scoring_model, other.as_of_ms).score


@PROPERTY_SETTINGS
@given(
    history=st.lists(lead_events(positive_only=True), max_size=6),
    batch=st.lists(lead_events(at=T0 + 200 * DAY, positive_only=True, with_profile=False), min_size=2, max_size=10),
    data=st.data(),
)
def test_same_time_positive_events_qualify_the_same_number_of_times_in_any_order(history, batch, data):
    history, batch = _unique(history), _unique(batch)
    batch = [e for e in batch if e.event_id not in {h.event_id for h in history}]
    base, _ = run(history)
    one, out_one = run(batch, base)
    other, out_other = run(data.draw(st.permutations(batch)), base)
    assert one.mql_number == other.mql_number
    # MQLs (not their priority upgrades: a demo request applied after the crossing raises the
    # priority it would have had if applied first) are the same, and so is the final priority.

    def ids(outs):
        return sorted(
            o.record["event_id"] for o in outs if o.subject == "lead_qualified" and o.record["upgrade_of"] is None
        )

    assert ids(out_one) == ids(out_other)
    assert (one.stage, one.mql_sent, one.sent_priority) == (other.stage, other.mql_sent, other.sent_priority)


@PROPERTY_SETTINGS
@given(events=st.lists(lead_events(), min_size=1, max_size=30))
def test_replay_is_idempotent(events):
    state, outputs = run(events)
    replayed, again = run(events, state)
    assert again == [] and replayed is state  # every event is a duplicate now
    # Rebuilt from the same events decades later: the same event-time state and lead_scored
    # ids, but every crossing is history by then - nothing is sent and nothing reads as an MQL.
    rebuilt, outputs2 = run(events, now_ms=T0 + 9999 * DAY)
    assert _event_time_part(rebuilt) == _event_time_part(state)
    assert [o.record.get("event_id") for o in outputs if o.subject != "lead_qualified"] == [
        o.record.get("event_id") for o in outputs2
    ]
    assert rebuilt.mql_sent == 0 and rebuilt.stage != "mql"
    assert state.event_count == len({(e.kind, e.event_id) for e in events})


# --- caps -----------------------------------------------------------------------------------

REPEATABLE = {
    "pricing_page_visit": lambda at, eid: page(CORP, "pricing", at=at, eid=eid),
    "blog_visit": lambda at, eid: page(CORP, "blog", at=at, eid=eid),
    "email_open": lambda at, eid: activity(CORP, "email_open", at=at, eid=eid),
    "email_click": lambda at, eid: activity(CORP, "email_click", at=at, eid=eid),
    "contact_request": lambda at, eid: form(CORP, kind="demo_request", at=at, eid=eid),
    "unsubscribe": lambda at, eid: activity(CORP, "unsubscribe", at=at, eid=eid),
    "careers_page_visit": lambda at, eid: page(CORP, "careers", at=at, eid=eid),
}


@settings(max_examples=40, deadline=None)
@given(
    signal=st.sampled_from(sorted(REPEATABLE)),
    repeats=st.integers(1, 300),
    gaps=st.lists(st.integers(-DAY, 3 * DAY), min_size=1, max_size=20),
)
def test_caps_hold_for_arbitrarily_many_repeats(scoring_model, signal, repeats, gaps):
    cap = scoring_model.signals[signal].cap
    state, at = None, T0
    for i in range(repeats):
        at += gaps[i % len(gaps)]  # negative gaps: late events
        state, _ = run([REPEATABLE[signal](at, f"r{i}")], state)
        points = {item.signal: item.points for item in evaluate(state, scoring_model, state.as_of_ms).engagement_items}
        assert abs(points.get(signal, 0)) <= abs(cap) + 1e-9
    max_positive = sum(r.cap for r in scoring_model.signals.values() if r.cap > 0)
    assert evaluate(state, scoring_model, state.as_of_ms).engagement_score <= max_positive


# --- review timing --------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(events=st.lists(lead_events(positive_only=True, with_profile=False), min_size=1, max_size=20))
def test_review_time_is_exactly_when_an_mql_falls_out(scoring_model, events):
    state, _ = run([director_form(at=T0 + 50 * DAY, eid="profile"), *_unique(events)])
    assume(state.mql)
    falls = time_score_falls_to(state, scoring_model, scoring_model.rearm_at)
    assert falls is not None and falls > state.as_of_ms
    assert evaluate(state, scoring_model, falls).score <= scoring_model.rearm_at
    assert evaluate(state, scoring_model, falls - 2).score > scoring_model.rearm_at
    assert next_review_at_ms(state, scoring_model) <= falls


TERMS = st.tuples(st.sampled_from([-15.0, -5.0, 5.0, 10.0, 20.0]), st.floats(0, 6), st.floats(0.5, 3))


@settings(max_examples=200, deadline=None)
@given(
    terms=st.lists(TERMS, max_size=5),
    constant=st.floats(-20, 40),
    level=st.floats(0, 60),
    step=st.one_of(st.none(), st.tuples(st.floats(1, 500), st.floats(-20, 0))),
)
def test_first_time_at_or_below_finds_the_earliest_crossing(terms, constant, level, step):
    half_life = 90.0
    steps = [step] if step else []

    def score(t):
        value = constant + sum(p * min(k, u * 0.5 ** (t / half_life)) for p, u, k in terms)
        return value + sum(d for ts, d in steps if t >= ts)

    found = first_time_at_or_below(
        t0=0.0, half_life_ms=half_life, constant=constant, terms=terms, steps=steps, level=level
    )
    grid = [i * 2.0 for i in range(1500)]  # 0 .. ~33 half-lives
    first_on_grid = next((t for t in grid if score(t) <= level - 1e-9), None)
    if found is None:
        assert first_on_grid is None
    else:
        assert score(found + 1e-6) <= level + 1e-6
        assert first_on_grid is None or found <= first_on_grid + 1e-6
        assert all(score(t) > level - 1e-9 for t in grid if t < found - 1e-6) or math.isclose(found, 0)
