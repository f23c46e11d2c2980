"""Codec: framing, round trips, schema evolution, JSON coercion and dead-letter reason codes."""

from __future__ import annotations

import io
import struct
from datetime import datetime

import fastavro
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.codec import (
    AVRO,
    DECODE_REASON_CODES,
    JSON,
    Codec,
    DecodeError,
    EncodeError,
    SchemaRegistryError,
)
from streams.codec.json import iso_to_epoch_ms

EMAIL = "jane.doe@acme-corp.com"
MAX_BYTES = 256 * 1024
T0 = 1_748_865_600_000  # 2025-06-02T12:00:00Z
INPUT_SUBJECTS = ("form_submitted", "web_activity", "crm_status")

HANDOFF = {
    "trigger": "demo_request",
    "problem_hypothesis": "evaluating pricing for a 200-seat rollout",
    "disqualifiers_checked": ["free_email", "competitor", "bot"],
    "last_touches": [
        {"kind": "demo_request", "detail": "form f-demo", "occurred_at": T0},
        {"kind": "page_view", "detail": None, "occurred_at": T0 - 60_000},
    ],
    "recommended_opener": "You asked about pricing for 200 seats...",
}
BREAKDOWN = [
    {"signal": "demo_request", "points": 20.0, "detail": None},
    {"signal": "pricing_page_visit", "points": 13.7, "detail": "2 visits, last 3 days ago"},
]

