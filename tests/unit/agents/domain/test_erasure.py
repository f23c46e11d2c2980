"""Erasure on request and keyed lead ids: the pure parts (identity, request, suppression keys,
lead_erased record), the settings that drive them and the topic configuration."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from agents.capture import CaptureLimits, to_lead_event
from agents.domain.erasure import (
    ERASURE_REQUESTED,
    ForgetTargetError,
    erasure_request,
    is_erasure,
    lead_erased_record,
    lead_id_of_target,
    suppression_key,
)
from agents.domain.identity import lead_id_for_email
from streams.codec import Codec, SchemaRegistry
from streams.settings import SettingsError, load_settings
from streams.topics import TABLE_NAMES, TopicNames, changelog_topics, topic_config

NOW = 1_748_865_600_000
EMAIL = "jane.doe@acme-corp.com"
KEY = b"a-32-byte-secret-for-lead-ids!!!"
LEAD_ID = re.compile(r"^ld_[0-9a-f]{20}$")
MODEL_PATH = Path(__file__).resolve().parents[4] / "config" / "scoring-model.yaml"


# --- keyed lead ids ------------------------------------------------------------------------------


def test_unkeyed_id_is_unchanged_from_earlier_versions():
    assert lead_id_for_email(EMAIL) == "ld_" + hashlib.blake2b(EMAIL.encode(), digest_size=10).hexdigest()


def test_keyed_id_has_the_same_shape_but_cannot_be_recomputed_without_the_key():
    keyed = lead_id_for_email(EMAIL, KEY)
    assert LEAD_ID.match(keyed)
    assert keyed != lead_id_for_email(EMAIL)
    assert keyed != lead_id_for_email(EMAIL, b"another key")
    assert keyed == lead_id_for_email(EMAIL, KEY)  # deterministic: the same email is the same lead


def test_capture_derives_keyed_ids_with_the_configured_key():
    record = {"event_id": "f-1", "occurred_at": NOW, "form_id": "demo", "form_kind": "demo_request", "email": EMAIL}
    event = to_lead_event(
        "form_submitted",
        record,
        "json",
        raw=b"{}",
        received_at_ms=NOW,
        now_ms=NOW,
        limits=CaptureLimits(lead_id_key=KEY),
    )
    assert event.lead_id == lead_id_for_email(EMAIL, KEY)
    crm = {"event_id": "c-1", "occurred_at": NOW, "email": EMAIL, "status": "working"}
    event = to_lead_event(
        "crm_status", crm, "json", raw=b"{}", received_at_ms=NOW, now_ms=NOW, limits=CaptureLimits(lead_id_key=KEY)
    )
    assert event.lead_id == lead_id_for_email(EMAIL, KEY)


def test_settings_carry_the_key_to_the_capture_limits(tmp_path):
    path = tmp_path / "lead-id-key"
    path.write_text(KEY.decode() + "\n")
    settings = load_settings(lead_id_key_file=str(path))
    assert settings.lead_id_key_bytes == KEY
    assert CaptureLimits.from_settings(settings).lead_id_key == KEY
    assert load_settings().lead_id_key_bytes is None  # default: unkeyed, as before
    assert KEY.decode() not in repr(load_settings(lead_id_key=KEY.decode()))


def test_suppress_mode_needs_a_key_and_says_which():
    with pytest.raises(SettingsError, match="LEADFLOW_ERASURE_MODE=suppress needs .*LEADFLOW_LEAD_ID_KEY"):
        load_settings(erasure_mode="suppress")
    assert load_settings(erasure_mode="suppress", lead_id_key="k").suppression_key_bytes == b"k"
    assert load_settings(erasure_mode="suppress", suppression_key="s", lead_id_key="k").suppression_key_bytes == b"s"


def test_key_and_key_file_together_are_refused_without_echoing_the_key(tmp_path):
    path = tmp_path / "k"
    path.write_text("x")
    with pytest.raises(SettingsError) as err:
        load_settings(lead_id_key="top-secret-value", lead_id_key_file=str(path))
    assert "LEADFLOW_LEAD_ID_KEY or LEADFLOW_LEAD_ID_KEY_FILE" in str(err.value)
    assert "top-secret-value" not in str(err.value)


# --- forget target and request ---------------------------------------------------------------------


def test_forget_target_is_a_lead_id_or_the_keyed_id_of_an_email():
    lead = lead_id_for_email(EMAIL, KEY)
    assert lead_id_of_target(lead.upper().replace("LD_", "ld_"), KEY) == lead
    assert lead_id_of_target("  Jane.Doe@ACME-corp.com ", KEY) == lead
    assert lead_id_of_target(EMAIL, None) == lead_id_for_email(EMAIL)


@pytest.mark.parametrize("bad", ["", "ld_123", "jane doe", "jane@@acme", "x@"])
def test_a_bad_forget_target_is_refused_without_repeating_it(bad):
    with pytest.raises(ForgetTargetError) as err:
        lead_id_of_target(bad, None)
    assert (bad.strip() or "\0") not in str(err.value)


def test_the_erasure_request_carries_the_lead_id_only_and_capture_accepts_it():
    lead = lead_id_for_email(EMAIL)
    record = erasure_request(lead, requested_at_ms=NOW, event_id="erasure-1", requested_by="dpo-ticket-7")
    assert "email" not in record and record["status"] == ERASURE_REQUESTED
    Codec(SchemaRegistry.load()).encode("crm_status", record)  # valid against the input contract
    event = to_lead_event(
        "crm_status", record, "json", raw=b"{}", received_at_ms=NOW, now_ms=NOW, limits=CaptureLimits()
    )
    assert event.lead_id == lead and is_erasure(event)
    other = to_lead_event(
        "crm_status",
        {**record, "status": "working"},
        "json",
        raw=b"{}",
        received_at_ms=NOW,
        now_ms=NOW,
        limits=CaptureLimits(),
    )
    assert not is_erasure(other)


# --- suppression list and lead_erased --------------------------------------------------------------


def test_suppression_keys_are_keyed_and_reveal_neither_the_id_nor_the_email():
    lead = lead_id_for_email(EMAIL)
    k = suppression_key(lead, KEY)
    assert k.startswith(b"sp_") and k == suppression_key(lead, KEY)
    assert k != suppression_key(lead, b"other") and k != suppression_key(lead_id_for_email("x@y.com"), KEY)
    assert lead.encode()[3:] not in k and EMAIL.encode() not in k


def test_lead_erased_record_is_deterministic_valid_avro_and_has_no_personal_fields():
    record = erasure_request(lead_id_for_email(EMAIL), requested_at_ms=NOW, event_id="erasure-1")
    event = to_lead_event(
        "crm_status", record, "json", raw=b"{}", received_at_ms=NOW, now_ms=NOW, limits=CaptureLimits()
    )
    out = lead_erased_record(event, erased_at_ms=NOW + 5, found=True, visitors=2, mode="suppress")
    assert out == lead_erased_record(event, erased_at_ms=NOW + 5, found=True, visitors=2, mode="suppress")
    assert out["event_id"].startswith("er_") and out["lead_id"] == event.lead_id and out["later_events"] == "suppress"
    codec = Codec(SchemaRegistry.load())
    assert codec.decode(codec.encode("lead_erased", out)) == ("lead_erased", out)
    assert "jane" not in repr(out).lower()
    with pytest.raises(ValueError, match="erasure mode"):
        lead_erased_record(event, erased_at_ms=NOW, found=False, visitors=0, mode="forget")


# --- topics ----------------------------------------------------------------------------------------


def test_topics_are_created_with_retention_and_compaction_from_the_settings():
    settings = load_settings(
        internal_retention_hours=48,
        io_retention_hours=-1,
        changelog_max_compaction_lag_hours=2,
        changelog_tombstone_retention_hours=3,
    )
    names = TopicNames.from_settings(settings)
    for topic in (names.lead_events, names.visitor_events, names.sla_commands, names.dead_letters):
        assert topic_config(settings, topic) == {"cleanup.policy": "delete", "retention.ms": str(48 * 3_600_000)}
    assert topic_config(settings, names.mqls)["retention.ms"] == "-1"
    assert topic_config(load_settings(), names.erasures)["retention.ms"] == str(168 * 3_600_000)
    [changelog] = [t for t in changelog_topics(settings) if "lead_to_state" in t]
    assert changelog == f"{settings.app_id}-lead_to_state-changelog"
    assert topic_config(settings, changelog) == {
        "cleanup.policy": "compact",
        "max.compaction.lag.ms": str(2 * 3_600_000),
        "delete.retention.ms": str(3 * 3_600_000),
    }


def test_table_names_match_the_tables_the_app_creates(tmp_path):
    from leadflow.compose import create_app
    from streams.codec import Codec

    settings = load_settings(store="memory://", data_dir=str(tmp_path))
    pipeline = create_app(settings, codec=Codec(SchemaRegistry.load()))
    assert sorted(pipeline.tables) == sorted(t for t in TABLE_NAMES if t != "lead_to_shadow_state")
    candidate = tmp_path / "candidate.yaml"  # the shadow model's table exists only with one
    candidate.write_text(re.sub(r"(?m)^version: .*$", "version: candidate", MODEL_PATH.read_text()))
    with_shadow = create_app(
        load_settings(store="memory://", data_dir=str(tmp_path / "shadow"), shadow_model_path=candidate),
        codec=Codec(SchemaRegistry.load()),
    )
    assert sorted(with_shadow.tables) == sorted(TABLE_NAMES)
