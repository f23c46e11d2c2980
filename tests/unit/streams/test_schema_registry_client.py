"""Schema Registry support without a server: the REST client's errors (via httpx.MockTransport),
schema references, the codec's remote-id mode (an in-memory stand-in for the REST API), the
settings and the dev-stack config. The interop proof against a real registry is
tests/integration/test_schema_registry.py."""

from __future__ import annotations

import io
import itertools
import json

import fastavro
import httpx
import pytest

from leadflow.devstack.exceptions import DevStackError
from leadflow.devstack.schema_registry import RegistryTls, _runner_jar, render_application_properties
from streams.codec import Codec, DecodeError, RegistryClient, RegistryUnavailable, RemoteSchemas, SchemaRegistry
from streams.codec.avro import DEFAULT_SCHEMA_DIR
from streams.codec.exceptions import SchemaIncompatible
from streams.codec.registry_client import Reference, RemoteSchema, display_url
from streams.codec.remote import _dependency_order, _referenced_names
from streams.settings import SettingsError, load_settings
from streams.topics import TopicNames
from tests.unit.streams.test_codec import SAMPLES

URL = "https://svc-user:pa55-word@registry.example:8081/apis/ccompat/v7/"


def _client(handler) -> RegistryClient:
    return RegistryClient(URL, transport=httpx.MockTransport(handler))


# --- the REST client ---------------------------------------------------------------------


def test_display_url_drops_user_info_and_trailing_slash():
    assert display_url(URL) == "https://registry.example:8081/apis/ccompat/v7"
    assert display_url("http://host:8081") == "http://host:8081"


def test_credentials_in_the_url_become_basic_auth_and_never_appear_in_errors():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers.get("authorization")
        seen["url"] = str(request.url)
        return httpx.Response(401, json={"message": "unauthorized", "error_code": 401})

    with pytest.raises(RegistryUnavailable) as error:
        _client(handler).schema_by_id(1)
    text = str(error.value)
    assert "authentication failed" in text and "LEADFLOW_SCHEMA_REGISTRY_PASSWORD" in text
    assert "pa55-word" not in text and "svc-user" not in text and "\n" not in text
    assert seen["auth"] == httpx.BasicAuth("svc-user", "pa55-word")._auth_header
    assert "pa55-word" not in seen["url"]


def test_unreachable_registry_is_one_line_naming_the_url():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(RegistryUnavailable) as error:
        _client(handler).subject_versions("x-value")
    assert str(error.value) == (
        "Schema Registry at https://registry.example:8081/apis/ccompat/v7: cannot connect "
        "([Errno 111] Connection refused)"
    )


def test_a_409_on_register_is_an_incompatible_schema_naming_the_subject():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"message": "Incompatible artifact: [newreq at /fields/3]", "error_code": 409})

    with pytest.raises(SchemaIncompatible) as error:
        _client(handler).register("p.out.mqls-value", "{}")
    assert "'p.out.mqls-value'" in str(error.value) and error.value.detail.startswith("Incompatible artifact")


def test_not_found_is_none_and_other_errors_are_unavailable():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ids/7"):
            return httpx.Response(404, json={"message": "No content with ID '7'", "error_code": 40403})
        return httpx.Response(500, text="<html>oops</html>")

    client = _client(handler)
    assert client.schema_by_id(7) is None
    with pytest.raises(RegistryUnavailable, match="HTTP 500"):
        client.schema_by_id(8)


def test_schema_by_id_reads_references():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"].startswith("application/vnd.schemaregistry.v1+json")
        return httpx.Response(
            200,
            json={
                "schema": '"string"',
                "references": [{"name": "io.leadflow.Touch", "subject": "io.leadflow.Touch", "version": 2}],
            },
        )

    remote = _client(handler).schema_by_id(3)
    assert remote == RemoteSchema(3, '"string"', (Reference("io.leadflow.Touch", "io.leadflow.Touch", 2),))


# --- references between leadflow's schemas ---------------------------------------------------


def _raw(name: str) -> dict:
    return json.loads((DEFAULT_SCHEMA_DIR / name).read_text())


def test_referenced_names_are_the_shared_types_used_by_name():
    assert _referenced_names(_raw("lead_qualified.v1.avsc")) >= {
        "io.leadflow.BreakdownItem",
        "io.leadflow.HandoffContext",
    }
    assert "io.leadflow.Touch" in _referenced_names(_raw("types/handoff_context.avsc"))
    # A type defined inline is not a reference.
    assert "io.leadflow.GateFailure" not in _referenced_names(_raw("lead_scored.v2.avsc"))


