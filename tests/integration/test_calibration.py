"""`leadflow calibrate` through real Kafka: simulated MQLs (half framed Avro, half JSON) on the
MQL topic and CRM statuses (JSON; one identified by email only) on the CRM input topic; the
command's cohort must be the one the same records give in memory, and its model file must load."""

from __future__ import annotations

import asyncio
import re
import uuid

import orjson
import pytest

from agents.scoring.model import load_model
from leadflow.calibration.cohort import Outcome, build_cohort
from leadflow.calibration.sources import handoff_from_record
from leadflow.simulator.history import simulate_history
from streams.codec import Codec, SchemaRegistry
from streams.settings import REPO_ROOT, load_settings
from streams.topics import TopicNames, ensure_topics
from tests.integration.test_security import cli
from tests.repo_config import default_scoring_model

pytestmark = pytest.mark.integration


def test_calibrate_reads_mqls_and_crm_outcomes_from_kafka(stack, stack_settings, kafka, tmp_path):
    live = default_scoring_model()
    prefix = "cal" + uuid.uuid4().hex[:8]
    settings = load_settings(kafka_bootstrap=stack_settings.kafka_bootstrap, topic_prefix=prefix)
    asyncio.run(ensure_topics(settings))
    names = TopicNames.from_settings(settings)
    history = simulate_history(
        seed=5, events=4_000, model=live, mix={"smb_buyer": 1.0}, signal_lift={"docs_page_visit": 6}
    )
    codec = Codec(SchemaRegistry.load())
    mqls = [
        codec.encode("lead_qualified", r) if i % 2 else codec.encode_json("lead_qualified", r)
        for i, r in enumerate(history.mqls)
    ]
    # One outcome arrives by email, as a CRM without leadflow's ids would send it.
    by_email = next(r for r in history.crm if r["status"] == "sql")
    email = next(m["email"] for m in history.mqls if m["lead_id"] == by_email["lead_id"])
    crm = [{**r, "lead_id": None, "email": email} if r is by_email else r for r in history.crm]
    kafka.produce(names.mqls, mqls)
    kafka.produce(names.crm_status, [orjson.dumps(r) for r in crm])

    expected = build_cohort(
        [h for h in map(handoff_from_record, history.mqls) if h is not None],
        [Outcome(r["lead_id"], r["event_id"], r["occurred_at"], r["status"], r["disposition"]) for r in history.crm],
    )
    assert 200 <= len(history.mqls) and expected.decided >= 60
    out, html = tmp_path / "calibrated.yaml", tmp_path / "report.html"
    env = {"kafka_bootstrap": stack_settings.kafka_bootstrap, "topic_prefix": prefix, "calibration_min_outcomes": "50"}
    result = cli(
        ["calibrate", "--refit", "--out", str(out), "--version", "it-1", "--html", str(html)], env, timeout=120
    )
    text = result.stdout.decode()
    assert result.returncode == 0, text + result.stderr.decode()
    assert f"read {len(history.mqls):,} MQLs and {len(history.crm):,} CRM statuses" in text
    assert f"{expected.decided:,} ({expected.converted:,} converted" in text
    assert re.search(r"Proposed MQL threshold: score > \d+", text)
    written = load_model(out)
    assert written.version == "it-1" and written != live
    assert load_model(REPO_ROOT / "config" / "scoring-model.yaml") == live  # the live file is untouched
    assert email not in text and email not in html.read_text()
