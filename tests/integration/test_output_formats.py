"""output_format=json: every output is one JSON object with the Avro field names, for sinks
without Avro (Kafka Connect's JsonConverter with schemas.enable=false, HTTP sinks). leadflow's
own agents read the JSON MQLs and assignments back, so routing and SLAs work the same."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import orjson
import pytest

from agents.domain.identity import lead_id_for_email
from streams.settings import REPO_ROOT
from tests.integration.factories import as_json, form_submit, web_activity

pytestmark = pytest.mark.integration


def _json_values(kafka, topic, lead_id, *, timeout, workers):
    out = kafka.consume(
        topic,
        decode=False,
        timeout=timeout,
        until=workers.watch(
            lambda rs: any(orjson.loads(r["value"]).get("lead_id") == lead_id for r in rs if r["value"][:1] == b"{")
        ),
    )
    return [orjson.loads(r["value"]) for r in out if orjson.loads(r["value"]).get("lead_id") == lead_id]


def test_json_outputs_end_to_end(stack, kafka, stack_settings, tmp_path):
    import uuid

    import yaml

    from tests.integration.conftest import WorkerHarness
    from tests.integration.test_routing import load_roster  # the routing tests' roster loader

    harness = WorkerHarness(
        stack_settings, tmp_path, output_format="json", redis_key_prefix="t" + uuid.uuid4().hex[:10]
    )
    load_roster(harness, yaml.safe_load((REPO_ROOT / "config" / "roster.yaml").read_text()))
    harness.start()
    try:
        email = "jo.json@acme-logistics.com"
        lead = lead_id_for_email(email)
        kafka.produce(
            harness.topics.web_activity,
            [
                as_json(web_activity(email=email)),
                as_json(web_activity(email=email, page_type="demo", url="https://example.com/demo")),
            ],
        )
        kafka.produce(harness.topics.form_submits, [as_json(form_submit(email))])
        assignments = _json_values(kafka, harness.topics.assignments, lead, timeout=120, workers=harness)
        assert len(assignments) == 1, harness.logs()
        [assignment] = assignments
        assert assignment["owner_id"] == "ae-ana" and assignment["rule"] == "account_owner"
        [mql] = _json_values(kafka, harness.topics.mqls, lead, timeout=10, workers=harness)
        assert assignment["mql_event_id"] == mql["event_id"] and isinstance(mql["qualified_at"], int)
        scored = _json_values(kafka, harness.topics.lead_scored, lead, timeout=10, workers=harness)
        assert scored and {"score", "gate_passed", "breakdown"} <= set(scored[-1])

        # A dead letter in JSON carries the original bytes as base64.
        kafka.produce(harness.topics.form_submits, [b"\xff\xfenot json"])
        dead = kafka.consume(
            harness.topics.dead_letters, decode=False, timeout=60, until=harness.watch(lambda rs: len(rs) >= 1)
        )
        letter = orjson.loads(dead[0]["value"])
        assert letter["reason_code"] == "unknown_encoding"
        assert base64.b64decode(letter["original"]) == b"\xff\xfenot json"

        # `leadflow tail` shows JSON outputs decoded like Avro ones.
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
        line = orjson.loads(tailed.stdout.decode().splitlines()[0])
        assert line["subject"] == "lead_assigned" and line["value"]["lead_id"] == lead
    finally:
        harness.stop_all()