# One realistic record per subject, in the shape of its latest schema.
SAMPLES = {
    "form_submitted": {
        "event_id": "evt-1",
        "occurred_at": T0,
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
        "consent_tracking": True,
        "visitor_id": "v-123",
        "honeypot": None,
        "seconds_to_fill": 14.5,
    },
    "web_activity": {
        "event_id": "evt-2",
        "occurred_at": T0,
        "visitor_id": "v-123",
        "email": None,
        "activity_kind": "page_view",
        "page_type": "pricing",
        "url": "https://acme.example/pricing",
        "content_title": None,
        "utm_source": "linkedin",
        "utm_medium": "paid_social",
        "utm_campaign": None,
    },
    "crm_status": {
        "event_id": "evt-3",
        "occurred_at": T0,
        "lead_id": "ld_0123456789abcdef0123",
        "email": None,
        "rep_id": "rep-7",
        "status": "rejected",
        "touch_channel": None,
        "disposition": "not_now",
        "account_id": None,
        "account_domain": None,
    },
    "lead_scored": {
        "event_id": "out-1",
        "lead_id": "ld_0123456789abcdef0123",
        "cause_event_id": "evt-1",
        "cause_kind": "form_submitted",
        "occurred_at": T0,
        "scored_at": T0 + 40,
        "stage": "mql",
        "score": 63.7,
        "ungated_score": 63.7,
        "gate_passed": True,
        "gate_failures": [],
        "fit_score": 15.0,
        "engagement_score": 48.7,
        "fit_grade": "B",
        "fit_passed": True,
        "breakdown": BREAKDOWN,
        "model_version": "2025-06",
        "event_count": 4,
        "first_touch_source": "paid_social",
        "last_touch_source": "paid_search",
        "account_key": "acme-corp.com",
        "mql": True,
    },
    "lead_qualified": {
        "event_id": "out-2",
        "lead_id": "ld_0123456789abcdef0123",
        "email": EMAIL,
        "occurred_at": T0,
        "qualified_at": T0 + 50,
        "mql_number": 1,
        "score": 63.7,
        "fit_grade": "B",
        "fast_track": False,
        "breakdown": BREAKDOWN,
        "model_version": "2025-06",
        "handoff": HANDOFF,
        "first_touch_source": None,
        "last_touch_source": "paid_search",
        "account_key": None,
        "company": "Acme Corp",
        "job_title": "VP Sales",
        "priority_hint": "P1",
        "cause_received_at": T0 - 20,
        "upgrade_of": "out-1",
        "previous_priority_hint": "P2",
        "firmographics": {
            "company_size": 250,
            "industry": "software",
            "country": "DE",
            "segment": "mid_market",
            "fit_grade": "B",
        },
        "signals": [{"signal": "contact_request", "points": 20.0}, {"signal": "pricing_page_visit", "points": 13.7}],
        "form_kinds": ["demo_request"],
        "lead_type": "demo_request",
    },
    "lead_assigned": {
        "event_id": "out-3",
        "lead_id": "ld_0123456789abcdef0123",
        "mql_event_id": "out-2",
        "owner_id": "ae-3",
        "owner_name": "Sam Rivera",
        "owner_role": "AE",
        "team": "EMEA",
        "priority": "P1",
        "assigned_at": T0 + 60,
        "first_touch_due_at": T0 + 60 + 600_000,
        "rule": "demo_round_robin",
        "reason": "P1 demo request, round robin among active AEs",
        "is_fallback": False,
        "audit": [
            {"candidate": "ae-1", "decision": "skipped", "reason": "out of office"},
            {"candidate": "ae-3", "decision": "selected", "reason": "next in rotation"},
        ],
        "handoff": HANDOFF,
        "reassigned_from": "ae-1",
        "replaces_assignment_id": "out-0",
        "cause_event_id": "br-1",
    },
    "sla_breached": {
        "event_id": "out-4",
        "lead_id": "ld_0123456789abcdef0123",
        "assignment_id": "out-3",
        "owner_id": "ae-3",
        "priority": "P1",
        "tier": 0,
        "escalate_to_role": "manager",
        "escalate_to_id": None,
        "due_at": T0 + 600_060,
        "breached_at": T0 + 660_060,
        "minutes_late": 1.0,
        "action": "reassign",
        "first_assigned_at": T0 + 60,
    },
    "lead_dispositioned": {
        "event_id": "out-5",
        "lead_id": "ld_0123456789abcdef0123",
        "occurred_at": T0,
        "status": "rejected",
        "disposition": "not_now",
        "outcome": "recycled",
        "new_stage": "recycled",
        "score_reset": True,
        "checkpoints": [T0 + d * 86_400_000 for d in (30, 60, 90)],
        "rep_id": "rep-7",
        "account_id": None,
        "account_domain": None,
    },
    "data_quality_issue": {
        "event_id": "out-6",
        "lead_id": "ld_0123456789abcdef0123",
        "occurred_at": T0,
        "issue_code": "rejected_without_disposition",
        "detail": "status rejected has no disposition",
        "source_event_id": "evt-3",
    },
    "dead_letter": {
        "event_id": "out-7",
        "failed_at": T0,
        "source_topic": "leadflow.in.form-submits",
        "source_partition": 2,
        "source_offset": 12345,
        "source_timestamp": T0 - 5,
        "source_key": None,
        "original": b"\x01garbage",
        "reason_code": "unknown_encoding",
        "reason": "first byte 0x01 is neither the Avro magic byte 0x00 nor '{'",
        "original_size": 8,
        "original_sha256": "ab" * 32,
        "truncated": False,
    },
    "lead_erased": {
        "event_id": "er_1",
        "lead_id": "ld_" + "0" * 20,
        "request_event_id": "erasure-1",
        "requested_at": T0 - 5,
        "erased_at": T0,
        "found": True,
        "visitors_erased": 1,
        "later_events": "new_lead",
    },
    "shadow_decision": {
        "event_id": "sd_1",
        "lead_id": "ld_" + "0" * 20,
        "direction": "gained",
        "cause_event_id": "ev-1",
        "occurred_at": T0 - 5,
        "decided_at": T0,
        "live_score": 42.0,
        "live_model_version": "2025.1-default",
        "candidate_score": 63.5,
        "candidate_model_version": "candidate-1",
        "first_touch_source": "paid_search",
        "score_band": "60-70",
    },
}


def _json(**fields) -> bytes:
    return orjson.dumps(fields)


