"""Capture rules: a decoded input record -> a validated, normalized ``LeadEvent``.

Pure functions (no Kafka, Faust, Redis or metrics), so every rule is unit-testable. A record
that breaks a rule raises ``Rejected`` with a dead-letter reason code; details name the field
and never contain an email address.

Normalization: strings are trimmed and empty means absent; kinds are matched case-insensitively
(``"Demo Request"`` -> ``demo_request``); UTM values and lead sources are lower-cased (they are
compared with the source taxonomy); domains are reduced to the bare host; country codes are
upper-cased.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, overload

from agents.capture.exceptions import (
    INVALID_EMAIL,
    INVALID_VALUE,
    MISSING_FIELD,
    TIMESTAMP_OUT_OF_RANGE,
    UNKNOWN_KIND,
    Rejected,
)
from agents.domain.events import (
    ACTIVITY_KINDS,
    CRM_STATUS,
    CRM_STATUSES,
    DISPOSITIONS,
    FORM_KINDS,
    FORM_SUBMITTED,
    PAGE_TYPES,
    TOUCH_CHANNELS,
    WEB_ACTIVITY,
    LeadEvent,
)
from agents.domain.identity import InvalidEmail, deterministic_id, lead_id_for_email, normalize_email

ENCODINGS = ("avro", "json")
_MS_PER_DAY = 86_400_000
_LEAD_ID = re.compile(r"^ld_[0-9a-f]{20}$")
_COUNTRY_CODE = re.compile(r"^[A-Za-z]{2}$")
_URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")
# Only its emptiness matters (a bot filled it); bots stuff it, so no length limit.
_LENGTH_EXEMPT = frozenset({"honeypot"})


@dataclass(frozen=True, slots=True)
class CaptureLimits:
    """What counts as an absurd value. Defaults mirror ``streams.settings.Settings``."""

    max_field_chars: int = 2048
    max_event_age_days: int = 3 * 365
    max_clock_skew_s: int = 300
    max_company_size: int = 5_000_000
    # HMAC key of lead ids (Settings.lead_id_key_bytes); None = unkeyed ids. Part of the
    # limits because it travels with them from the settings into these pure rules.
    lead_id_key: bytes | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> CaptureLimits:
        """Any object with the four attributes (duck-typed: no settings import here), plus
        ``lead_id_key_bytes`` when it has one."""
        return cls(
            max_field_chars=int(settings.max_field_chars),
            max_event_age_days=int(settings.max_event_age_days),
            max_clock_skew_s=int(settings.max_clock_skew_s),
            max_company_size=int(settings.max_company_size),
            lead_id_key=getattr(settings, "lead_id_key_bytes", None),
        )


def to_lead_event(
    subject: str,
    record: Mapping[str, Any],
    encoding: str,
    *,
    raw: bytes,
    received_at_ms: int,
    now_ms: int,
    limits: CaptureLimits,
    backfill: bool = False,
) -> LeadEvent:
    """Validates a decoded input record (``subject`` = event kind) and builds its LeadEvent.

    ``raw`` is the message as received: without a publisher event id, the id is derived from
    these bytes, so the same message republished is deduplicated downstream. ``backfill``
    (the record's ``leadflow-backfill`` header) marks history being rebuilt.
    Raises ``Rejected``; a subject or encoding leadflow does not know is a wiring bug
    (ValueError).
    """
    build = _BUILDERS.get(subject)
    if build is None:
        raise ValueError(f"no capture rules for subject {subject!r}; expected one of {tuple(_BUILDERS)}")
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")

    _check_lengths(record, limits.max_field_chars)
    occurred_at_ms = _occurred_at(record.get("occurred_at"), now_ms, limits)
    lead_id, visitor_id, data = build(record, limits)
    return LeadEvent(
        event_id=_text(record, "event_id") or derived_event_id(subject, raw),
        kind=subject,
        lead_id=lead_id,
        visitor_id=visitor_id,
        occurred_at_ms=occurred_at_ms,
        received_at_ms=received_at_ms,
        source=encoding,
        data=data,
        backfill=backfill,
    )


def identify(subject: str, record: Mapping[str, Any], limits: CaptureLimits) -> tuple[str | None, str | None]:
    """(lead id, visitor id) capture derives for a record; raises ``Rejected`` as capture would."""
    build = _BUILDERS.get(subject)
    if build is None:
        raise ValueError(f"no capture rules for subject {subject!r}; expected one of {tuple(_BUILDERS)}")
    lead_id, visitor_id, _ = build(record, limits)
    return lead_id, visitor_id


def derived_event_id(subject: str, raw: bytes) -> str:
    """Event id for a message without one: same subject and bytes -> same id."""
    return deterministic_id(subject, hashlib.blake2b(raw, digest_size=16).hexdigest())


# --- per subject -------------------------------------------------------------------------

Built = tuple[str | None, str | None, dict[str, Any]]  # lead_id, visitor_id, data


def _form_submitted(record: Mapping[str, Any], limits: CaptureLimits) -> Built:
    email = _email(record, "email", required=True)
    visitor_id = _text(record, "visitor_id")
    data = {
        "form_id": _required_text(record, "form_id"),
        "form_kind": _kind(record, "form_kind", FORM_KINDS, required=True),
        "email": email,
        "first_name": _text(record, "first_name"),
        "last_name": _text(record, "last_name"),
        "job_title": _text(record, "job_title"),
        "company": _text(record, "company"),
        "company_size": _company_size(record, limits.max_company_size),
        "industry": _text(record, "industry"),
        "country": _country(record),
        **_utm(record),
        "hidden_lead_source": _lower_text(record, "hidden_lead_source"),
        "page_url": _text(record, "page_url"),
        "consent_email": _flag(record, "consent_email"),
        "consent_tracking": _flag(record, "consent_tracking"),
        "honeypot_filled": _honeypot_filled(record),
        "seconds_to_fill": _seconds_to_fill(record),
        "visitor_id": visitor_id,
    }
    return lead_id_for_email(email, limits.lead_id_key), visitor_id, data


def _web_activity(record: Mapping[str, Any], limits: CaptureLimits) -> Built:
    email = _email(record, "email", required=False)
    visitor_id = _text(record, "visitor_id")
    if email is None and visitor_id is None:
        raise Rejected(MISSING_FIELD, "web_activity needs email or visitor_id; both are empty")
    data = {
        "activity_kind": _kind(record, "activity_kind", ACTIVITY_KINDS, required=True),
        "page_type": _kind(record, "page_type", PAGE_TYPES, required=False),
        "url": _text(record, "url"),
        "content_title": _text(record, "content_title"),
        **_utm(record),
        "email": email,
    }
    # Anonymous activity has no lead yet; it is keyed by visitor until a form links the two.
    return (lead_id_for_email(email, limits.lead_id_key) if email else None), visitor_id, data


def _crm_status(record: Mapping[str, Any], limits: CaptureLimits) -> Built:
    # The CRM echoes the lead id it got from the assignment; it wins over the email because
    # the CRM's email may have been edited since (the id stays that of the original email).
    lead_id = _lead_id(record)
    if lead_id is None:
        email = _email(record, "email", required=False)
        if email is None:
            raise Rejected(MISSING_FIELD, "crm_status needs lead_id or email; both are empty")
        lead_id = lead_id_for_email(email, limits.lead_id_key)
    data = {
        "rep_id": _text(record, "rep_id"),
        "status": _kind(record, "status", CRM_STATUSES, required=True),
        "touch_channel": _kind(record, "touch_channel", TOUCH_CHANNELS, required=False),
        **_disposition(record),
        "account_id": _text(record, "account_id"),
        "account_domain": _domain(record, "account_domain"),
    }
    return lead_id, None, data


def _disposition(record: Mapping[str, Any]) -> dict[str, str | None]:
    """A rejection reason off the fixed list is kept as a description, not dead-lettered: the
    CRM event is real sales activity (it stops the SLA clock) and the missing valid reason is a
    data-quality issue published downstream (``rejection_with_invalid_disposition``)."""
    try:
        return {"disposition": _kind(record, "disposition", DISPOSITIONS, required=False), "disposition_invalid": None}
    except Rejected:
        return {"disposition": None, "disposition_invalid": _describe(_text(record, "disposition") or "")}


_BUILDERS: dict[str, Callable[[Mapping[str, Any], CaptureLimits], Built]] = {
    FORM_SUBMITTED: _form_submitted,
    WEB_ACTIVITY: _web_activity,
    CRM_STATUS: _crm_status,
}


# --- field rules -------------------------------------------------------------------------


def _describe(value: str) -> str:
    """A value fit for a dead-letter reason: quoted when short and harmless, else its length."""
    if "@" in value or len(value) > 40 or not value.isprintable():
        return f"a {len(value)}-character value"
    return repr(value)


def _check_lengths(record: Mapping[str, Any], max_chars: int) -> None:
    for name, value in record.items():
        if isinstance(value, str) and len(value) > max_chars and name not in _LENGTH_EXEMPT:
            raise Rejected(INVALID_VALUE, f"{name} is {len(value)} characters, the limit is {max_chars}")


def _occurred_at(value: Any, now_ms: int, limits: CaptureLimits) -> int:
    if value is None:
        raise Rejected(MISSING_FIELD, "occurred_at is missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejected(INVALID_VALUE, "occurred_at must be epoch milliseconds (an integer)")
    age_ms = now_ms - value
    if age_ms > limits.max_event_age_days * _MS_PER_DAY:
        raise Rejected(
            TIMESTAMP_OUT_OF_RANGE,
            f"occurred_at is {age_ms // _MS_PER_DAY} days in the past, the limit is {limits.max_event_age_days} days",
        )
    if -age_ms > limits.max_clock_skew_s * 1000:
        raise Rejected(
            TIMESTAMP_OUT_OF_RANGE,
            f"occurred_at is {-age_ms // 1000} s in the future, the allowed clock skew is {limits.max_clock_skew_s} s",
        )
    return value


def _text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Rejected(INVALID_VALUE, f"{name} must be a string, got {type(value).__name__}")
    return value.strip() or None


def _required_text(record: Mapping[str, Any], name: str) -> str:
    value = _text(record, name)
    if value is None:
        raise Rejected(MISSING_FIELD, f"{name} is missing or empty")
    return value


def _lower_text(record: Mapping[str, Any], name: str) -> str | None:
    value = _text(record, name)
    return value.lower() if value else None


@overload
def _email(record: Mapping[str, Any], name: str, *, required: Literal[True]) -> str: ...
@overload
def _email(record: Mapping[str, Any], name: str, *, required: Literal[False]) -> str | None: ...
def _email(record: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = _text(record, name)
    if value is None:
        if required:
            raise Rejected(MISSING_FIELD, f"{name} is missing or empty")
        return None
    try:
        return normalize_email(value)
    except InvalidEmail:
        raise Rejected(INVALID_EMAIL, f"{name} is not a valid email address") from None


def _lead_id(record: Mapping[str, Any]) -> str | None:
    value = _text(record, "lead_id")
    if value is None:
        return None
    lead_id = value.lower()
    if not _LEAD_ID.match(lead_id):
        raise Rejected(INVALID_VALUE, f"lead_id must be 'ld_' and 20 hex digits, got {_describe(value)}")
    return lead_id


def _kind(record: Mapping[str, Any], name: str, allowed: tuple[str, ...], *, required: bool) -> str | None:
    value = _text(record, name)
    if value is None:
        if required:
            raise Rejected(MISSING_FIELD, f"{name} is missing or empty")
        return None
    kind = value.lower().replace("-", "_").replace(" ", "_")
    if kind not in allowed:
        raise Rejected(UNKNOWN_KIND, f"{name} {_describe(value)} is not one of: {', '.join(allowed)}")
    return kind


def _utm(record: Mapping[str, Any]) -> dict[str, str | None]:
    return {name: _lower_text(record, name) for name in ("utm_source", "utm_medium", "utm_campaign")}


def _domain(record: Mapping[str, Any], name: str) -> str | None:
    """``https://www.Acme.com/about`` -> ``acme.com``: account matching is on the bare domain."""
    value = _lower_text(record, name)
    if value is None:
        return None
    host = _URL_SCHEME.sub("", value).split("/", 1)[0].split(":", 1)[0].rstrip(".")
    host = host.removeprefix("www.")
    return host or None


def _country(record: Mapping[str, Any]) -> str | None:
    # Forms often send names ("Germany"): dropping the lead for a cosmetic field would lose
    # it, so anything but an alpha-2 code is treated as unknown.
    value = _text(record, "country")
    return value.upper() if value and _COUNTRY_CODE.match(value) else None


def _company_size(record: Mapping[str, Any], max_size: int) -> int | None:
    value = record.get("company_size")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejected(INVALID_VALUE, f"company_size must be an integer, got {type(value).__name__}")
    if not 0 <= value <= max_size:
        raise Rejected(INVALID_VALUE, f"company_size {value} is outside 0..{max_size}")
    return value


def _seconds_to_fill(record: Mapping[str, Any]) -> float | None:
    value = record.get("seconds_to_fill")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Rejected(INVALID_VALUE, f"seconds_to_fill must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise Rejected(INVALID_VALUE, f"seconds_to_fill {value} is not a duration (>= 0)")
    return float(value)


def _flag(record: Mapping[str, Any], name: str) -> bool:
    value = record.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Rejected(INVALID_VALUE, f"{name} must be a boolean, got {type(value).__name__}")
    return value


def _honeypot_filled(record: Mapping[str, Any]) -> bool:
    value = record.get("honeypot")
    return isinstance(value, str) and bool(value.strip())
