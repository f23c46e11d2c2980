"""Schema Registry interop, against a real Confluent-compatible registry (Apicurio's ccompat API,
TLS + basic auth) and real Kafka: a publisher using confluent-kafka's AvroSerializer, a real
leadflow worker, and a consumer using confluent-kafka's AvroDeserializer - no leadflow code on
either client side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import yaml
from confluent_kafka import Consumer, Producer  # the `test` extra: a missing install fails, never skips
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from agents.domain.identity import lead_id_for_email
from streams.codec.avro import SchemaRegistry
from streams.settings import REPO_ROOT, load_settings
from tests.integration.conftest import REGISTRY_PASSWORD, REGISTRY_USER, WorkerHarness, ssl_context
from tests.integration.factories import as_json, form_submit, web_activity

pytestmark = pytest.mark.integration


def _registry_client(registry, tls_files) -> SchemaRegistryClient:
    return SchemaRegistryClient(
        {
            "url": registry.url,
            "basic.auth.user.info": f"{REGISTRY_USER}:{REGISTRY_PASSWORD}",
            "ssl.ca.location": str(tls_files.ca),
        }
    )


def _registry_get(registry, tls_files, path: str):
    response = httpx.get(
        f"{registry.url}{path}", auth=(REGISTRY_USER, REGISTRY_PASSWORD), verify=ssl_context(tls_files.ca), timeout=10
    )
    response.raise_for_status()
    return response.json()


def _wait_for_subject(registry, tls_files, subject: str, harness: WorkerHarness, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while subject not in _registry_get(registry, tls_files, "/subjects"):
        assert all(p.running_pid() is not None for p in harness.processes), harness.logs()
        assert time.monotonic() < deadline, f"{subject} never registered\n{harness.logs()}"
        time.sleep(0.5)


def _consume_avro(
    bootstrap: str, topic: str, deserializer: AvroDeserializer, until, harness: WorkerHarness, timeout: float
) -> list[dict]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "t-" + uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(values):
            assert time.monotonic() < deadline, f"timed out on {topic}: {values}\n{harness.logs()}"
            assert all(p.running_pid() is not None for p in harness.processes), harness.logs()
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            values.append(deserializer(message.value(), SerializationContext(topic, MessageField.VALUE)))
    finally:
        consumer.close()
    return values


def test_confluent_serializer_in_leadflow_worker_confluent_deserializer_out(
    stack,
    stack_settings,
    kafka,
    schema_registry,
    schema_registry_overrides,
    tls_files,
    tmp_path,
):
    from tests.integration.test_routing import load_roster

    harness = WorkerHarness(
        stack_settings, tmp_path, redis_key_prefix="t" + uuid.uuid4().hex[:10], **schema_registry_overrides
    )
    load_roster(harness, yaml.safe_load((REPO_ROOT / "config" / "roster.yaml").read_text()))
    harness.start()
    try:
        topics = harness.topics
        # The worker registers leadflow's schemas at start, before it consumes.
        _wait_for_subject(schema_registry, tls_files, f"{topics.assignments}-value", harness)
        mqls_subject = _registry_get(schema_registry, tls_files, f"/subjects/{topics.mqls}-value/versions/latest")
        assert {ref["name"] for ref in mqls_subject["references"]} == {
            "io.leadflow.BreakdownItem",
            "io.leadflow.HandoffContext",
        }

        # A publisher one version ahead of leadflow (an extra field with a default), through
        # confluent-kafka's serializer, which registers its schema as a new subject version.
        publisher_schema = json.loads((REPO_ROOT / "schemas" / "form_submitted.v2.avsc").read_text())
        publisher_schema["fields"].append({"name": "utm_content", "type": ["null", "string"], "default": None})
        client = _registry_client(schema_registry, tls_files)
        serializer = AvroSerializer(client, json.dumps(publisher_schema))
        email = "jo.registry@acme-logistics.com"
        lead = lead_id_for_email(email)
        kafka.produce(
            topics.web_activity,
            [
                as_json(web_activity(email=email)),
                as_json(web_activity(email=email, page_type="demo", url="https://example.com/demo")),
            ],
        )
        form = {**form_submit(email), "utm_content": "hero-banner"}
        producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap})
        producer.produce(
            topics.form_submits, value=serializer(form, SerializationContext(topics.form_submits, MessageField.VALUE))
        )
        # An id no registry knows: a dead letter, not a crash.
        producer.produce(topics.form_submits, value=b"\x00" + (987654).to_bytes(4, "big") + b"\x02xx")
        assert producer.flush(30) == 0

        # leadflow's outputs, read with confluent-kafka's deserializer (ids from the registry,
        # shared types through schema references).
        deserializer = AvroDeserializer(client)
        bootstrap = stack_settings.kafka_bootstrap
        assignments = _consume_avro(
            bootstrap,
            topics.assignments,
            deserializer,
            lambda vs: any(v["lead_id"] == lead for v in vs),
            harness,
            timeout=120,
        )
        [assignment] = [v for v in assignments if v["lead_id"] == lead]
        assert assignment["owner_id"] == "ae-ana" and assignment["rule"] == "account_owner"
        [mql] = [
            v
            for v in _consume_avro(
                bootstrap,
                topics.mqls,
                deserializer,
                lambda vs: any(v["lead_id"] == lead for v in vs),
                harness,
                timeout=30,
            )
            if v["lead_id"] == lead
        ]
        assert mql["event_id"] == assignment["mql_event_id"]
        assert mql["qualified_at"].tzinfo is not None  # timestamp-millis, as declared in the schema
        assert mql["handoff"]["trigger"]

        dead = _consume_avro(bootstrap, topics.dead_letters, deserializer, lambda vs: len(vs) >= 1, harness, timeout=60)
        assert [d["reason_code"] for d in dead] == ["unknown_schema_id"], dead
        assert "987654" in dead[0]["reason"]

        # Outputs carry the registry's ids, not schemas/registry.yaml's.
        latest = _registry_get(schema_registry, tls_files, f"/subjects/{topics.assignments}-value/versions/latest")
        raw = kafka.consume(topics.assignments, decode=False, timeout=10, until=lambda rs: len(rs) >= 1)[0]["value"]
        assert raw[:5] == b"\x00" + int(latest["id"]).to_bytes(4, "big")

        # `leadflow tail` decodes them through the registry too.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
        env.update(harness.env_overrides)
        tailed = subprocess.run(
            [
                sys.executable,
                "-m",
                "leadflow.cli",
                "tail",
                "assignments",
                "--from-beginning",
                "--max",
                "1",
                "--timeout",
                "20",
            ],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=60,
        )
        line = json.loads(tailed.stdout.decode().splitlines()[0])
        assert line["subject"] == "lead_assigned" and line["value"]["lead_id"] == lead, tailed.stderr.decode()
    finally:
        harness.stop_all()


def test_incompatible_schema_change_is_refused_at_start(
    stack,
    stack_settings,
    schema_registry,
    schema_registry_overrides,
    tls_files,
    tmp_path,
):
    """A subject whose registered version the current lead_qualified schema cannot read: the
    worker stops at start with one line naming the subject, before it consumes anything."""
    harness = WorkerHarness(stack_settings, tmp_path, **schema_registry_overrides)
    subject = f"{harness.topics.mqls}-value"
    # Registered earlier by someone else: a lead_qualified without `lead_id`, which leadflow's
    # schema requires without a default (BACKWARD: the new schema must read the old data).
    previous = {
        "type": "record",
        "name": "LeadQualified",
        "namespace": "io.leadflow",
        "fields": [{"name": "event_id", "type": "string"}],
    }
    httpx.post(
        f"{schema_registry.url}/subjects/{subject}/versions",
        json={"schema": json.dumps(previous)},
        auth=(REGISTRY_USER, REGISTRY_PASSWORD),
        verify=ssl_context(tls_files.ca),
        timeout=10,
    ).raise_for_status()

    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(harness.env_overrides)
    result = subprocess.run(
        [sys.executable, "-m", "leadflow.cli", "worker"], env=env, cwd=REPO_ROOT, capture_output=True, timeout=120
    )
    err = result.stderr.decode()
    assert result.returncode != 0
    [line] = [line for line in err.splitlines() if line.startswith("Error:")]
    assert f"subject {subject!r}" in line and "not compatible" in line, err
    # The version refused is leadflow's newest lead_qualified (an existing subject only gets that).
    newest = SchemaRegistry.load().latest("lead_qualified").file.name
    assert newest in line, err
    assert "Traceback" not in err, err
    assert REGISTRY_PASSWORD not in err + result.stdout.decode()


def test_registry_errors_are_one_line_without_credentials(schema_registry, schema_registry_overrides, tls_files):
    from streams.app import build_codec
    from streams.codec import RegistryUnavailable

    wrong = load_settings(
        **{
            **schema_registry_overrides,
            "schema_registry_password_file": None,
            "schema_registry_password": "not-the-password",
        }
    )
    with pytest.raises(RegistryUnavailable) as refused:
        build_codec(wrong, register=True)
    assert "authentication failed" in str(refused.value) and "not-the-password" not in str(refused.value)

    # Credentials in the URL (as Confluent clients accept) are used, and never shown.
    url = schema_registry.url.replace("https://", f"https://{REGISTRY_USER}:{REGISTRY_PASSWORD}@")
    in_url = load_settings(schema_registry_url=url, schema_registry_ca_file=str(tls_files.ca), topic_prefix="t-url")
    build_codec(in_url, register=True)

    untrusted = load_settings(schema_registry_url=url, schema_registry_ca_file=str(tls_files.other_ca))
    with pytest.raises(RegistryUnavailable) as tls_error:
        build_codec(untrusted, register=True)
    text = str(tls_error.value)
    assert "not trusted" in text and REGISTRY_PASSWORD not in text and REGISTRY_USER not in text
    assert "\n" not in text


def test_unreachable_registry_stops_the_worker_in_one_line(stack, stack_settings, tmp_path):
    from tests.integration.conftest import free_port

    url = f"https://{REGISTRY_USER}:{REGISTRY_PASSWORD}@127.0.0.1:{free_port()}/apis/ccompat/v7"
    harness = WorkerHarness(stack_settings, tmp_path, schema_registry_url=url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(harness.env_overrides)
    result = subprocess.run(
        [sys.executable, "-m", "leadflow.cli", "worker"], env=env, cwd=REPO_ROOT, capture_output=True, timeout=120
    )
    output = result.stderr.decode() + result.stdout.decode()
    assert result.returncode != 0
    [line] = [line for line in output.splitlines() if line.startswith("Error:")]
    assert line.startswith("Error: Schema Registry at https://127.0.0.1:") and "cannot connect" in line, output
    assert "Traceback" not in output and REGISTRY_PASSWORD not in output and REGISTRY_USER not in output
