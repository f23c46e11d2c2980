"""Canonical, validated lead events: what the capture stage hands to every other agent.

Plain Python (no framework imports). Publishers' Avro/JSON input is decoded and validated by
``agents.capture.rules`` into a ``LeadEvent``; the Faust wiring moves it between topics as
orjson bytes (an internal contract, see README "Topics").

Times are epoch milliseconds (UTC) everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Kinds of canonical event.
FORM_SUBMITTED = "form_submitted"
WEB_ACTIVITY = "web_activity"
CRM_STATUS = "crm_status"
EVENT_KINDS = (FORM_SUBMITTED, WEB_ACTIVITY, CRM_STATUS)

# Vocabulary from docs/domain.md ("Input events").
FORM_KINDS = (
    "demo_request",
    "contact_sales",
    "pricing_form",
    "chat",
    "content_download",
    "webinar_registration",
    "event_badge_scan",
    "newsletter",
)
ACTIVITY_KINDS = (
    "page_view",
    "email_open",
    "email_click",
    "webinar_attended",
    "content_download",
    "unsubscribe",
)
PAGE_TYPES = (
    "pricing",
    "product",
    "demo",
    "roi_calculator",
    "docs",
    "blog",
    "careers",
    "other",
)
CRM_STATUSES = (
    "first_touch",
    "working",
    "meeting_booked",
    "accepted",
    "sql",
    "rejected",
    "converted",
    "closed_won",
    "closed_lost",
    # Not sales activity: the data subject asked to be erased (GDPR Art. 17 / CCPA); every
    # agent deletes what it holds on the lead (agents.domain.erasure, docs/privacy.md).
    "erasure_requested",
)
TOUCH_CHANNELS = ("call", "email", "meeting")
DISPOSITIONS = (
    "not_icp",
    "not_now",
    "already_customer",
    "competitor",
    "bad_data",
    "no_response",
    "bot_or_test",
)
STAGES = ("new", "nurture", "mql", "sal", "sql", "opportunity", "recycled", "disqualified")

# Backfill mode: an input record carrying this Kafka header with a true value ("1", "true",
# "yes", any case) is history being rebuilt. Capture marks its LeadEvent ``backfill=True``;
# scoring applies it to the lead's state like any event but sends no MQL for it (and so no
# assignment or SLA clock follows). ``leadflow replay --backfill`` and ``leadflow publish
# --backfill`` set the header; any publisher can (kcat -H leadflow-backfill=1).
BACKFILL_HEADER = "leadflow-backfill"
_TRUE_HEADER_VALUES = frozenset({"1", "true", "yes"})


def backfill_requested(headers: Any) -> bool:
    """True when Kafka record ``headers`` (pairs of (str, bytes), or a mapping) carry
    ``leadflow-backfill`` with a true value. Absent or any other value: a live event."""
    if not headers:
        return False
    pairs = headers.items() if hasattr(headers, "items") else headers
    for key, value in pairs:
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        if name.lower() != BACKFILL_HEADER:
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value or "")
        return text.strip().lower() in _TRUE_HEADER_VALUES
    return False


@dataclass(frozen=True, slots=True)
class LeadEvent:
    """One validated input event.

    ``lead_id`` is None only for anonymous web activity (then ``visitor_id`` is set).
    ``data`` holds the kind-specific normalized fields documented in README ("Input events"):

    form_submitted: form_id, form_kind, email, first_name, last_name, job_title, company,
        company_size, industry, country, utm_source, utm_medium, utm_campaign,
        hidden_lead_source, page_url, consent_email, consent_tracking, honeypot_filled,
        seconds_to_fill, visitor_id
    web_activity: activity_kind, page_type, url, content_title, utm_source, utm_medium,
        utm_campaign, email (optional)
    crm_status: rep_id, status, touch_channel, disposition, disposition_invalid, account_id,
        account_domain
    """

    event_id: str
    kind: str
    lead_id: str | None
    visitor_id: str | None
    occurred_at_ms: int
    received_at_ms: int  # broker timestamp of the input record; drives latency metrics
    source: str  # "avro" | "json": how the publisher encoded it
    data: dict[str, Any] = field(default_factory=dict)
    backfill: bool = False  # history being rebuilt (BACKFILL_HEADER): state only, never an MQL

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict (a recursive deepcopy, ~50x slower on the hot path). A copy of
        # `data` one level deep is a full copy (capture puts only scalars in it), so a caller may
        # change or keep the dict (the visitor buffer keeps it) without changing the event.
        out = {
            "event_id": self.event_id,
            "kind": self.kind,
            "lead_id": self.lead_id,
            "visitor_id": self.visitor_id,
            "occurred_at_ms": self.occurred_at_ms,
            "received_at_ms": self.received_at_ms,
            "source": self.source,
            "data": dict(self.data),
        }
        if self.backfill:  # only when set: live events keep their wire bytes
            out["backfill"] = True
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LeadEvent:
        return cls(
            event_id=raw["event_id"],
            kind=raw["kind"],
            lead_id=raw.get("lead_id"),
            visitor_id=raw.get("visitor_id"),
            occurred_at_ms=int(raw["occurred_at_ms"]),
            received_at_ms=int(raw["received_at_ms"]),
            source=raw.get("source", "json"),
            data=dict(raw.get("data") or {}),
            backfill=bool(raw.get("backfill", False)),
        )
