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
