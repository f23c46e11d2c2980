"""lead_qualified v3 (structured facts): older readers still decode what scoring writes now, on
the Avro path (schema resolution) and on the JSON path; older records still read as v3 (defaults),
and routing routes them with unknown firmographics."""

from __future__ import annotations

import json
from io import BytesIO

import fastavro
import orjson
import pytest

from agents.routing.facts import facts_from_mql
from streams.codec import DEFAULT_SCHEMA_DIR, Codec
from streams.codec.json import compile_record_coercer
from tests.unit.agents.scoring.helpers import T0, director_form, of, page, run

V3_FIELDS = ["firmographics", "signals", "form_kinds", "lead_type"]


@pytest.fixture(scope="module")
def mql() -> dict:
    """A LeadQualified exactly as scoring writes it (routing's policy handed over)."""
    _, outputs = run([page(at=T0), director_form(at=T0 + 1)])
    (out,) = of(outputs, "lead_qualified")
    return out.record


def _version(codec: Codec, n: int):
    return next(s for s in codec.registry.versions("lead_qualified") if s.version == n)


def test_v3_is_v2_plus_defaulted_fields():
    v2, v3 = (json.loads((DEFAULT_SCHEMA_DIR / f"lead_qualified.v{n}.avsc").read_text()) for n in (2, 3))
    assert (v3["name"], v3["namespace"]) == (v2["name"], v2["namespace"])
    assert [f["name"] for f in v3["fields"][: len(v2["fields"])]] == [f["name"] for f in v2["fields"]]
    assert [f["type"] for f in v3["fields"][: len(v2["fields"])]] == [f["type"] for f in v2["fields"]]
    added = v3["fields"][len(v2["fields"]) :]
    assert [f["name"] for f in added] == V3_FIELDS
    assert all(f["default"] is None for f in added)


def test_scoring_writes_v3_with_the_facts(codec, mql):
    latest = codec.registry.latest("lead_qualified")
    assert (latest.version, latest.id) == (3, 1103)
    assert mql["firmographics"] == {
        "company_size": 500,
        "industry": "Software",
        "country": "US",
        "segment": "mid_market",
        "fit_grade": "A",
    }
    assert mql["form_kinds"] == ["demo_request"]
    assert {s["signal"] for s in mql["signals"]} == {"pricing_page_visit", "contact_request"}
    assert all(s["points"] > 0 for s in mql["signals"])
    assert (mql["lead_type"], mql["priority_hint"]) == ("demo_request", "P1")
    assert codec.decode(codec.encode("lead_qualified", mql)) == ("lead_qualified", mql)


@pytest.mark.parametrize("version", [1, 2])
def test_older_avro_readers_decode_a_v3_record(codec, mql, version):
    raw = codec.encode("lead_qualified", mql)
    assert raw[1:5] == (1103).to_bytes(4, "big")
    writer, reader = codec.registry.latest("lead_qualified"), _version(codec, version)
    old = fastavro.schemaless_reader(BytesIO(raw[5:]), writer.schema, reader.schema)
    assert old == {name: mql[name] for name in reader.field_names}
    assert not set(V3_FIELDS) & set(old)


@pytest.mark.parametrize("version", [1, 2])
def test_older_json_readers_read_a_v3_json_record(codec, mql, version):
    """LEADFLOW_OUTPUT_FORMAT=json: the record as one JSON object, validated against v3; a reader
    coercing to an older version's shape ignores the new fields (docs/contracts.md)."""
    raw = codec.encode_output("lead_qualified", mql, "json")
    old = compile_record_coercer(_version(codec, version).declared)(orjson.loads(raw))
    assert old == {name: mql[name] for name in _version(codec, version).field_names}
    assert compile_record_coercer(codec.registry.latest("lead_qualified").declared)(orjson.loads(raw)) == mql
    assert codec.decode(raw, "lead_qualified") == ("lead_qualified", mql)


@pytest.mark.parametrize("version", [1, 2])
def test_records_written_before_v3_read_as_v3_without_facts_and_route_with_unknown_firmographics(
    routing_config, codec, mql, version
):
    older = _version(codec, version)
    record = {name: mql[name] for name in older.field_names}
    buffer = BytesIO()
    fastavro.schemaless_writer(buffer, older.schema, record)
    raw = b"\x00" + older.id.to_bytes(4, "big") + buffer.getvalue()
    read, _ = codec.decode_input("lead_qualified", raw, max_bytes=1 << 20)  # resolved to v3
    assert {name: read[name] for name in V3_FIELDS} == dict.fromkeys(V3_FIELDS)
    facts = facts_from_mql(read, routing_config)
    assert (facts.facts_known, facts.country, facts.company_size, facts.industry) == (False, None, None, None)
    assert "contact_request" in facts.signals, "the breakdown's signals (a typed field) still count"
    assert facts_from_mql(mql, routing_config).country == "US", "the control: the v3 record's country is read"
