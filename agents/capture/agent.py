"""capture: decode and validate publishers' input, re-key it by lead (or visitor), and
dead-letter whatever is wrong. Thin Faust wiring around ``agents.capture.rules``."""

from __future__ import annotations

import hashlib
import logging

from agents.capture.rules import CaptureLimits, Rejected, to_lead_event
from agents.domain.events import backfill_requested
from agents.domain import wire
from streams.app import Pipeline
from streams.codec.exceptions import DecodeError

log = logging.getLogger(__name__)


def register(pipeline: Pipeline) -> None:
    names = pipeline.topic_names
    subject_for_topic = {
        names.form_submits: "form_submitted",
        names.web_activity: "web_activity",
        names.crm_status: "crm_status",
    }
    limits = CaptureLimits.from_settings(pipeline.settings)
    max_bytes = pipeline.settings.max_message_bytes
    codec, metrics = pipeline.codec, pipeline.metrics
    inputs = pipeline.app.topic(
        *names.inputs(),
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
    )
    lead_events, visitor_events = pipeline.channel("lead_events"), pipeline.channel("visitor_events")

    # concurrency=1: faust may commit past an in-flight message with concurrency > 1 (#606).
    @pipeline.app.agent(inputs, name="capture_input_events", concurrency=1)
    async def capture_input_events(stream):
        async for event in stream.events():
            message = event.message
            raw = message.value if isinstance(message.value, bytes) else b""
            subject = subject_for_topic[message.topic]
            try:
                record, encoding = codec.decode_input(subject, raw, max_bytes=max_bytes)
                lead_event = to_lead_event(
                    subject, record, encoding, raw=raw,
                    received_at_ms=int((message.timestamp or 0) * 1000) or pipeline.now_ms(),
                    now_ms=pipeline.now_ms(), limits=limits,
                    backfill=backfill_requested(message.headers),
                )
            except (DecodeError, Rejected) as exc:
                await pipeline.dead_letter(event, exc.reason_code, exc.detail)
                continue
            except Exception as exc:  # a bug must not stop the partition: park the record
                log.exception("capture failed on %s[%d]@%d", message.topic, message.partition, message.offset)
                await pipeline.dead_letter(event, "processing_error", f"{type(exc).__name__} in capture")
                continue
            metrics.events_in.labels(kind=lead_event.kind, encoding=encoding).inc()
            payload = wire.encode_lead_event(lead_event)
            if lead_event.lead_id is not None:
                await lead_events.send(key=lead_event.lead_id.encode(), value=payload)
            else:
                await visitor_events.send(key=visitor_key(lead_event.visitor_id), value=payload)


def visitor_key(visitor_id: str) -> bytes:
    # Visitor ids come from cookies; hashing keeps key sizes bounded and uniform.
    return b"vi_" + hashlib.blake2b(visitor_id.encode(), digest_size=10).hexdigest().encode()
