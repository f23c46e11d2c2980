"""Shadow model: the pure comparison (gained / lost / agree, band, source, id) and its wiring in
scoring's agent on the fake pipeline (a separate table, nothing live emitted, erased with the
lead, nothing at all when the setting is unset)."""

from __future__ import annotations

import asyncio

import pytest

from agents.disposition.rules import DEFAULT_POLICY
from agents.domain import wire
from agents.domain.identity import lead_id_for_email
from agents.scoring import agent as scoring
from agents.scoring.outputs import QualifiedOutput, ScoredOutput
from agents.scoring.shadow import DIRECTIONS, Scored, compare, shadow_decision_id
from agents.scoring.state import LeadState
from agents.scoring.state_codec import decode_state
from streams.metric_labels import score_band
from streams.metric_schema import SHADOW_DIRECTIONS
from streams.testing import ManualClock
from tests.unit.agents.scoring.helpers import CORP, T0, crm, director_form, model_with, page

LEAD = lead_id_for_email(CORP)
SHADOW_TABLE = "lead_to_shadow_state"

# --- the pure comparison -----------------------------------------------------------------------


def scored(score: float, *, crossed: bool = False, open_mql: bool = False, version: str = "live", number: int = 1):
    state = LeadState(lead_id=LEAD, mql=open_mql or crossed, mql_number=number if (crossed or open_mql) else 0)
    outputs: list = [ScoredOutput(LEAD, {"score": score})]
    if crossed:
        record = {"score": score, "mql_number": number, "occurred_at": T0, "first_touch_source": "paid_search"}
        outputs.append(QualifiedOutput(LEAD, {**record, "upgrade_of": None}))
    return Scored(state, outputs, version)


def decide(live: Scored, candidate: Scored):
    return compare(live, candidate, cause_event_id="ev-1", now_ms=T0 + 5, band_of=score_band, unknown_source="unknown")


def test_the_candidate_crossing_alone_is_a_would_be_mql_gained():
    decision = decide(scored(42.0, version="v1"), scored(63.5, crossed=True, version="v2"))
    assert decision is not None and decision.subject == "shadow_decision" and decision.key == LEAD
    assert decision.record == {
        "event_id": shadow_decision_id(LEAD, "gained", 1),
        "lead_id": LEAD,
        "direction": "gained",
        "cause_event_id": "ev-1",
        "occurred_at": T0,
        "decided_at": T0 + 5,
        "live_score": 42.0,
        "live_model_version": "v1",
        "candidate_score": 63.5,
        "candidate_model_version": "v2",
        "first_touch_source": "paid_search",
        "score_band": "60-70",  # the crossing score's band
    }


def test_the_live_crossing_alone_is_a_would_be_mql_lost_banded_by_the_live_score():
    decision = decide(scored(91.0, crossed=True), scored(91.0, version="v2"))
    assert decision is not None
    assert (decision.direction, decision.band, decision.source) == ("lost", "90+", "paid_search")
    assert decision.record["live_score"] == decision.record["candidate_score"] == 91.0


@pytest.mark.parametrize(
    ("live", "candidate"),
    [
        pytest.param(scored(70, crossed=True), scored(70, crossed=True), id="both cross"),
        pytest.param(scored(30), scored(30), id="neither crosses"),
        pytest.param(scored(70, open_mql=True), scored(70, crossed=True), id="live already holds an MQL"),
        pytest.param(scored(70, crossed=True), scored(70, open_mql=True), id="candidate already holds one"),
    ],
)
def test_the_two_agree(live, candidate):
    assert decide(live, candidate) is None


def test_a_priority_upgrade_is_not_a_crossing():
    upgrade = scored(85, open_mql=True)
    upgrade = Scored(
        upgrade.state, [QualifiedOutput(LEAD, {"score": 85, "mql_number": 1, "upgrade_of": "mql_x"})], "live"
    )
    assert upgrade.crossing is None and decide(upgrade, scored(40)) is None


def test_the_id_names_the_crossing_not_the_event():
    assert decide(scored(40), scored(60, crossed=True)).record["event_id"] == shadow_decision_id(LEAD, "gained", 1)
    assert shadow_decision_id(LEAD, "gained", 1) != shadow_decision_id(LEAD, "lost", 1)
    assert shadow_decision_id(LEAD, "gained", 1) != shadow_decision_id(LEAD, "gained", 2)


def test_the_metric_directions_are_the_rules_directions():
    assert SHADOW_DIRECTIONS == DIRECTIONS


# --- the agent -----------------------------------------------------------------------------


def make_pipeline(fake_pipeline, model, priority, shadow=None):
    pipeline = fake_pipeline(clock=ManualClock(T0 / 1000))
    scoring.register(pipeline, model=model, dispositions=DEFAULT_POLICY, priority=priority, shadow=shadow)
    return pipeline


def deliver(pipeline, event):
    asyncio.run(pipeline.deliver("lead_events", wire.encode_lead_event(event), key=event.lead_id.encode()))


