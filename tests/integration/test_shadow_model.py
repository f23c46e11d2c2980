"""Shadow model through a real Kafka and a real worker: a candidate with a lower MQL threshold
scores the same events; its would-be MQLs go to the shadow-decisions topic, the live MQL topic
is unaffected, and `leadflow shadow report`'s reader and summary see them."""

from __future__ import annotations

import asyncio
import re

import pytest

from agents.domain.identity import lead_id_for_email
from leadflow.shadow_cli import read_decisions, summarize
from streams.app import build_codec
from streams.connections import kafka_client_kwargs
from tests.integration.conftest import REPO_ROOT, WorkerHarness
from tests.integration.factories import as_avro, as_json, form_submit, web_activity

pytestmark = pytest.mark.integration


def buyer(email: str, **fields):
    """A Director at a 500-person software company in the US (ICP): 40 points with a demo request."""
    return form_submit(email, job_title="Director of Engineering", company_size=500, industry="software", **fields)


@pytest.fixture
def shadowed(stack, stack_settings, tmp_path):
    model = (REPO_ROOT / "config" / "scoring-model.yaml").read_text()
    model = re.sub(r"(?m)^version: .*$", "version: candidate-30", model)
    candidate = tmp_path / "candidate.yaml"
    model = re.sub(r"(?m)^  mql_rearm_at: .*$", "  mql_rearm_at: 30", model)
    candidate.write_text(re.sub(r"(?m)^  mql: .*$", "  mql: 30", model))  # live: 50
    harness = WorkerHarness(stack_settings, tmp_path, shadow_model_path=candidate)
    harness.start()
    try:
        yield harness
    finally:
        harness.stop_all()


def test_candidate_mqls_go_to_the_shadow_topic_and_never_to_sales(shadowed, kafka):
    topics = shadowed.topics
    warm = "sam.shadow@acme-software.com"  # 40 points: an MQL for the candidate only
    hot = "hana.hot@acme-software.com"  # 55 points: an MQL for both (they agree)
    kafka.produce(topics.web_activity, [as_json(web_activity(email=hot, page_type="pricing"))])
    # The page first (15 points, no MQL for either), so the hot lead's form crosses both at once.
    kafka.consume(topics.lead_scored, until=shadowed.watch(lambda rs: len(rs) >= 1), timeout=60)
    kafka.produce(topics.form_submits, [as_avro("form_submitted", buyer(warm)), as_avro("form_submitted", buyer(hot))])

    decisions = kafka.consume(topics.shadow_decisions, until=shadowed.watch(lambda rs: len(rs) >= 1), timeout=60)
    mqls = kafka.consume(topics.mqls, until=shadowed.watch(lambda rs: len(rs) >= 1), timeout=30)
    scored = kafka.consume(topics.lead_scored, until=lambda rs: len(rs) >= 3, timeout=30)

    assert [r["value"]["lead_id"] for r in mqls] == [lead_id_for_email(hot)], shadowed.logs()
    [decision] = [r["value"] for r in decisions]
    assert decision["lead_id"] == lead_id_for_email(warm) and decision["direction"] == "gained"
    assert (decision["live_model_version"], decision["candidate_model_version"]) == ("2025.1-default", "candidate-30")
    assert 30 < decision["candidate_score"] == decision["live_score"] <= 50 and decision["score_band"] == "<50"
    assert all(r["value"]["model_version"] == "2025.1-default" for r in scored)  # live records are live only

    codec = build_codec(shadowed.settings, register=False)
    records = asyncio.run(
        read_decisions(kafka_client_kwargs(shadowed.settings), topics.shadow_decisions, codec, from_ms=None)
    )
    summary = summarize(records)
    assert (summary.total("gained"), summary.total("lost")) == (1, 0)
    assert summary.rows() == [(decision["first_touch_source"], "<50", 1, 0)]
