"""Capture rules: normalization, identity, reason codes, limits, deterministic ids."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.capture import CaptureLimits, Rejected, derived_event_id, to_lead_event
from agents.domain.events import (
    ACTIVITY_KINDS,
    CRM_STATUSES,
    DISPOSITIONS,
    FORM_KINDS,
    PAGE_TYPES,
    TOUCH_CHANNELS,
    LeadEvent,
)
from agents.domain.identity import deterministic_id, lead_id_for_email

NOW = 1_748_865_600_000  # 2025-06-02T12:00:00Z
DAY_MS = 86_400_000
EMAIL = "jane.doe@acme-corp.com"
LIMITS = CaptureLimits()
RAW = b'{"publisher": "bytes"}'

# LeadEvent.data keys per kind, as documented in agents/domain/events.py.
DATA_KEYS = {
    "form_submitted": {
        "form_id",
        "form_kind",
        "email",
        "first_name",
        "last_name",
        "job_title",
        "company",
        "company_size",
        "industry",
        "country",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "hidden_lead_source",
        "page_url",
        "consent_email",
        "consent_tracking",
        "honeypot_filled",
        "seconds_to_fill",
        "visitor_id",
    },
    "web_activity": {
        "activity_kind",
        "page_type",
        "url",
        "content_title",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "email",
    },
    "crm_status": {
        "rep_id",
        "status",
        "touch_channel",
        "disposition",
        "disposition_invalid",
        "account_id",
        "account_domain",
    },
}


def form(**overrides) -> dict:
    record = {
        "event_id": None,
        "occurred_at": NOW - 60_000,
        "form_id": "f-demo",
        "form_kind": "demo_request",
        "email": EMAIL,
        "first_name": "Jane",
        "last_name": "Doe",
        "job_title": "VP Sales",
        "company": "Acme Corp",
        "company_size": 250,
        "industry": "software",
        "country": "DE",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "q2-demo",
        "hidden_lead_source": "web",
        "page_url": "https://acme.example/demo",
        "consent_email": True,
        "consent_tracking": False,
        "visitor_id": "v-123",
        "honeypot": None,
        "seconds_to_fill": 14.5,
    }
    record.update(overrides)
    return record


def web(**overrides) -> dict:
    record = {
        "event_id": "w-1",
        "occurred_at": NOW - 60_000,
        "visitor_id": "v-123",
        "email": None,
        "activity_kind": "page_view",
        "page_type": "pricing",
        "url": "https://acme.example/pricing",
        "content_title": None,
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
    }
    record.update(overrides)
    return record


def crm(**overrides) -> dict:
    record = {
        "event_id": "c-1",
        "occurred_at": NOW - 60_000,
        "lead_id": lead_id_for_email(EMAIL),
        "email": None,
        "rep_id": "rep-7",
        "status": "working",
        "touch_channel": None,
        "disposition": None,
        "account_id": None,
        "account_domain": None,
    }
    record.update(overrides)
    return record


RECORDS = {"form_submitted": form, "web_activity": web, "crm_status": crm}


def capture(
    subject: str, record: dict, *, raw: bytes = RAW, limits: CaptureLimits = LIMITS, encoding: str = "json"
) -> LeadEvent:
    return to_lead_event(subject, record, encoding, raw=raw, received_at_ms=NOW, now_ms=NOW, limits=limits)


def rejected(subject: str, record: dict, **kwargs) -> Rejected:
    with pytest.raises(Rejected) as caught:
        capture(subject, record, **kwargs)
    return caught.value


# --- accepted events -------------------------------------------------------------------


@pytest.mark.parametrize("subject", sorted(RECORDS))
def test_data_keys_are_exactly_the_documented_ones(subject):
    event = capture(subject, RECORDS[subject]())
    assert set(event.data) == DATA_KEYS[subject]
    assert event.kind == subject and event.source == "json"
    assert event.occurred_at_ms == NOW - 60_000 and event.received_at_ms == NOW


def test_form_submitted_event():
    event = capture("form_submitted", form(), encoding="avro")
    assert event.lead_id == lead_id_for_email(EMAIL)
    assert event.visitor_id == "v-123"
    assert event.source == "avro"
    assert event.data["email"] == EMAIL
    assert event.data["honeypot_filled"] is False
    assert event.data["seconds_to_fill"] == 14.5
    assert LeadEvent.from_dict(event.to_dict()) == event


def test_form_fields_are_normalized():
    event = capture(
        "form_submitted",
        form(
            email="  Jane.Doe@ACME-corp.com ",
            form_kind=" Demo Request ",
            first_name="  ",
            company="  Acme Corp ",
            country="de",
            utm_source="Google",
            utm_medium=" CPC ",
            utm_campaign="Q2-Demo",
            hidden_lead_source="Web",
            consent_email=None,
        ),
    )
    data = event.data
    assert data["email"] == EMAIL and event.lead_id == lead_id_for_email(EMAIL)
    assert data["form_kind"] == "demo_request"
    assert data["first_name"] is None
    assert data["company"] == "Acme Corp"
    assert data["country"] == "DE"
    assert (data["utm_source"], data["utm_medium"], data["utm_campaign"]) == ("google", "cpc", "q2-demo")
    assert data["hidden_lead_source"] == "web"
    assert data["consent_email"] is False


@pytest.mark.parametrize(
    "country, expected", [("us", "US"), (" gb ", "GB"), ("Germany", None), ("D3", None), (None, None)]
)
def test_country_is_an_alpha2_code_or_unknown(country, expected):
    assert capture("form_submitted", form(country=country)).data["country"] == expected


@pytest.mark.parametrize(
    "honeypot, filled", [(None, False), ("", False), ("   ", False), ("http://spam", True), ("x" * 10_000, True)]
)
def test_honeypot_becomes_a_flag(honeypot, filled):
    assert capture("form_submitted", form(honeypot=honeypot)).data["honeypot_filled"] is filled


def test_anonymous_web_activity_has_no_lead():
    event = capture("web_activity", web())
    assert event.lead_id is None and event.visitor_id == "v-123"
    assert event.data["email"] is None
    assert event.data["page_type"] == "pricing"


def test_known_web_activity_belongs_to_the_lead():
    event = capture(
        "web_activity", web(visitor_id=None, email=EMAIL.upper(), activity_kind="Email_Click", page_type=None)
    )
    assert event.lead_id == lead_id_for_email(EMAIL)
    assert event.visitor_id is None
    assert event.data["email"] == EMAIL and event.data["activity_kind"] == "email_click"


def test_crm_status_lead_id_is_taken_as_given():
    lead_id = lead_id_for_email("someone.else@acme-corp.com")
    event = capture("crm_status", crm(lead_id=f" {lead_id.upper()} ", email=EMAIL))
    assert event.lead_id == lead_id  # the id wins over the (possibly edited) CRM email
    assert event.visitor_id is None


def test_crm_status_without_lead_id_uses_the_email():
    assert capture("crm_status", crm(lead_id=None, email=EMAIL)).lead_id == lead_id_for_email(EMAIL)


def test_crm_status_fields_are_normalized():
    event = capture(
        "crm_status", crm(status="Rejected", disposition="Not Now", touch_channel="CALL", account_id=" A-9 ")
    )
    assert (event.data["status"], event.data["disposition"], event.data["touch_channel"]) == (
        "rejected",
        "not_now",
        "call",
    )
    assert event.data["account_id"] == "A-9"


@pytest.mark.parametrize(
    "domain, expected",
    [
        ("Acme.com", "acme.com"),
        ("https://www.Acme.com/about", "acme.com"),
        ("acme.com:443", "acme.com"),
        ("acme.com.", "acme.com"),
        ("  ", None),
        (None, None),
    ],
)
def test_account_domain_is_the_bare_host(domain, expected):
    assert capture("crm_status", crm(account_domain=domain)).data["account_domain"] == expected


def test_rejection_without_disposition_is_accepted_for_downstream_data_quality():
    # The domain brief: surface it as a data-quality issue rather than drop the event.
    assert capture("crm_status", crm(status="rejected", disposition=None)).data["disposition"] is None


def test_free_text_disposition_is_kept_as_a_description_for_data_quality():
    data = capture("crm_status", crm(status="rejected", disposition="they were rude")).data
    assert (data["disposition"], data["disposition_invalid"]) == (None, "'they were rude'")
    data = capture("crm_status", crm(status="rejected", disposition=EMAIL)).data
    assert data["disposition_invalid"] == "a 22-character value"  # never the address


@pytest.mark.parametrize(
    "field, subject, allowed",
    [
        ("form_kind", "form_submitted", FORM_KINDS),
        ("activity_kind", "web_activity", ACTIVITY_KINDS),
        ("page_type", "web_activity", PAGE_TYPES),
        ("status", "crm_status", CRM_STATUSES),
        ("touch_channel", "crm_status", TOUCH_CHANNELS),
        ("disposition", "crm_status", DISPOSITIONS),
    ],
)
def test_every_vocabulary_value_is_accepted(field, subject, allowed):
    for value in allowed:
        assert capture(subject, RECORDS[subject](**{field: value})).data[field] == value


# --- timestamps ------------------------------------------------------------------------


def test_timestamp_limits_are_inclusive():
    skew_ms = LIMITS.max_clock_skew_s * 1000
    oldest = NOW - LIMITS.max_event_age_days * DAY_MS
    assert capture("web_activity", web(occurred_at=NOW + skew_ms)).occurred_at_ms == NOW + skew_ms
    assert capture("web_activity", web(occurred_at=oldest)).occurred_at_ms == oldest
    assert rejected("web_activity", web(occurred_at=NOW + skew_ms + 1)).reason_code == "timestamp_out_of_range"
    assert rejected("web_activity", web(occurred_at=oldest - 1)).reason_code == "timestamp_out_of_range"


# --- rejections ----------------------------------------------------------------------------

THREE_MB = "x" * 3_000_000

REJECTIONS = [
    # (case, subject, overrides, reason code, text the detail must contain)
    ("missing email", "form_submitted", {"email": None}, "missing_field", "email is missing"),
    ("blank email", "form_submitted", {"email": "   "}, "missing_field", "email is missing"),
    ("email without @", "form_submitted", {"email": "jane.doe.acme-corp.com"}, "invalid_email", "email is not a valid"),
    ("display-name email", "form_submitted", {"email": f"Jane Doe <{EMAIL}>"}, "invalid_email", "email"),
    ("double dot email", "form_submitted", {"email": "jane..doe@acme-corp.com"}, "invalid_email", "email"),
    ("blank form id", "form_submitted", {"form_id": " "}, "missing_field", "form_id"),
    (
        "negative company size",
        "form_submitted",
        {"company_size": -5},
        "invalid_value",
        "company_size -5 is outside 0..5000000",
    ),
    ("absurd company size", "form_submitted", {"company_size": 10**9}, "invalid_value", "company_size"),
    (
        "3 MB company",
        "form_submitted",
        {"company": THREE_MB},
        "invalid_value",
        "company is 3000000 characters, the limit is 2048",
    ),
    ("3 MB email", "form_submitted", {"email": THREE_MB + "@x.com"}, "invalid_value", "email is 3000006 characters"),
    ("negative fill time", "form_submitted", {"seconds_to_fill": -1.0}, "invalid_value", "seconds_to_fill"),
    ("NaN fill time", "form_submitted", {"seconds_to_fill": float("nan")}, "invalid_value", "seconds_to_fill"),
    (
        "unknown form kind",
        "form_submitted",
        {"form_kind": "webinar"},
        "unknown_kind",
        "form_kind 'webinar' is not one of: demo_request, contact_sales",
    ),
    ("email as form kind", "form_submitted", {"form_kind": EMAIL}, "unknown_kind", "form_kind a 22-character value"),
    (
        "five years old",
        "form_submitted",
        {"occurred_at": NOW - 5 * 365 * DAY_MS},
        "timestamp_out_of_range",
        "1825 days in the past, the limit is 1095 days",
    ),
    (
        "two days ahead",
        "form_submitted",
        {"occurred_at": NOW + 2 * DAY_MS},
        "timestamp_out_of_range",
        "172800 s in the future",
    ),
    ("no occurred_at", "form_submitted", {"occurred_at": None}, "missing_field", "occurred_at"),
    ("unknown activity", "web_activity", {"activity_kind": "click"}, "unknown_kind", "activity_kind"),
    ("unknown page type", "web_activity", {"page_type": "landing"}, "unknown_kind", "page_type 'landing'"),
    (
        "anonymous without visitor",
        "web_activity",
        {"visitor_id": " ", "email": None},
        "missing_field",
        "email or visitor_id",
    ),
    ("bad web email", "web_activity", {"email": "jane@"}, "invalid_email", "email"),
    ("unknown status", "crm_status", {"status": "won"}, "unknown_kind", "status 'won' is not one of"),
    ("unknown channel", "crm_status", {"touch_channel": "sms"}, "unknown_kind", "touch_channel"),
    (
        "malformed lead id",
        "crm_status",
        {"lead_id": "ld_123"},
        "invalid_value",
        "lead_id must be 'ld_' and 20 hex digits, got 'ld_123'",
    ),
    ("email as lead id", "crm_status", {"lead_id": EMAIL}, "invalid_value", "got a 22-character value"),
    ("no lead id or email", "crm_status", {"lead_id": None, "email": None}, "missing_field", "lead_id or email"),
]


@pytest.mark.parametrize("case, subject, overrides, code, text", REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_bad_input_is_rejected_with_its_reason(case, subject, overrides, code, text):
    error = rejected(subject, RECORDS[subject](**overrides))
    assert error.reason_code == code
    assert text in error.detail
    # Never the address (nor its mailbox), whatever field it was found in.
    assert EMAIL not in error.detail and "jane" not in error.detail.lower()


@settings(max_examples=200)
@given(address=st.emails())
def test_any_address_is_accepted_or_rejected_without_leaking_it(address):
    try:
        event = capture("form_submitted", form(email=address))
    except Rejected as error:
        assert error.reason_code in ("invalid_email", "invalid_value")
        assert address not in error.detail and address.lower() not in error.detail
    else:
        assert event.lead_id == lead_id_for_email(event.data["email"])


@pytest.mark.parametrize(
    "limit, overrides, code, text",
    [
        ({"max_field_chars": 30}, {"company": "A" * 31}, "invalid_value", "company is 31 characters, the limit is 30"),
        ({"max_company_size": 10}, {"company_size": 11}, "invalid_value", "outside 0..10"),
        ({"max_event_age_days": 1}, {"occurred_at": NOW - DAY_MS - 1}, "timestamp_out_of_range", "limit is 1 days"),
        ({"max_clock_skew_s": 0}, {"occurred_at": NOW + 1000}, "timestamp_out_of_range", "clock skew is 0 s"),
    ],
)
def test_limits_come_from_the_arguments(limit, overrides, code, text):
    assert capture("form_submitted", form(**overrides))  # fine with the defaults
    error = rejected("form_submitted", form(**overrides), limits=dataclasses.replace(LIMITS, **limit))
    assert (error.reason_code, text in error.detail) == (code, True)


def test_unknown_subject_or_encoding_is_a_wiring_error():
    with pytest.raises(ValueError, match="no capture rules"):
        capture("lead_scored", form())
    with pytest.raises(ValueError, match="unknown encoding"):
        capture("form_submitted", form(), encoding="protobuf")


def test_rejected_reason_codes_are_bounded():
    with pytest.raises(ValueError, match="unknown reason code"):
        Rejected("bad_email", "x")


# --- event ids ---------------------------------------------------------------------------


def test_publisher_event_id_is_kept():
    assert capture("form_submitted", form(event_id="  evt-42 ")).event_id == "evt-42"


def test_missing_event_id_is_derived_from_subject_and_bytes():
    first = capture("form_submitted", form(), raw=b"message one")
    again = capture("form_submitted", form(), raw=b"message one")
    other_bytes = capture("form_submitted", form(), raw=b"message two")
    assert first.event_id == again.event_id != other_bytes.event_id
    assert first.event_id == deterministic_id(
        "form_submitted", hashlib.blake2b(b"message one", digest_size=16).hexdigest()
    )
    assert derived_event_id("form_submitted", b"x") != derived_event_id("web_activity", b"x")
    assert capture("form_submitted", form(event_id="  "), raw=b"message one").event_id == first.event_id


# --- settings and purity ---------------------------------------------------------------------


def test_limits_from_any_settings_like_object():
    limits = CaptureLimits.from_settings(
        SimpleNamespace(
            max_field_chars=100,
            max_event_age_days=30,
            max_clock_skew_s=5,
            max_company_size=1000,
            other=1,
        )
    )
    assert limits == CaptureLimits(100, 30, 5, 1000)


def test_default_limits_mirror_the_settings_defaults():
    from streams.settings import Settings

    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    assert CaptureLimits.from_settings(SimpleNamespace(**defaults)) == CaptureLimits()


def test_rules_import_no_infrastructure():
    code = (
        "import sys, agents.capture.rules; "
        "print(sorted(m for m in ('faust', 'aiokafka', 'redis', 'prometheus_client', 'streams') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- with the codec ------------------------------------------------------------------------


def test_json_message_to_lead_event(codec):
    raw = orjson.dumps(
        {
            "occurred_at": "2025-06-02T11:59:00Z",
            "form_id": "f-demo",
            "form_kind": "pricing_form",
            "email": EMAIL,
            "company_size": 250,
            "honeypot": "",
            "seconds_to_fill": 9,
        }
    )
    record, encoding = codec.decode_input("form_submitted", raw, max_bytes=4096)
    event = to_lead_event("form_submitted", record, encoding, raw=raw, received_at_ms=NOW, now_ms=NOW, limits=LIMITS)
    assert event.source == "json" and event.occurred_at_ms == NOW - 60_000
    assert event.event_id == derived_event_id("form_submitted", raw)
    assert event.data["consent_tracking"] is False and event.data["seconds_to_fill"] == 9.0


def test_republished_json_gets_the_same_event_id(codec):
    raw = orjson.dumps({"occurred_at": NOW, "visitor_id": "v-9", "activity_kind": "page_view"})
    ids = set()
    for _ in range(2):
        record, encoding = codec.decode_input("web_activity", raw, max_bytes=4096)
        ids.add(
            to_lead_event(
                "web_activity", record, encoding, raw=raw, received_at_ms=NOW, now_ms=NOW, limits=LIMITS
            ).event_id
        )
    assert len(ids) == 1
