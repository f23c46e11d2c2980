"""Internal topic encoding: canonical events and commands between leadflow's own agents.

orjson, not Avro: these topics are private to leadflow (no external contract), and orjson
is the cheapest codec on the hot path. Every message is an object with a "type".
"""

from __future__ import annotations

from typing import Any

import orjson

from agents.domain.events import LeadEvent

LEAD_EVENT = "lead_event"        # a validated input event (agents.domain.events.LeadEvent)
VISITOR_LINKED = "visitor_linked"  # an anonymous visitor identified as a lead
REVIEW_DUE = "review_due"        # sweep command: review the leads due in one time bucket
VISITOR_ERASED = "visitor_erased"  # the lead a visitor identified as was erased: drop its buffer


def encode_lead_event(event: LeadEvent) -> bytes:
    return orjson.dumps({"type": LEAD_EVENT, "event": event.to_dict()})


def encode_command(kind: str, **fields: Any) -> bytes:
    return orjson.dumps({"type": kind, **fields})


def decode(raw: bytes) -> tuple[str, Any]:
    """(type, payload): payload is a LeadEvent for lead events, else the command dict."""
    message = orjson.loads(raw)
    kind = message["type"]
    if kind == LEAD_EVENT:
        return kind, LeadEvent.from_dict(message["event"])
    return kind, message