def _minimal_form(**overrides) -> dict:
    record = {"occurred_at": T0, "form_id": "f-demo", "form_kind": "demo_request", "email": EMAIL}
    record.update(overrides)
    return record


def _decode_error(codec: Codec, subject: str, raw: bytes, max_bytes: int = MAX_BYTES) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        codec.decode_input(subject, raw, max_bytes=max_bytes)
    return caught.value


def _avro_with(schema_id: int, schema: dict, record: dict) -> bytes:
    """A framed message written by fastavro directly, independent of Codec.encode."""
    buffer = io.BytesIO()
    buffer.write(struct.pack(">BI", 0, schema_id))
    fastavro.schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


# --- round trips -------------------------------------------------------------------------


def test_every_contract_subject_has_a_sample(codec):
    assert set(SAMPLES) == set(codec.registry.subjects)


@pytest.mark.parametrize("subject", sorted(SAMPLES))
def test_encode_then_decode_round_trips(codec, subject):
    raw = codec.encode(subject, SAMPLES[subject])
    latest = codec.registry.latest(subject)
    assert raw[:5] == b"\x00" + latest.id.to_bytes(4, "big")
    assert codec.decode(raw) == (subject, SAMPLES[subject])


@pytest.mark.parametrize("subject", INPUT_SUBJECTS)
def test_input_round_trips_as_avro_and_json(codec, subject):
    record = SAMPLES[subject]
    assert codec.decode_input(subject, codec.encode(subject, record), max_bytes=MAX_BYTES) == (record, AVRO)
    assert codec.decode_input(subject, orjson.dumps(record), max_bytes=MAX_BYTES) == (record, JSON)


def test_times_stay_integer_milliseconds(codec):
    _, record = codec.decode(codec.encode("lead_qualified", SAMPLES["lead_qualified"]))
    assert type(record["qualified_at"]) is int
    assert type(record["handoff"]["last_touches"][0]["occurred_at"]) is int


# --- schema evolution ------------------------------------------------------------------


def test_v1_form_decodes_with_v2_defaults(codec):
    v1 = codec.registry.by_id(101)
    v1_record = {name: SAMPLES["form_submitted"][name] for name in v1.field_names}
    raw = _avro_with(101, v1.schema, v1_record)

    record, encoding = codec.decode_input("form_submitted", raw, max_bytes=MAX_BYTES)

    assert encoding == AVRO
    assert list(record) == list(codec.registry.latest("form_submitted").field_names)
    assert {k: record[k] for k in v1_record} == v1_record
    assert record["consent_tracking"] is False
    assert record["visitor_id"] is None and record["honeypot"] is None
    assert record["seconds_to_fill"] is None


def test_decode_returns_the_record_as_written(codec):
    v1 = codec.registry.by_id(101)
    v1_record = {name: SAMPLES["form_submitted"][name] for name in v1.field_names}
    assert codec.decode(_avro_with(101, v1.schema, v1_record)) == ("form_submitted", v1_record)


# --- JSON --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "occurred_at, expected",
    [
        (T0, T0),
        (float(T0), T0),
        ("2025-06-02T12:00:00Z", T0),
        ("2025-06-02T12:00:00.250Z", T0 + 250),
        ("2025-06-02T14:00:00+02:00", T0),
        ("2025-06-02 12:00:00+00:00", T0),
        ("1969-12-31T23:59:59.999Z", -1),
    ],
)
def test_json_timestamps_accept_epoch_ms_and_iso_with_zone(codec, occurred_at, expected):
    record, encoding = codec.decode_input(
        "form_submitted", _json(**_minimal_form(occurred_at=occurred_at)), max_bytes=MAX_BYTES
    )
    assert (record["occurred_at"], encoding) == (expected, JSON)


@pytest.mark.parametrize("occurred_at", ["2025-06-02T12:00:00", "yesterday", "", True, 1.5, None])
def test_json_timestamps_reject_naive_or_unparseable_values(codec, occurred_at):
    error = _decode_error(codec, "form_submitted", _json(**_minimal_form(occurred_at=occurred_at)))
    assert error.reason_code == ("missing_field" if occurred_at is None else "schema_invalid")
    assert error.detail.startswith("occurred_at:")


