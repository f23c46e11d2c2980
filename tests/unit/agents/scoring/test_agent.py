"""scoring's agent.py on the fake pipeline (streams.testing): typed lead events in, LeadScored /
LeadQualified out before the state write, the decay review through the timer's command, the
visitor buffer, and the dead-letter policy of the consume path."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from agents.disposition.rules import DEFAULT_POLICY
from agents.domain import wire
from agents.domain.identity import lead_id_for_email, visitor_key
from agents.scoring import agent as scoring
from agents.scoring import reorder
from agents.scoring.state import LeadState
from agents.scoring.state_codec import decode_state
from streams.testing import ManualClock
from tests.unit.agents.scoring.helpers import CORP, T0, anonymous_page, crm, director_form, page

LEAD = lead_id_for_email(CORP)


@pytest.fixture
def pipeline(scoring_model, routing_priority, fake_pipeline):
    pipeline = fake_pipeline(clock=ManualClock(T0 / 1000))
    scoring.register(pipeline, model=scoring_model, dispositions=DEFAULT_POLICY, priority=routing_priority)
    return pipeline


def deliver(pipeline, event, **kwargs):
    key = event.lead_id.encode() if event.lead_id else visitor_key(event.visitor_id)
    topic = "lead_events" if event.lead_id else "visitor_events"
    return asyncio.run(pipeline.deliver(topic, wire.encode_lead_event(event), key=key, **kwargs))


def stored(pipeline, lead_id: str = LEAD) -> LeadState | None:
    raw = pipeline.tables["lead_to_state"].get(lead_id.encode())
    return decode_state(raw) if raw else None


def sample(pipeline, name: str, **labels) -> float:
    return pipeline.metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_hot_lead_is_scored_qualified_and_stored(scoring_model, pipeline):
    deliver(pipeline, page(at=T0))
    deliver(pipeline, director_form(at=T0))

    assert pipeline.subjects() == ["lead_scored", "lead_scored", "lead_qualified"]
    mql = pipeline.emitted[-1]
    assert mql.key == LEAD and mql.record["lead_id"] == LEAD and mql.record["mql_number"] == 1
    assert mql.record["score"] > scoring_model.thresholds.mql
    # The records went out on their topics (as the runtime sends them) ...
    assert [s.key for s in pipeline.channel("mqls").sent] == [LEAD.encode()]
    # ... and the state was written: the lead is an MQL with both events counted.
    state = stored(pipeline)
    assert state.stage == "mql" and state.event_count == 2
    assert sample(pipeline, "leadflow_leads_scored_total", stage="mql") == 1.0
    assert not pipeline.dead_letters


def test_a_redelivered_event_changes_nothing(pipeline):
    event = director_form(at=T0)
    deliver(pipeline, event)
    emitted, state = list(pipeline.emitted), pipeline.tables["lead_to_state"][LEAD.encode()]

    deliver(pipeline, event)

    assert pipeline.emitted == emitted and pipeline.tables["lead_to_state"][LEAD.encode()] == state
    assert sample(pipeline, "leadflow_duplicates_skipped_total", stage="score") == 1.0


def test_the_decay_review_runs_through_the_timers_command_on_the_leads_partition(scoring_model, pipeline):
    deliver(pipeline, page(at=T0), partition=3)
    deliver(pipeline, director_form(at=T0), partition=3)
    due = reorder.next_review_at_ms(stored(pipeline), scoring_model)
    assert due is not None and due > T0
    pipeline.partitions = {3}

    asyncio.run(pipeline.fire("request_due_reviews"))  # nothing has ended yet beyond the schedule
    before = len(pipeline.emitted)
    pipeline.clock.advance((due - T0) / 1000 + 2 * pipeline.settings.sweep_bucket_s)
    asyncio.run(pipeline.fire("request_due_reviews"))

    commands = [s for s in pipeline.channel("lead_events").sent if s.key == b"sweep"]
    assert commands and {s.partition for s in commands} == {3}
    assert {type(wire.reader(wire.ReviewDue)(s.value)) for s in commands} == {wire.ReviewDue}
    asyncio.run(pipeline.pump("lead_events"))
    reviewed = pipeline.emitted[before:]
    assert reviewed and reviewed[0].subject == "lead_scored" and reviewed[0].key == LEAD
    assert stored(pipeline).as_of_ms > T0  # the review moved the lead's clock: state written
    assert not pipeline.dead_letters


def test_anonymous_pages_wait_for_the_visitor_to_identify_then_reach_the_lead(pipeline):
    deliver(pipeline, anonymous_page("cookie-1", "pricing", at=T0))
    assert not pipeline.emitted and pipeline.tables["visitor_to_activity"]

    deliver(pipeline, director_form(at=T0, visitor_id="cookie-1"))  # scoring sends visitor_linked
    (linked,) = pipeline.channel("visitor_events").sent
    assert wire.reader(wire.VisitorLinked)(linked.value) == wire.VisitorLinked("cookie-1", LEAD)
    asyncio.run(pipeline.pump("visitor_events", "lead_events"))

    assert stored(pipeline).event_count == 2  # the buffered page now counts for the lead
    assert "lead_qualified" in pipeline.subjects()


def test_a_rejection_with_a_recyclable_reason_recycles_the_lead(pipeline):
    deliver(pipeline, page(at=T0))
    deliver(pipeline, director_form(at=T0))
    before = len(pipeline.emitted)

    deliver(pipeline, crm(status="rejected", disposition="no_response", at=T0))

    dispositioned = [e.record for e in pipeline.emitted[before:] if e.subject == "lead_dispositioned"]
    assert [(d["status"], d["disposition"], d["new_stage"]) for d in dispositioned] == [
        ("rejected", "no_response", "recycled")
    ]
    assert dispositioned[0]["checkpoints"]  # when the lead comes back for review
    assert stored(pipeline).stage == "recycled"
    assert (
        pipeline.metrics.registry.get_sample_value(
            "leadflow_dispositions_total", {"status": "rejected", "disposition": "no_response"}
        )
        == 1.0
    )


def test_an_unknown_internal_message_type_is_dead_lettered_as_unknown_kind(pipeline):
    asyncio.run(pipeline.deliver("lead_events", orjson.dumps({"type": "carrier_pigeon"}), key=b"x"))
    asyncio.run(pipeline.deliver("visitor_events", wire.encode(wire.ReviewDue(0, 1)), key=b"y"))

    assert [(d.reason_code, d.reason) for d in pipeline.dead_letters] == [
        ("unknown_kind", "internal message type 'carrier_pigeon'"),
        ("unknown_kind", "internal message type 'review_due'"),  # not a visitor message
    ]
    assert not pipeline.emitted


def test_a_processing_error_dead_letters_the_event_and_writes_no_state(pipeline, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(reorder, "apply_event", broken)
    with caplog.at_level(logging.ERROR):
        meta = deliver(pipeline, director_form(at=T0), partition=1)

    (dead,) = pipeline.dead_letters
    assert (dead.meta, dead.reason_code, dead.reason) == (meta, "processing_error", "ZeroDivisionError in scoring")
    assert f"scoring failed at {meta.topic}[1]@0" in caplog.text
    assert not pipeline.emitted and stored(pipeline) is None