def test_shared_types_register_referenced_ones_first():
    raw_types = {
        f"io.leadflow.{p.stem.title().replace('_', '')}": (p, json.loads(p.read_text()))
        for p in (DEFAULT_SCHEMA_DIR / "types").glob("*.avsc")
    }
    order = list(_dependency_order(raw_types))
    assert sorted(order) == sorted(raw_types)
    assert order.index("io.leadflow.Touch") < order.index("io.leadflow.HandoffContext")


# --- the codec with a registry's ids -----------------------------------------------------------


class InMemoryRegistryApi:
    """Just enough of the REST API, in memory (ids, subjects, references), for the codec logic."""

    def __init__(self, first_id: int = 40) -> None:
        self.ids = itertools.count(first_id)
        self.schemas: dict[int, RemoteSchema] = {}
        self.subjects: dict[str, list[int]] = {}
        self.by_id_calls = 0
        self.down = False
        self.url = "https://registry.example/apis/ccompat/v7"

    def _find(self, subject, schema, references):
        for version, schema_id in enumerate(self.subjects.get(subject, []), start=1):
            known = self.schemas[schema_id]
            if known.schema == schema and known.references == tuple(references):
                return RemoteSchema(schema_id, schema, tuple(references), version=version)
        return None

    def lookup(self, subject, schema, references=()):
        return self._find(subject, schema, references)

    def register(self, subject, schema, references=()):
        found = self._find(subject, schema, references)
        if found:
            return found.id
        schema_id = next(self.ids)
        self.schemas[schema_id] = RemoteSchema(schema_id, schema, tuple(references))
        self.subjects.setdefault(subject, []).append(schema_id)
        return schema_id

    def subject_versions(self, subject):
        return list(range(1, len(self.subjects[subject]) + 1)) if subject in self.subjects else None

    def schema_by_id(self, schema_id):
        self.by_id_calls += 1
        if self.down:
            raise RegistryUnavailable(f"Schema Registry at {self.url}: cannot connect (refused)")
        return self.schemas.get(schema_id)

    def subject_version(self, subject, version):
        return self.schemas[self.subjects[subject][version - 1]]


@pytest.fixture
def api() -> InMemoryRegistryApi:
    return InMemoryRegistryApi()


def _remote_codec(api, clock=lambda: 0.0) -> Codec:
    names = TopicNames.from_settings(load_settings(topic_prefix="p"))
    return Codec(SchemaRegistry.load(), RemoteSchemas(api, names.value_subjects(), clock=clock))


def test_registration_uses_topic_subjects_and_shared_type_references(api):
    codec = _remote_codec(api)
    codec.register_schemas()
    assert {"p.in.form-submits-value", "p.out.mqls-value", "p.dlq-value", "io.leadflow.BreakdownItem"} <= set(
        api.subjects
    )
    assert len(api.subjects["p.in.form-submits-value"]) == 2  # a new subject gets leadflow's history
    *_, mql_id = api.subjects["p.out.mqls-value"]  # the latest version (lead_qualified v2)
    assert {r.name for r in api.schemas[mql_id].references} == {
        "io.leadflow.BreakdownItem",
        "io.leadflow.HandoffContext",
    }
    payload = codec.encode("lead_qualified", SAMPLES["lead_qualified"])
    assert payload[:5] == b"\x00" + mql_id.to_bytes(4, "big")
    assert codec.decode(payload) == ("lead_qualified", SAMPLES["lead_qualified"])
    # Idempotent: a restart registers nothing new.
    before = {s: list(v) for s, v in api.subjects.items()}
    _remote_codec(api).register_schemas()
    assert api.subjects == before


def test_encode_registers_on_first_use(api):
    payload = _remote_codec(api).encode("lead_scored", SAMPLES["lead_scored"])
    assert int.from_bytes(payload[1:5], "big") == api.subjects["p.out.lead-scored-value"][-1]


def test_file_registry_ids_mean_nothing_with_a_remote_registry(api):
    file_framed = Codec(SchemaRegistry.load()).encode("form_submitted", SAMPLES["form_submitted"])
    with pytest.raises(DecodeError) as error:
        _remote_codec(api).decode_input("form_submitted", file_framed, max_bytes=1 << 20)
    assert error.value.reason_code == "unknown_schema_id" and "is not registered" in error.value.detail