def sample(pipeline, **labels) -> float:
    return pipeline.metrics.registry.get_sample_value("leadflow_shadow_decisions_total", labels) or 0.0


@pytest.fixture
def strict_candidate():
    """A candidate that asks for more: a director's demo request no longer qualifies."""
    return model_with(version="candidate-strict", thresholds__mql=95, thresholds__fast_track=98)


@pytest.fixture
def lenient_candidate():
    """A candidate that asks for less: a director's newsletter signup (20 points) qualifies."""
    return model_with(version="candidate-lenient", thresholds__mql=5, thresholds__mql_rearm_at=5)


def test_a_live_mql_the_candidate_would_not_make_is_lost_and_the_live_outputs_are_unchanged(
    fake_pipeline, scoring_model, routing_priority, strict_candidate
):
    plain = make_pipeline(fake_pipeline, scoring_model, routing_priority)
    shadowed = make_pipeline(fake_pipeline, scoring_model, routing_priority, shadow=strict_candidate)
    for pipeline in (plain, shadowed):
        deliver(pipeline, page(at=T0, eid="p1"))
        deliver(pipeline, director_form(at=T0, eid="f1"))

    live = [e for e in shadowed.emitted if e.subject != "shadow_decision"]
    assert live == plain.emitted and "lead_qualified" in plain.subjects()
    [decision] = [e for e in shadowed.emitted if e.subject == "shadow_decision"]
    mql = next(e.record for e in live if e.subject == "lead_qualified")
    assert decision.record["direction"] == "lost" and decision.record["live_score"] == mql["score"]
    assert decision.record["candidate_model_version"] == "candidate-strict"
    assert [s.key for s in shadowed.channel("shadow_decisions").sent] == [LEAD.encode()]
    # The candidate's state is its own: stored apart, never an MQL.
    shadow_state = decode_state(shadowed.tables[SHADOW_TABLE][LEAD.encode()])
    assert shadow_state.model_version == "candidate-strict" and not shadow_state.mql and shadow_state.event_count == 2
    labels = {"source": decision.record["first_touch_source"], "score_band": decision.record["score_band"]}
    assert sample(shadowed, direction="lost", **labels) == 1.0
    assert sample(shadowed, direction="gained", **labels) == 0.0


def test_a_candidate_mql_is_gained_without_any_mql_sent(
    fake_pipeline, scoring_model, routing_priority, lenient_candidate
):
    pipeline = make_pipeline(fake_pipeline, scoring_model, routing_priority, shadow=lenient_candidate)
    deliver(pipeline, director_form(kind="newsletter_signup", at=T0, eid="n1"))

    assert pipeline.subjects() == ["lead_scored", "shadow_decision"]  # no lead_qualified
    assert pipeline.emitted[-1].record["direction"] == "gained"
    assert not pipeline.channel("mqls").sent


def test_a_redelivered_event_yields_no_second_decision(
    fake_pipeline, scoring_model, routing_priority, strict_candidate
):
    pipeline = make_pipeline(fake_pipeline, scoring_model, routing_priority, shadow=strict_candidate)
    form = director_form(at=T0, eid="f1")
    deliver(pipeline, page(at=T0, eid="p1"))
    deliver(pipeline, form)
    # A crash after the shadow state write but before the live one: the live path runs again.
    del pipeline.tables["lead_to_state"][LEAD.encode()]
    deliver(pipeline, page(at=T0, eid="p1"))
    deliver(pipeline, form)

    decisions = [e.record["event_id"] for e in pipeline.emitted if e.subject == "shadow_decision"]
    assert decisions == [shadow_decision_id(LEAD, "lost", 1)]


def test_setting_unset_touches_no_shadow_table(fake_pipeline, scoring_model, routing_priority):
    pipeline = make_pipeline(fake_pipeline, scoring_model, routing_priority)
    deliver(pipeline, page(at=T0, eid="p1"))
    deliver(pipeline, director_form(at=T0, eid="f1"))

    assert SHADOW_TABLE not in pipeline.tables
    assert "shadow_decision" not in pipeline.subjects()
    assert not pipeline.channel("shadow_decisions").sent


def test_the_shadow_state_is_erased_with_the_lead(fake_pipeline, scoring_model, routing_priority, strict_candidate):
    pipeline = make_pipeline(fake_pipeline, scoring_model, routing_priority, shadow=strict_candidate)
    deliver(pipeline, director_form(at=T0, eid="f1"))
    assert LEAD.encode() in pipeline.tables[SHADOW_TABLE]

    deliver(pipeline, crm(CORP, "erasure_requested", at=T0 + 1, eid="erase-1"))

    assert LEAD.encode() not in pipeline.tables[SHADOW_TABLE]
    assert LEAD.encode() not in pipeline.tables["lead_to_state"]
    assert "lead_erased" in pipeline.subjects()
