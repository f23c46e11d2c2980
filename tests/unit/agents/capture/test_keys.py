"""The publishers' key helper (agents.capture.keys.input_key): the key that puts an input on
its lead's partition, so capture hands it on in-process (issue 14)."""

from __future__ import annotations

import pytest

from agents.capture.keys import input_key
from agents.capture.rules import CaptureLimits, to_lead_event
from agents.domain.identity import lead_id_for_email, visitor_key
from leadflow.simulator import TrafficSimulator

START = 1_767_225_600_000


def test_a_form_is_keyed_by_the_lead_id_of_its_normalised_email():
    form = {"email": "  Dana@ACME.com ", "form_kind": "demo_request", "form_id": "f"}
    assert input_key("form_submitted", form) == lead_id_for_email("dana@acme.com").encode()
    keyed = input_key("form_submitted", form, lead_id_key=b"k" * 32)
    assert keyed == lead_id_for_email("dana@acme.com", b"k" * 32).encode() != input_key("form_submitted", form)


def test_web_activity_is_keyed_by_lead_when_identified_and_by_hashed_visitor_when_anonymous():
    page = {"visitor_id": "cookie-1", "activity_kind": "page_view", "page_type": "pricing"}
    assert input_key("web_activity", page) == visitor_key("cookie-1")
    assert input_key("web_activity", {**page, "email": "dana@acme.com"}) == lead_id_for_email("dana@acme.com").encode()


def test_a_crm_status_names_its_lead_and_a_record_capture_rejects_has_no_key():
    lead_id = lead_id_for_email("dana@acme.com")
    assert input_key("crm_status", {"lead_id": lead_id.upper(), "status": "working"}) == lead_id.encode()
    assert input_key("crm_status", {"status": "working"}) is None  # neither lead id nor email: dead-lettered
    with pytest.raises(ValueError, match="no capture rules for subject 'order_placed'"):
        input_key("order_placed", {})


def test_the_key_is_where_capture_sends_the_event_for_every_simulated_input(codec):
    """Whatever the encoding, the helper names the key capture re-keys the event by."""
    for event in TrafficSimulator(5, start_ms=START, inline_crm=True).take(1500):
        raw = event.encode(codec)
        record, encoding = codec.decode_input(event.subject, raw, max_bytes=256 * 1024)
        captured = to_lead_event(
            event.subject, record, encoding, raw=raw, received_at_ms=event.at_ms, now_ms=event.at_ms,
            limits=CaptureLimits(),
        )  # fmt: skip
        expected = captured.lead_id.encode() if captured.lead_id else visitor_key(captured.visitor_id)
        assert input_key(event.subject, record) == expected == event.key
