"""The one consume path (streams.consume) and the typed internal encoding (agents.domain.wire)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from agents.domain import wire
from agents.domain.events import LeadEvent
from streams.consume import Meta, WrongKind, make_consumer
from streams.topic_names import TopicNames

NAMES = TopicNames.for_prefix("t")
EVENT = LeadEvent("ev-1", "crm_status", "ld_1", None, 5, 6, "json", {"status": "working"})


def test_commands_keep_their_wire_bytes():
    # The bytes earlier versions wrote (orjson of {"type", **fields}): a rolling upgrade reads both ways.
    assert wire.encode(wire.ReviewDue(3, 17)) == b'{"type":"review_due","partition":3,"bucket":17}'
    assert wire.encode(wire.SlaSweep(1, 2, 4)) == b'{"type":"sla_sweep","partition":1,"first":2,"last":4}'
    assert (
        wire.encode(wire.VisitorLinked("v", "ld_1")) == b'{"type":"visitor_linked","visitor_id":"v","lead_id":"ld_1"}'
    )
    assert wire.encode(wire.RoutingRedrive(0)) == b'{"type":"routing_redrive","partition":0}'


def test_a_reader_types_what_it_accepts_skips_or_rejects_the_rest():
    read = wire.reader(LeadEvent, wire.ReviewDue)
    assert read(wire.encode_lead_event(EVENT)) == EVENT
    assert read(wire.encode(wire.ReviewDue(0, 9))) == wire.ReviewDue(0, 9)
    with pytest.raises(wire.UnknownMessage) as rejected:
        read(wire.encode(wire.SlaSweep(0, 1, 1)))
    assert (rejected.value.reason_code, rejected.value.detail) == ("unknown_kind", "internal message type 'sla_sweep'")

    crm_only = wire.reader(LeadEvent, kinds=("crm_status",), skip_others=True)
    assert crm_only(wire.encode_lead_event(EVENT)) == EVENT
    assert crm_only(wire.encode_lead_event(LeadEvent("ev-2", "form_submitted", "ld_1", None, 5, 6, "json"))) is None
    assert crm_only(wire.encode(wire.ReviewDue(0, 9))) is None and crm_only(None) is None


def run_consumer(decode, handle, value, **kwargs):
    consumer, fields = make_consumer(
        NAMES, "lead_events", name="a", capability="cap", handle=handle, decode=decode, **kwargs
    )
    dead = []

    async def dead_letter(meta, code, reason):
        dead.append((meta, code, reason))

    meta = Meta(NAMES.lead_events, 1, 7, b"k", value, 123)
    asyncio.run(consumer.process(meta, dead_letter))
    return fields, dead


def test_the_consume_path_hands_typed_values_and_applies_the_dead_letter_policy():
    seen = []

    async def handle(value, meta):
        seen.append((value, meta.offset))
        if value == "boom":
            raise ValueError("x")

    fields, dead = run_consumer(lambda raw: raw.decode(), handle, b"fine")
    assert fields == ["lead_events"] and seen == [("fine", 7)] and dead == []
    _, dead = run_consumer(lambda raw: None, handle, b"skipped")
    assert dead == [] and len(seen) == 1
    _, dead = run_consumer(lambda raw: raw.decode(), handle, b"boom")
    assert [d[1:] for d in dead] == [("processing_error", "ValueError in cap")]

    def wrong(raw):
        raise WrongKind("not mine")

    _, dead = run_consumer(wrong, handle, b"x")
    assert [d[1:] for d in dead] == [("unknown_kind", "not mine")]
    _, dead = run_consumer(wire.reader(wire.ReviewDue), handle, wire.encode(wire.SlaSweep(0, 1, 1)))
    assert [d[1] for d in dead] == ["processing_error"]  # not listed in rejects: a bug, not a rejection
    _, dead = run_consumer(
        wire.reader(wire.ReviewDue), handle, wire.encode(wire.SlaSweep(0, 1, 1)), rejects=(wire.UnknownMessage,)
    )
    assert [d[1:] for d in dead] == [("unknown_kind", "internal message type 'sla_sweep'")]


def test_a_failed_send_is_raised_not_dead_lettered():
    """The broker's fault, not the record's: the worker restarts and processes it again."""
    from aiokafka.errors import KafkaTimeoutError
    from faust.exceptions import ProducerSendError

    for error in (KafkaTimeoutError(), ProducerSendError("no leader")):

        async def handle(value, meta, error=error):
            raise error

        with pytest.raises(type(error)):
            run_consumer(lambda raw: raw.decode(), handle, b"fine")


def test_meta_of_a_faust_message_keeps_only_bytes_and_broker_time_in_ms():
    message = SimpleNamespace(
        topic="t", partition=2, offset=9, key=None, value="not bytes", timestamp=1.5, headers=[("h", b"1")]
    )
    assert Meta.of(message) == Meta("t", 2, 9, None, None, 1500, [("h", b"1")])
    assert Meta.of(SimpleNamespace(**{**vars(message), "timestamp": None})).timestamp_ms is None
