"""The Kafka key a publisher gives an input record, so capture can skip a hop.

Capture re-keys every input by lead (or, for anonymous web activity, by visitor). A record a
publisher already keyed that way, and partitioned with Kafka's default (murmur2) partitioner,
is on its lead's partition: capture hands it to scoring, SLA and disposition in-process
instead of a round trip through the lead events topic (``streams.app.Pipeline.hand_off``).
Any other key still works, one hop slower. docs/contracts.md, "Keys", shows how to publish.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.capture.exceptions import Rejected
from agents.capture.rules import CaptureLimits, identify
from agents.domain.identity import visitor_key

__all__ = ["input_key"]


def input_key(subject: str, record: Mapping[str, Any], *, lead_id_key: bytes | None = None) -> bytes | None:
    """The key for an input record of ``subject`` (``form_submitted``, ``web_activity`` or
    ``crm_status``; the record as a dict, whether it will be sent as JSON or Avro): the lead id
    capture derives for it (``lead_id_key``: the workers' LEADFLOW_LEAD_ID_KEY, if they have
    one), else the hashed visitor id. None when capture would reject the record anyway: any
    key will do, it is dead-lettered with its reason."""
    try:
        lead_id, visitor_id = identify(subject, record, CaptureLimits(lead_id_key=lead_id_key))
    except Rejected:
        return None
    if lead_id is not None:
        return lead_id.encode()
    return visitor_key(visitor_id) if visitor_id is not None else None