def test_iso_to_epoch_ms_matches_datetime():
    text = "2031-01-05T07:08:09.123-05:00"
    assert iso_to_epoch_ms(text) == int(datetime.fromisoformat(text).timestamp() * 1000)


def test_json_fills_defaults_and_ignores_unknown_fields(codec):
    raw = _json(**_minimal_form(consent_email=None, tracking_pixel="x", nested={"a": [1]}))
    record, _ = codec.decode_input("form_submitted", raw, max_bytes=MAX_BYTES)
    assert list(record) == list(codec.registry.latest("form_submitted").field_names)
    assert record["consent_email"] is False  # null for a non-nullable field = absent
    assert record["consent_tracking"] is False
    assert record["first_name"] is None and record["seconds_to_fill"] is None


def test_json_numbers_are_coerced_where_lossless(codec):
    raw = _json(**_minimal_form(company_size=250.0, seconds_to_fill=12))
    record, _ = codec.decode_input("form_submitted", raw, max_bytes=MAX_BYTES)
    assert type(record["company_size"]) is int and record["company_size"] == 250
    assert type(record["seconds_to_fill"]) is float and record["seconds_to_fill"] == 12.0


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("company_size", 250.5, "long or null"),
        ("company_size", "250", "long or null"),
        ("company_size", True, "long or null"),
        ("company_size", 2**63, "out of range"),
        ("consent_email", "yes", "boolean"),
        ("form_id", 42, "string"),
        ("seconds_to_fill", "fast", "double or null"),
    ],
)
def test_json_wrong_types_are_schema_invalid(codec, field, value, expected):
    error = _decode_error(codec, "form_submitted", _json(**_minimal_form(**{field: value})))
    assert error.reason_code == "schema_invalid"
    assert error.detail.startswith(f"{field}:") and expected in error.detail


def test_json_leading_whitespace_is_still_json(codec):
    record, encoding = codec.decode_input("form_submitted", b" \r\n\t" + _json(**_minimal_form()), max_bytes=MAX_BYTES)
    assert encoding == JSON and record["email"] == EMAIL


# --- dead-letter reason codes --------------------------------------------------------------


def _truncated_avro(codec: Codec) -> bytes:
    return codec.encode("form_submitted", SAMPLES["form_submitted"])[:-9]


BAD_INPUTS = [
    # (case, subject, raw - or how to make it with the codec, reason code, text the detail must contain)
    ("3 MB string", "form_submitted", _json(**_minimal_form(company="x" * 3_000_000)), "too_large", "limit is 262144"),
    ("bad magic byte", "form_submitted", b"\x01\x00\x00\x00\x66\x02", "unknown_encoding", "0x01"),
    ("JSON array", "form_submitted", b'[{"email": "a@b.co"}]', "unknown_encoding", "0x5b"),
    ("empty message", "web_activity", b"", "unknown_encoding", "empty"),
    ("plain text", "crm_status", b"status=working", "unknown_encoding", "0x73"),
    ("UTF-8 BOM before JSON", "form_submitted", b"\xef\xbb\xbf{}", "unknown_encoding", "0xef"),
    ("broken JSON", "form_submitted", b'{"email": "a@b.co", ', "undecodable", "not valid JSON"),
    ("invalid UTF-8 in JSON", "form_submitted", b'{"email": "\xff"}', "undecodable", "not valid JSON"),
    ("truncated Avro", "form_submitted", _truncated_avro, "undecodable", "truncated"),
    ("header only", "form_submitted", b"\x00\x00\x00", "undecodable", "5-byte header"),
    ("unknown schema id", "form_submitted", b"\x00\x00\x00\x03\xe7\x02", "unknown_schema_id", "999"),
    ("id of another subject", "form_submitted", b"\x00\x00\x00\x00\xc9\x00", "unknown_schema_id", "web_activity"),
    ("missing email", "form_submitted", _json(occurred_at=T0, form_id="f", form_kind="chat"), "missing_field", "email"),
    ("null email", "form_submitted", _json(**_minimal_form(email=None)), "missing_field", "email"),
    (
        "negative size as text",
        "form_submitted",
        _json(**_minimal_form(company_size="-5")),
        "schema_invalid",
        "company_size",
    ),
]


