"""Erasure on request (GDPR Art. 17, CCPA deletion): the pure parts shared by the CLI and agents.

Flow (docs/privacy.md): ``leadflow forget EMAIL|LEAD_ID`` publishes a CRM status
``erasure_requested`` for the lead id (never the email) on ``<p>.in.crm-status``; a CRM can
publish the same event itself. Capture routes it to the lead's partition like any CRM event,
and every agent that holds the lead deletes it from its own table there (a Faust ``del``
writes a changelog tombstone): scoring (lead state, linked visitor buffers, then emits
``lead_erased``), SLA (the clock), disposition (account facts, and the registry entries the
lead created in Redis); routing reads ``lead_erased`` and drops its table entry and the lead's
Redis keys (owner, open-lead set membership, assignment decisions).

Plain Python: no framework imports.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from agents.domain.events import CRM_STATUS, LeadEvent
from agents.domain.identity import InvalidEmail, deterministic_id, lead_id_for_email, normalize_email

ERASURE_REQUESTED = "erasure_requested"
ERASURE_MODES = ("new_lead", "suppress")
LEAD_ID_RE = re.compile(r"^ld_[0-9a-f]{20}$")
# Suppression-list entries live in the scoring and disposition tables next to lead ids; this
# prefix cannot collide with ``ld_`` keys nor with the due-index keys.
SUPPRESSION_PREFIX = b"sp_"


class ForgetTargetError(ValueError):
    """`leadflow forget` got something that is neither an email nor a lead id."""


def is_erasure(event: LeadEvent) -> bool:
    return event.kind == CRM_STATUS and event.data.get("status") == ERASURE_REQUESTED


def lead_id_of_target(target: str, key: bytes | None) -> str:
    """The lead id for ``leadflow forget``'s argument: a lead id as given, or the (keyed) id of
    an email. The error never repeats the argument (it may be an email)."""
    text = (target or "").strip()
    if LEAD_ID_RE.match(text.lower()):
        return text.lower()
    if "@" not in text:
        raise ForgetTargetError(
            f"expected an email address or a lead id ('ld_' and 20 hex digits); got {len(text)} characters that are neither"
        )
    try:
        return lead_id_for_email(normalize_email(text), key)
    except InvalidEmail:
        raise ForgetTargetError("the argument is not a valid email address (nor a lead id)") from None


def erasure_request(
    lead_id: str, *, requested_at_ms: int, event_id: str, requested_by: str | None = None
) -> dict[str, Any]:
    """The crm_status record `leadflow forget` publishes: the lead id only, no email."""
    return {
        "event_id": event_id,
        "occurred_at": requested_at_ms,
        "lead_id": lead_id,
        "status": ERASURE_REQUESTED,
        "rep_id": requested_by,
    }


def suppression_key(lead_id: str, key: bytes) -> bytes:
    """Table key of a lead's suppression-list entry: a keyed hash of its id (and so of its
    email); without the key nobody can tell whose entry it is, nor test an email against it."""
    digest = hmac.new(key, b"leadflow-suppression\x1f" + lead_id.encode(), hashlib.sha256).hexdigest()[:32]
    return SUPPRESSION_PREFIX + digest.encode()


def lead_erased_record(event: LeadEvent, *, erased_at_ms: int, found: bool, visitors: int, mode: str) -> dict[str, Any]:
    """``lead_erased`` v1 (schemas/lead_erased.v1.avsc). Its id derives from the request, so a
    redelivered request gives the same record. No email, name or company."""
    if mode not in ERASURE_MODES:
        raise ValueError(f"erasure mode must be one of {ERASURE_MODES}, got {mode!r}")
    return {
        "event_id": deterministic_id(event.lead_id, event.event_id, prefix="er_"),
        "lead_id": event.lead_id,
        "request_event_id": event.event_id,
        "requested_at": event.occurred_at_ms,
        "erased_at": erased_at_ms,
        "found": found,
        "visitors_erased": visitors,
        "later_events": mode,
    }
