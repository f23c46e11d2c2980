"""Anonymous activity is kept and merged into the lead, with its original times."""

from __future__ import annotations

import pytest

from agents.domain.identity import lead_id_for_email
from agents.scoring import ScoringError, VisitorState, apply_visitor_event, link_visitor
from tests.repo_config import default_scoring_model
from tests.unit.agents.scoring.helpers import CORP, DAY, T0, anonymous_page, breakdown, director_form, of, run

LEAD = lead_id_for_email(CORP)


def _buffer(events, vstate=None, **kw):
    for event in events:
        vstate, forwards = apply_visitor_event(vstate, event, default_scoring_model(), **kw)
        assert forwards == []
    return vstate


def test_pages_before_identification_count_with_their_original_times():
    vstate = _buffer(
        [
            anonymous_page("v-1", "pricing", at=T0 - 10 * DAY, eid="anon-1", utm_source="google", utm_medium="cpc"),
            anonymous_page("v-1", "docs", at=T0 - 9 * DAY, eid="anon-2"),
        ]
    )
    state, outputs = run([director_form(at=T0, visitor_id="v-1")])
    (link,) = of(outputs, "visitor_linked")
    vstate, forwards = link_visitor(vstate, link.lead_id, visitor_id=link.visitor_id)

    assert [(e.event_id, e.occurred_at_ms, e.lead_id) for e in forwards] == [
        ("anon-1", T0 - 10 * DAY, LEAD),
        ("anon-2", T0 - 9 * DAY, LEAD),
    ]
    state, outputs = run(forwards, state, now_ms=T0)
    last = outputs[-1].record
    assert last["cause_kind"] == "merge"
    assert breakdown(last)["pricing_page_visit"] == pytest.approx(15 * 0.5 ** (10 / 90), abs=0.01)
    assert breakdown(last)["docs_page_visit"] == pytest.approx(5 * 0.5 ** (9 / 90), abs=0.01)
    assert last["first_touch_source"] == "paid_search"  # the anonymous visit was the first touch
    assert len(of(outputs, "lead_qualified")) == 1  # 20 fit + 20 demo + ~14 + ~4.7 > 50
    assert state.event_count == 3


def test_after_linking_activity_is_forwarded_directly_and_relinking_is_idempotent(scoring_model):
    vstate, forwards = link_visitor(None, LEAD, visitor_id="v-2")
    assert forwards == [] and vstate.lead_id == LEAD
    again, forwards = link_visitor(vstate, LEAD)
    assert again is vstate and forwards == []
    vstate, forwards = apply_visitor_event(vstate, anonymous_page("v-2", "pricing", at=T0), scoring_model)
    (forward,) = forwards
    assert forward.lead_id == LEAD and "merged_from_visitor" not in forward.data


def test_buffer_is_bounded_and_keeps_the_first_touch():
    events = [
        anonymous_page("v-3", "pricing", at=T0 + i, eid=f"a{i}", utm_source="google" if i == 0 else None)
        for i in range(10)
    ]
    vstate = _buffer(events, max_buffered=4)
    assert [e["event_id"] for e in vstate.buffered] == ["a0", "a7", "a8", "a9"]
    assert vstate.dropped == 6


def test_duplicates_and_worthless_pages_are_not_buffered(scoring_model):
    vstate = _buffer([anonymous_page("v-4", "pricing", at=T0, eid="x")])
    same, _ = apply_visitor_event(vstate, anonymous_page("v-4", "pricing", at=T0, eid="x"), scoring_model)
    assert same is vstate
    other, _ = apply_visitor_event(vstate, anonymous_page("v-4", "other", at=T0, eid="y"), scoring_model)
    assert other is vstate


def test_visitor_state_round_trips_and_input_is_not_mutated(scoring_model):
    vstate = _buffer([anonymous_page("v-5", "pricing", at=T0, eid="p")])
    assert VisitorState.from_dict(vstate.to_dict()) == vstate
    snapshot = vstate.to_dict()
    link_visitor(vstate, LEAD)
    apply_visitor_event(vstate, anonymous_page("v-5", "demo", at=T0, eid="q"), scoring_model)
    assert vstate.to_dict() == snapshot


def test_identified_events_are_refused(scoring_model):
    from tests.unit.agents.scoring.helpers import page

    with pytest.raises(ScoringError):
        apply_visitor_event(None, page(at=T0), scoring_model)
    with pytest.raises(ScoringError):
        link_visitor(None, LEAD)