@pytest.mark.parametrize("case, subject, raw, code, text", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_its_reason_code(codec, case, subject, raw, code, text):
    raw = raw(codec) if callable(raw) else raw
    error = _decode_error(codec, subject, raw)
    assert error.reason_code == code
    assert text in error.detail
    assert EMAIL not in error.detail and "a@b.co" not in error.detail


def test_avro_with_trailing_bytes_is_undecodable(codec):
    raw = codec.encode("web_activity", SAMPLES["web_activity"]) + b"\x00\x02"
    error = _decode_error(codec, "web_activity", raw)
    assert (error.reason_code, error.detail) == (
        "undecodable",
        "web_activity v1 (schema id 201): 2 unexpected bytes after the record",
    )


def test_size_is_checked_before_anything_else(codec):
    assert _decode_error(codec, "form_submitted", b"\x07" * 2048, max_bytes=1024).reason_code == "too_large"


@pytest.mark.parametrize("field", ["company_size", "consent_email", "seconds_to_fill", "occurred_at"])
def test_wrong_type_detail_never_echoes_the_value(codec, field):
    """A publisher that maps the email into the wrong field must not leak it into the DLQ."""
    error = _decode_error(codec, "form_submitted", _json(**_minimal_form(**{field: EMAIL})))
    assert error.reason_code == "schema_invalid"
    assert error.detail.startswith(f"{field}: expected ")
    assert EMAIL not in error.detail and "acme" not in error.detail


def test_decode_error_codes_are_bounded():
    # The codec's own part of the dead-letter vocabulary (all of it: test_dead_letter_reasons.py).
    assert set(DECODE_REASON_CODES) == {
        "too_large",
        "unknown_encoding",
        "undecodable",
        "unknown_schema_id",
        "schema_invalid",
        "missing_field",
    }
    with pytest.raises(ValueError, match="unknown reason code"):
        DecodeError("too_big", "x")


def test_unknown_subject_is_a_wiring_error(codec):
    with pytest.raises(SchemaRegistryError, match="unknown subject"):
        codec.decode_input("form_submit", b"{}", max_bytes=MAX_BYTES)


def test_decode_rejects_json_and_unknown_ids(codec):
    with pytest.raises(DecodeError) as caught:
        codec.decode(orjson.dumps(SAMPLES["web_activity"]))
    assert caught.value.reason_code == "unknown_encoding"
    with pytest.raises(DecodeError) as caught:
        codec.decode(b"\x00\x00\x00\x00\x01\x00")
    assert caught.value.reason_code == "unknown_schema_id"


# --- encode errors (our bugs, loud) --------------------------------------------------------


def test_encode_names_a_missing_field(codec):
    record = dict(SAMPLES["lead_scored"])
    del record["score"]
    with pytest.raises(EncodeError, match=r"field 'LeadScored\.score' expected double, got missing"):
        codec.encode("lead_scored", record)


def test_encode_names_a_wrong_type_without_the_value(codec):
    record = dict(SAMPLES["lead_qualified"], job_title=12)
    with pytest.raises(
        EncodeError, match=r"field 'LeadQualified\.job_title' expected null or string, got int"
    ) as caught:
        codec.encode("lead_qualified", dict(record, email=EMAIL))
    assert EMAIL not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_encode_checks_nested_shared_types(codec):
    handoff = dict(HANDOFF, last_touches=[{"kind": "page_view", "detail": None, "occurred_at": "now"}])
    with pytest.raises(EncodeError, match=r"Touch\.occurred_at"):
        codec.encode("lead_assigned", dict(SAMPLES["lead_assigned"], handoff=handoff))


@pytest.mark.parametrize(
    "field, value",
    [("event_count", 4.5), ("event_count", True), ("scored_at", datetime(2025, 6, 2)), ("mql", "yes")],
)
def test_encode_refuses_silent_coercions(codec, field, value):
    with pytest.raises(EncodeError, match=field):
        codec.encode("lead_scored", dict(SAMPLES["lead_scored"], **{field: value}))


def test_encode_refuses_fields_not_in_the_schema(codec):
    with pytest.raises(EncodeError, match="fields not in schema v2: scored_at_ms"):
        codec.encode("lead_scored", dict(SAMPLES["lead_scored"], scored_at_ms=1))


def test_encode_unknown_subject(codec):
    with pytest.raises(EncodeError, match="unknown subject 'lead_scoring'"):
        codec.encode("lead_scoring", {})


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=st.sampled_from(INPUT_SUBJECTS), raw=st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_decode_error(codec, subject, raw):
    try:
        codec.decode_input(subject, raw, max_bytes=MAX_BYTES)
    except DecodeError as error:
        assert error.reason_code in DECODE_REASON_CODES


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema_id=st.sampled_from([101, 102, 201, 301]), body=st.binary(max_size=200))
def test_garbage_after_a_valid_header_only_raises_decode_error(codec, schema_id, body):
    subject = codec.registry.by_id(schema_id).subject
    try:
        codec.decode_input(subject, struct.pack(">BI", 0, schema_id) + body, max_bytes=MAX_BYTES)
    except DecodeError as error:
        assert error.reason_code in ("undecodable",)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