def test_a_publishers_newer_schema_is_fetched_once_and_resolved_to_ours(api):
    _remote_codec(api).register_schemas()  # leadflow registered first, as at start
    newer = _raw("form_submitted.v2.avsc")
    newer["fields"].append({"name": "utm_content", "type": ["null", "string"], "default": None})
    schema_id = api.register("p.in.form-submits-value", json.dumps(newer))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(newer), {**SAMPLES["form_submitted"], "utm_content": "hero"})
    raw = b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()

    codec = _remote_codec(api)  # a reader that has not registered (e.g. `leadflow tail`)
    for _ in range(3):
        record, encoding = codec.decode_input("form_submitted", raw, max_bytes=1 << 20)
        assert encoding == "avro" and record == SAMPLES["form_submitted"]  # extra field dropped by resolution
    assert api.by_id_calls == 1


def test_an_unknown_id_is_a_dead_letter_and_asked_again_only_after_a_while(api):
    now = [0.0]
    codec = _remote_codec(api, clock=lambda: now[0])
    raw = b"\x00" + (999).to_bytes(4, "big") + b"\x02"
    for _ in range(3):
        with pytest.raises(DecodeError) as error:
            codec.decode_input("form_submitted", raw, max_bytes=1 << 20)
        assert error.value.reason_code == "unknown_schema_id" and "999" in error.value.detail
    assert api.by_id_calls == 1
    now[0] = 31.0
    with pytest.raises(DecodeError):
        codec.decode_input("form_submitted", raw, max_bytes=1 << 20)
    assert api.by_id_calls == 2


def test_an_unreachable_registry_dead_letters_the_message_with_the_cause(api):
    api.down = True
    with pytest.raises(DecodeError) as error:
        _remote_codec(api).decode_input("form_submitted", b"\x00\x00\x00\x00\x07\x02", max_bytes=1 << 20)
    assert error.value.reason_code == "unknown_schema_id" and "cannot connect" in error.value.detail


def test_another_subjects_schema_is_refused(api):
    _remote_codec(api).register_schemas()
    [web_id] = api.subjects["p.in.web-activity-value"]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(_raw("web_activity.v1.avsc")), SAMPLES["web_activity"])
    with pytest.raises(DecodeError) as error:
        _remote_codec(api).decode_input(
            "form_submitted", b"\x00" + web_id.to_bytes(4, "big") + body.getvalue(), max_bytes=1 << 20
        )
    assert "registered for web_activity, not form_submitted" in error.value.detail


def test_refused_registration_names_the_subject_and_the_file(api):
    def refuse(subject, schema, references=()):
        raise SchemaIncompatible("409", detail="Incompatible artifact")

    api.register = refuse
    with pytest.raises(SchemaIncompatible) as error:
        _remote_codec(api).register_schemas()
    text = str(error.value)
    assert "'io.leadflow." in text or "-value'" in text
    assert ".avsc" in text and "Incompatible artifact" in text and "\n" not in text


# --- settings and the dev-stack registry --------------------------------------------------------


def test_registry_url_setting_is_validated_without_echoing_it():
    with pytest.raises(SettingsError) as error:
        load_settings(schema_registry_url="ftp://user:secret@host")
    assert "secret" not in str(error.value)
    assert load_settings(schema_registry_url="").schema_registry_url is None
    assert load_settings(schema_registry_url="http://h:8081/").schema_registry_url == "http://h:8081"


def test_registry_password_from_a_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    settings = load_settings(schema_registry_url="https://h", schema_registry_password_file=secret)
    assert settings.schema_registry_password_value == "from-file"


def test_dev_registry_config_has_tls_basic_auth_and_escaped_passwords(tmp_path):
    text = render_application_properties(
        port=8443, tls=RegistryTls(tmp_path / "c.pem", tmp_path / "k.pem"), users={"svc": " a\\b"}
    )
    assert "quarkus.http.ssl-port=8443" in text and "quarkus.http.insecure-requests=disabled" in text
    assert "quarkus.security.users.embedded.users.svc=\\ a\\\\b" in text
    assert "quarkus.http.auth.permission.registry.policy=authenticated" in text
    with pytest.raises(DevStackError):
        render_application_properties(port=1, users={"svc": "${env:HOME}"})
    with pytest.raises(DevStackError):
        render_application_properties(port=1, users={"bad name": "x"})


def test_runner_jar_layouts(tmp_path):
    assert _runner_jar(tmp_path / "missing") is None
    (tmp_path / "lib").mkdir()
    (tmp_path / "apicurio-registry-app-3.0.9-runner.jar").touch()
    assert _runner_jar(tmp_path).name == "apicurio-registry-app-3.0.9-runner.jar"
    (tmp_path / "quarkus-run.jar").touch()
    assert _runner_jar(tmp_path).name == "quarkus-run.jar"
