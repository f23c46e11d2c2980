"""capture: decode and validate publishers' input, re-key it by lead (or visitor), and
dead-letter whatever is wrong. Thin Faust wiring around ``agents.capture.rules``.

An input already on its lead's (or visitor's) partition - keyed as ``agents.capture.keys``
says - is handed to the next consumers in-process (``Pipeline.hand_off``); any other goes
through the lead events (or visitor events) topic."""

from __future__ import annotations

from agents.capture.exceptions import Rejected
from agents.capture.rules import CaptureLimits, to_lead_event
from agents.domain import wire
from agents.domain.events import backfill_requested
from agents.domain.identity import visitor_key
from streams.app import Pipeline
from streams.consume import Meta

# Which input record each input topic carries (TopicNames field -> Avro subject).
SUBJECTS = {"form_submits": "form_submitted", "web_activity": "web_activity", "crm_status": "crm_status"}


def register(pipeline: Pipeline) -> None:
    limits = CaptureLimits.from_settings(pipeline.settings)
    max_bytes = pipeline.settings.max_message_bytes
    codec, metrics = pipeline.codec, pipeline.metrics
    channels = {target: pipeline.channel(target) for target in ("lead_events", "visitor_events")}

    def decoder(subject: str):
        def decode(raw: bytes | None):
            raw = raw or b""
            record, encoding = codec.decode_input(subject, raw, max_bytes=max_bytes)
            return subject, record, encoding, raw

        return decode

    async def capture(decoded, meta: Meta) -> None:
        subject, record, encoding, raw = decoded
        lead_event = to_lead_event(  # Rejected: dead-lettered with its reason by the consume path
            subject,
            record,
            encoding,
            raw=raw,
            received_at_ms=meta.timestamp_ms or pipeline.now_ms(),
            now_ms=pipeline.now_ms(),
            limits=limits,
            backfill=backfill_requested(meta.headers),
        )
        metrics.events_in.labels(kind=lead_event.kind, encoding=encoding).inc()
        payload = wire.encode_lead_event(lead_event)
        if lead_event.lead_id is not None:
            target, key = "lead_events", lead_event.lead_id.encode()
        else:
            assert lead_event.visitor_id is not None  # to_lead_event: no lead id means a visitor id
            target, key = "visitor_events", visitor_key(lead_event.visitor_id)
        # Keyed as docs/contracts.md (Keys) asks: handled here, no round trip through the topic.
        if not await pipeline.hand_off(target, key, payload, meta):
            await channels[target].send(key=key, value=payload)

    pipeline.consume(
        {field: decoder(subject) for field, subject in SUBJECTS.items()},
        name="capture_input_events",
        capability="capture",
        handle=capture,
        rejects=(Rejected,),
        hands_off_to=tuple(channels),
    )
