"""Input events as publishers send them (JSON bytes or framed Avro)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from tests.integration.kafkatools import codec


def now_ms() -> int:
    return int(time.time() * 1000)


def form_submit(email: str, **fields: Any) -> dict[str, Any]:
    record = {
        "event_id": "ev-" + uuid.uuid4().hex,
        "occurred_at": now_ms(),
        "form_id": "demo-form",
        "form_kind": "demo_request",
        "email": email,
        "first_name": "Dana",
        "last_name": "Reyes",
        "job_title": "Director of Operations",
        "company": "Acme Logistics",
        "company_size": 500,
        "industry": "logistics",
        "country": "US",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "brand",
        "hidden_lead_source": "web",
        "page_url": "https://example.com/demo",
        "consent_email": True,
        "seconds_to_fill": 25.0,
    }
    record.update(fields)
    return record


def web_activity(*, email: str | None = None, visitor_id: str | None = None, **fields: Any) -> dict[str, Any]:
    record = {
        "event_id": "ev-" + uuid.uuid4().hex,
        "occurred_at": now_ms(),
        "email": email,
        "visitor_id": visitor_id,
        "activity_kind": "page_view",
        "page_type": "pricing",
        "url": "https://example.com/pricing",
    }
    record.update(fields)
    return record


def as_json(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def as_avro(subject: str, record: dict[str, Any]) -> bytes:
    return codec().encode(subject, record)
