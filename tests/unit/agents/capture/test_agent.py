"""capture's agent.py on the fake pipeline (streams.testing): input records are validated,
re-keyed by lead or visitor and forwarded as typed lead events; bad input is dead-lettered
with its reason code, and a bug in capture with ``processing_error``."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from agents.capture import agent as capture
from agents.domain import wire
from agents.domain.events import LeadEvent
from agents.domain.identity import lead_id_for_email, visitor_key


@pytest.fixture
def pipeline(fake_pipeline):
    pipeline = fake_pipeline()
    capture.register(pipeline)
    return pipeline


def form_submit(at_ms: int, email: str = "dana@acme.com", **fields) -> bytes:
    record = {
        "event_id": "ev-1",
        "occurred_at": at_ms,
        "form_id": "demo-form",
        "form_kind": "demo_request",
        "email": email,
        "job_title": "Director of Operations",
        "company": "Acme",
        "company_size": 500,
        "utm_source": "google",
        "utm_medium": "cpc",
        "consent_email": True,
        "seconds_to_fill": 25.0,
    }
    record.update(fields)
    return orjson.dumps(record)


def dead_letter_count(pipeline, reason: str) -> float:
    return pipeline.metrics.registry.get_sample_value("leadflow_dead_letters_total", {"reason": reason}) or 0.0


def test_a_form_submit_becomes_a_typed_lead_event_keyed_by_lead(pipeline):
    asyncio.run(pipeline.deliver("form_submits", form_submit(pipeline.now_ms())))

    (sent,) = pipeline.channel("lead_events").sent
    lead_id = lead_id_for_email("dana@acme.com")
    assert sent.key == lead_id.encode()
    event = wire.reader(LeadEvent)(sent.value)
    assert (event.kind, event.lead_id, event.event_id, event.source) == ("form_submitted", lead_id, "ev-1", "json")
    assert not pipeline.dead_letters and not pipeline.channel("visitor_events").sent
    assert (
        pipeline.metrics.registry.get_sample_value(
            "leadflow_events_in_total", {"kind": "form_submitted", "encoding": "json"}
        )
        == 1.0
    )


def test_anonymous_web_activity_goes_to_the_visitor_topic(pipeline):
    record = {
        "event_id": "ev-2",
        "occurred_at": pipeline.now_ms(),
        "visitor_id": "cookie-9",
        "activity_kind": "page_view",
        "page_type": "pricing",
        "url": "https://example.com/pricing",
    }
    asyncio.run(pipeline.deliver("web_activity", orjson.dumps(record)))

    (sent,) = pipeline.channel("visitor_events").sent
    assert sent.key == visitor_key("cookie-9")
    assert wire.reader(LeadEvent)(sent.value).visitor_id == "cookie-9"
    assert not pipeline.channel("lead_events").sent


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"not a record", "unknown_encoding"),  # the codec's DecodeError
        (b"\x00\x00\x00\x03\xe7 framed", "unknown_schema_id"),
        (None, "unknown_encoding"),  # a tombstone on an input topic
    ],
)
def test_undecodable_input_is_dead_lettered_with_the_codecs_reason(pipeline, raw, reason):
    meta = asyncio.run(pipeline.deliver("form_submits", raw, key=b"k", partition=2))

    (dead,) = pipeline.dead_letters
    assert (dead.meta, dead.reason_code) == (meta, reason)
    assert dead.meta.topic == pipeline.topic_names.form_submits and dead.meta.partition == 2
    assert not pipeline.channel("lead_events").sent
    assert dead_letter_count(pipeline, reason) == 1.0


def test_a_record_breaking_a_capture_rule_is_dead_lettered_with_the_rules_reason(pipeline):
    asyncio.run(pipeline.deliver("form_submits", form_submit(pipeline.now_ms(), email="not-an-email")))

    (dead,) = pipeline.dead_letters
    assert dead.reason_code == "invalid_email" and "email" in dead.reason
    assert "not-an-email" not in dead.reason  # the reason never repeats the value
    assert not pipeline.channel("lead_events").sent


def test_a_bug_in_capture_is_logged_and_dead_lettered_as_a_processing_error(pipeline, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(capture, "to_lead_event", broken)
    with caplog.at_level(logging.ERROR):
        asyncio.run(pipeline.deliver("crm_status", b"{}", partition=1))
        asyncio.run(pipeline.deliver("form_submits", form_submit(pipeline.now_ms()), partition=1))

    assert [(d.reason_code, d.reason) for d in pipeline.dead_letters] == [
        ("missing_field", pipeline.dead_letters[0].reason),  # decoding fails before the rules run
        ("processing_error", "KeyError in capture"),
    ]
    assert f"capture failed at {pipeline.topic_names.form_submits}[1]@0" in caplog.text
    assert dead_letter_count(pipeline, "processing_error") == 1.0


def test_an_input_on_its_leads_partition_is_handed_to_the_lead_event_consumers_without_a_round_trip(fake_pipeline):
    """Issue 14: an input keyed by lead id (so on the partition of the lead) goes straight to
    the lead events' consumers; any other partition still goes through the topic."""
    from streams.app import partition_for

    pipeline = fake_pipeline(hand_offs=True, partitions=tuple(range(4)))
    capture.register(pipeline)
    seen: list[LeadEvent] = []

    async def record(event, meta):
        seen.append(event)

    pipeline.consume("lead_events", decode=wire.reader(LeadEvent), name="downstream", capability="test", handle=record)
    lead_id = lead_id_for_email("dana@acme.com")
    own = partition_for(lead_id.encode(), pipeline.settings.topic_partitions)

    asyncio.run(pipeline.deliver("form_submits", form_submit(pipeline.now_ms()), key=lead_id.encode(), partition=own))
    assert not pipeline.channel("lead_events").sent
    assert [(e.lead_id, e.event_id) for e in seen] == [(lead_id, "ev-1")]
    assert pipeline.handed_off == [("lead_events", lead_id.encode())]

    other = (own + 1) % pipeline.settings.topic_partitions
    asyncio.run(pipeline.deliver("form_submits", form_submit(pipeline.now_ms(), event_id="ev-2"), partition=other))
    (sent,) = pipeline.channel("lead_events").sent
    assert sent.key == lead_id.encode() and len(seen) == 1


def test_anonymous_activity_on_its_visitors_partition_is_handed_to_the_visitor_buffer(fake_pipeline):
    from streams.app import partition_for

    pipeline = fake_pipeline(hand_offs=True, partitions=tuple(range(4)))
    capture.register(pipeline)
    seen: list[str] = []

    async def record(event, meta):
        seen.append(event.visitor_id)

    pipeline.consume("visitor_events", decode=wire.reader(LeadEvent), name="buffer", capability="test", handle=record)
    page = orjson.dumps({"event_id": "p-1", "occurred_at": pipeline.now_ms(), "visitor_id": "cookie-9",
                         "activity_kind": "page_view", "page_type": "pricing"})  # fmt: skip
    key = visitor_key("cookie-9")
    asyncio.run(pipeline.deliver("web_activity", page, key=key, partition=partition_for(key, 4)))
    assert seen == ["cookie-9"] and not pipeline.channel("visitor_events").sent