form_keys = st.sampled_from(list(SAMPLES["form_submitted"]) + ["extra"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.dictionaries(form_keys, json_values, max_size=12))
def test_arbitrary_json_objects_only_raise_decode_error(codec, document):
    try:
        codec.decode_input("form_submitted", orjson.dumps(document), max_bytes=MAX_BYTES)
    except DecodeError as error:
        assert error.reason_code in ("missing_field", "schema_invalid")


optional_text = st.none() | st.text(max_size=40)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    occurred_at=st.integers(-(2**63), 2**63 - 1),
    email=st.text(max_size=60),
    first_name=optional_text,
    company_size=st.none() | st.integers(-(2**63), 2**63 - 1),
    seconds_to_fill=st.none() | st.floats(allow_nan=False, allow_infinity=False),  # JSON has no inf
    consent=st.booleans(),
)
def test_any_valid_form_round_trips(codec, occurred_at, email, first_name, company_size, seconds_to_fill, consent):
    record = dict(
        SAMPLES["form_submitted"],
        occurred_at=occurred_at,
        email=email,
        first_name=first_name,
        company_size=company_size,
        seconds_to_fill=seconds_to_fill,
        consent_tracking=consent,
    )
    raw = codec.encode("form_submitted", record)
    assert codec.decode_input("form_submitted", raw, max_bytes=MAX_BYTES) == (record, AVRO)
    assert codec.decode_input("form_submitted", orjson.dumps(record), max_bytes=MAX_BYTES) == (record, JSON)


def test_json_output_is_the_validated_record_and_reads_back(codec):
    record = SAMPLES["lead_scored"]
    raw = codec.encode_output("lead_scored", record, "json")
    assert orjson.loads(raw) == record
    assert codec.decode(raw, "lead_scored") == ("lead_scored", record)
    assert codec.encode_output("lead_scored", record, "avro")[:1] == b"\x00"
    with pytest.raises(EncodeError, match="fields not in schema"):
        codec.encode_json("lead_scored", {**record, "typo_field": 1})
    with pytest.raises(DecodeError):
        codec.decode(raw)  # JSON needs the subject (the reader knows it from the topic)


def test_json_output_writes_bytes_as_base64(codec):
    import base64

    letter = {**SAMPLES["dead_letter"], "original": b"\xff\x00raw"}
    assert base64.b64decode(orjson.loads(codec.encode_json("dead_letter", letter))["original"]) == b"\xff\x00raw"
