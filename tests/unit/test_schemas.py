"""The Avro schemas match docs/contracts.md, are documented, evolve safely, and load strictly."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from streams.codec import DEFAULT_SCHEMA_DIR, SchemaRegistry, SchemaRegistryError

SCHEMA_DIR = DEFAULT_SCHEMA_DIR

# Field names, in order, of each subject's latest version (docs/contracts.md).
CONTRACT_FIELDS = {
    "form_submitted": [
        "event_id",
        "occurred_at",
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
        "visitor_id",
        "honeypot",
        "seconds_to_fill",
    ],
    "web_activity": [
        "event_id",
        "occurred_at",
        "visitor_id",
        "email",
        "activity_kind",
        "page_type",
        "url",
        "content_title",
        "utm_source",
        "utm_medium",
        "utm_campaign",
    ],
    "crm_status": [
        "event_id",
        "occurred_at",
        "lead_id",
        "email",
        "rep_id",
        "status",
        "touch_channel",
        "disposition",
        "account_id",
        "account_domain",
    ],
    "lead_scored": [
        "event_id",
        "lead_id",
        "cause_event_id",
        "cause_kind",
        "occurred_at",
        "scored_at",
        "stage",
        "score",
        "ungated_score",
        "gate_passed",
        "gate_failures",
        "fit_score",
        "engagement_score",
        "fit_grade",
        "fit_passed",
        "breakdown",
        "model_version",
        "event_count",
        "first_touch_source",
        "last_touch_source",
        "account_key",
        "mql",
    ],
    "lead_qualified": [
        "event_id",
        "lead_id",
        "email",
        "occurred_at",
        "qualified_at",
        "mql_number",
        "score",
        "fit_grade",
        "fast_track",
        "breakdown",
        "model_version",
        "handoff",
        "first_touch_source",
        "last_touch_source",
        "account_key",
        "company",
        "job_title",
        "priority_hint",
        "cause_received_at",
        "upgrade_of",
        "previous_priority_hint",
        "firmographics",
        "signals",
        "form_kinds",
        "lead_type",
    ],
    "lead_assigned": [
        "event_id",
        "lead_id",
        "mql_event_id",
        "owner_id",
        "owner_name",
        "owner_role",
        "team",
        "priority",
        "assigned_at",
        "first_touch_due_at",
        "rule",
        "reason",
        "is_fallback",
        "audit",
        "handoff",
        "reassigned_from",
        "replaces_assignment_id",
        "cause_event_id",
    ],
    "sla_breached": [
        "event_id",
        "lead_id",
        "assignment_id",
        "owner_id",
        "priority",
        "tier",
        "escalate_to_role",
        "escalate_to_id",
        "due_at",
        "breached_at",
        "minutes_late",
        "action",
        "first_assigned_at",
    ],
    "lead_dispositioned": [
        "event_id",
        "lead_id",
        "occurred_at",
        "status",
        "disposition",
        "outcome",
        "new_stage",
        "score_reset",
        "checkpoints",
        "rep_id",
        "account_id",
        "account_domain",
    ],
    "data_quality_issue": [
        "event_id",
        "lead_id",
        "occurred_at",
        "issue_code",
        "detail",
        "source_event_id",
    ],
    "dead_letter": [
        "event_id",
        "failed_at",
        "source_topic",
        "source_partition",
        "source_offset",
        "source_timestamp",
        "source_key",
        "original",
        "reason_code",
        "reason",
        "original_size",
        "original_sha256",
        "truncated",
    ],
    "lead_erased": [
        "event_id",
        "lead_id",
        "request_event_id",
        "requested_at",
        "erased_at",
        "found",
        "visitors_erased",
        "later_events",
    ],
    "shadow_decision": [
        "event_id",
        "lead_id",
        "direction",
        "cause_event_id",
        "occurred_at",
        "decided_at",
        "live_score",
        "live_model_version",
        "candidate_score",
        "candidate_model_version",
        "first_touch_source",
        "score_band",
    ],
}
TIMESTAMP_FIELDS = {
    "form_submitted": {"occurred_at"},
    "web_activity": {"occurred_at"},
    "crm_status": {"occurred_at"},
    "lead_scored": {"occurred_at", "scored_at"},
    "lead_qualified": {"occurred_at", "qualified_at", "cause_received_at"},
    "lead_assigned": {"assigned_at", "first_touch_due_at"},
    "sla_breached": {"due_at", "breached_at", "first_assigned_at"},
    "lead_dispositioned": {"occurred_at", "checkpoints"},
    "data_quality_issue": {"occurred_at"},
    "dead_letter": {"failed_at", "source_timestamp"},
    "lead_erased": {"requested_at", "erased_at"},
    "shadow_decision": {"occurred_at", "decided_at"},
}
SHARED_TYPES = {"BreakdownItem", "Touch", "HandoffContext", "AuditEntry"}
FORM_V2_ADDITIONS = ["consent_tracking", "visitor_id", "honeypot", "seconds_to_fill"]


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load()


def _raw(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _all_schema_files() -> list[Path]:
    return sorted(SCHEMA_DIR.glob("*.avsc")) + sorted((SCHEMA_DIR / "types").glob("*.avsc"))


def _type_mentions(node) -> list:
    """Every type expression in a raw schema (to find logical types and inline definitions)."""
    found = [node]
    if isinstance(node, list):
        for branch in node:
            found += _type_mentions(branch)
    elif isinstance(node, dict):
        for key in ("items", "values"):
            if key in node:
                found += _type_mentions(node[key])
        for field in node.get("fields", ()):
            found += _type_mentions(field["type"])
    return found


# --- contract ----------------------------------------------------------------------------


def test_registry_has_exactly_the_contract_subjects(registry):
    assert set(registry.subjects) == set(CONTRACT_FIELDS)


@pytest.mark.parametrize("subject", sorted(CONTRACT_FIELDS))
def test_latest_fields_match_the_contract(registry, subject):
    assert list(registry.latest(subject).field_names) == CONTRACT_FIELDS[subject]


@pytest.mark.parametrize("subject", sorted(TIMESTAMP_FIELDS))
def test_time_fields_are_declared_timestamp_millis(registry, subject):
    raw = _raw(registry.latest(subject).file)
    for field in raw["fields"]:
        mentions = _type_mentions(field["type"])
        is_time = any(isinstance(m, dict) and m.get("logicalType") == "timestamp-millis" for m in mentions)
        assert is_time == (field["name"] in TIMESTAMP_FIELDS[subject]), field["name"]


def test_touch_occurred_at_is_a_timestamp():
    touch = _raw(SCHEMA_DIR / "types" / "touch.avsc")
    occurred_at = next(f for f in touch["fields"] if f["name"] == "occurred_at")
    assert occurred_at["type"] == {"type": "long", "logicalType": "timestamp-millis"}


def test_ids_follow_the_documented_numbering(registry):
    ids = {(s, r.version): r.id for s in registry.subjects for r in registry.versions(s)}
    assert ids[("form_submitted", 1)] == 101
    assert ids[("form_submitted", 2)] == 102
    assert ids[("web_activity", 1)] == 201
    assert ids[("crm_status", 1)] == 301
    outputs = [i for (s, _), i in ids.items() if s not in ("form_submitted", "web_activity", "crm_status")]
    assert min(outputs) >= 1001
    assert len(set(ids.values())) == len(ids)
    assert all(0 <= i < 2**32 for i in ids.values())


def test_form_submitted_v2_is_v1_plus_defaulted_fields():
    v1 = _raw(SCHEMA_DIR / "form_submitted.v1.avsc")
    v2 = _raw(SCHEMA_DIR / "form_submitted.v2.avsc")
    assert v1["name"] == v2["name"] and v1["namespace"] == v2["namespace"]
    assert v2["fields"][: len(v1["fields"])] == v1["fields"]
    added = v2["fields"][len(v1["fields"]) :]
    assert [f["name"] for f in added] == FORM_V2_ADDITIONS
    assert all("default" in f for f in added)


def test_every_file_is_registered_or_a_shared_type(registry):
    registered = {r.file.name for s in registry.subjects for r in registry.versions(s)}
    top_level = {p.name for p in SCHEMA_DIR.glob("*.avsc")}
    assert top_level == registered


def test_shared_types_live_in_types_and_are_referenced_by_name():
    type_files = {_raw(p)["name"]: _raw(p) for p in (SCHEMA_DIR / "types").glob("*.avsc")}
    assert set(type_files) == SHARED_TYPES
    assert all(t["namespace"] == "io.leadflow" for t in type_files.values())
    for path in SCHEMA_DIR.glob("*.avsc"):
        for mention in _type_mentions(_raw(path)):
            if isinstance(mention, dict) and mention.get("type") == "record":
                assert mention["name"] not in SHARED_TYPES, f"{path.name} redefines {mention['name']}"


@pytest.mark.parametrize("path", _all_schema_files(), ids=lambda p: p.name)
def test_every_record_and_field_is_documented(path):
    for mention in _type_mentions(_raw(path)):
        if isinstance(mention, dict) and mention.get("type") == "record":
            assert mention.get("doc", "").strip(), f"{path.name}: record {mention['name']} has no doc"
            assert mention.get("namespace", "io.leadflow") == "io.leadflow"
            for field in mention["fields"]:
                assert field.get("doc", "").strip(), f"{path.name}: field {field['name']} has no doc"


@pytest.mark.parametrize("path", _all_schema_files(), ids=lambda p: p.name)
def test_optional_fields_default_to_null(path):
    """Nullable fields default to null so later versions can drop or reorder them."""
    for mention in _type_mentions(_raw(path)):
        if isinstance(mention, dict) and mention.get("type") == "record":
            for field in mention["fields"]:
                if isinstance(field["type"], list) and "null" in field["type"]:
                    assert field["type"][0] == "null" and field.get("default", "absent") is None, field["name"]


# --- loading ---------------------------------------------------------------------------


def test_lookups(registry):
    latest = registry.latest("form_submitted")
    assert (latest.id, latest.subject, latest.version) == (102, "form_submitted", 2)
    assert registry.by_id(101).version == 1
    assert registry.get(999_999) is None
    assert [r.version for r in registry.versions("form_submitted")] == [1, 2]
    with pytest.raises(SchemaRegistryError, match="unknown subject 'nope'"):
        registry.latest("nope")
    with pytest.raises(SchemaRegistryError, match="schema id 7 is not registered"):
        registry.by_id(7)


def test_registered_schema_is_frozen(registry):
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.latest("web_activity").id = 1  # type: ignore[misc]


def test_wire_schema_has_no_time_annotations_but_declared_keeps_them(registry):
    latest = registry.latest("lead_scored")
    assert "timestamp-millis" not in json.dumps(latest.schema)
    assert "timestamp-millis" in json.dumps(latest.declared)


@pytest.fixture
def schema_copy(tmp_path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, target)
    return target


def _edit_json(path: Path, edit) -> None:
    data = _raw(path)
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_copy_loads(schema_copy):
    assert SchemaRegistry.load(schema_copy).latest("form_submitted").id == 102


def test_bad_yaml_names_the_registry_file(schema_copy):
    (schema_copy / "registry.yaml").write_text("form_submitted: [\n", encoding="utf-8")
    with pytest.raises(SchemaRegistryError, match=r"registry\.yaml: not valid YAML"):
        SchemaRegistry.load(schema_copy)


def test_missing_schema_file_is_named(schema_copy):
    (schema_copy / "web_activity.v1.avsc").unlink()
    with pytest.raises(SchemaRegistryError, match=r"web_activity\.v1\.avsc: cannot read"):
        SchemaRegistry.load(schema_copy)


def test_invalid_json_is_named(schema_copy):
    (schema_copy / "crm_status.v1.avsc").write_text('{"type": "record",', encoding="utf-8")
    with pytest.raises(SchemaRegistryError, match=r"crm_status\.v1\.avsc: not valid JSON"):
        SchemaRegistry.load(schema_copy)


def test_misspelt_type_is_named(schema_copy):
    _edit_json(schema_copy / "sla_breached.v1.avsc", lambda s: s["fields"][0].update(type="strnig"))
    with pytest.raises(
        SchemaRegistryError, match=r"sla_breached\.v1\.avsc: references unknown type 'io\.leadflow\.strnig'"
    ):
        SchemaRegistry.load(schema_copy)


def test_invalid_avro_is_named(schema_copy):
    _edit_json(schema_copy / "dead_letter.v1.avsc", lambda s: s["fields"][2].update(default=5))
    with pytest.raises(SchemaRegistryError, match=r"dead_letter\.v1\.avsc: not a valid Avro schema"):
        SchemaRegistry.load(schema_copy)


def test_unknown_shared_type_reference_is_named(schema_copy):
    _edit_json(
        schema_copy / "types" / "handoff_context.avsc",
        lambda s: s["fields"][3]["type"].update(items="io.leadflow.Tuch"),
    )
    with pytest.raises(SchemaRegistryError, match=r"handoff_context\.avsc: references unknown type"):
        SchemaRegistry.load(schema_copy)


def test_duplicate_id_is_rejected(schema_copy):
    path = schema_copy / "registry.yaml"
    path.write_text(path.read_text().replace("id: 201", "id: 101"), encoding="utf-8")
    with pytest.raises(SchemaRegistryError, match="id 101 is already used by form_submitted v1"):
        SchemaRegistry.load(schema_copy)


@pytest.mark.parametrize("bad_id", ["-1", "4294967296", "'101'", "true"])
def test_id_must_be_uint32(schema_copy, bad_id):
    path = schema_copy / "registry.yaml"
    path.write_text(path.read_text().replace("id: 301", f"id: {bad_id}"), encoding="utf-8")
    with pytest.raises(SchemaRegistryError, match="must be a uint32"):
        SchemaRegistry.load(schema_copy)


def test_new_field_without_default_breaks_evolution(schema_copy):
    _edit_json(schema_copy / "form_submitted.v2.avsc", lambda s: s["fields"][-1].pop("default"))
    with pytest.raises(SchemaRegistryError, match=r"form_submitted\.v2\.avsc: field 'seconds_to_fill' is new"):
        SchemaRegistry.load(schema_copy)


def test_renamed_record_breaks_evolution(schema_copy):
    _edit_json(schema_copy / "form_submitted.v2.avsc", lambda s: s.update(name="FormSubmittedV2"))
    with pytest.raises(SchemaRegistryError, match="differs from"):
        SchemaRegistry.load(schema_copy)
