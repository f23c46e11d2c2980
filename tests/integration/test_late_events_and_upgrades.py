"""Issue 11 items 1 and 5 through a real Kafka + Redis and a real `leadflow worker` (capture,
scoring, routing, SLA): late and backfilled hot leads get no MQL and no assignment; a P2 lead
an SDR owns that then requests a demo is re-routed once, at P1, to an AE."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from agents.domain.identity import lead_id_for_email
from agents.scoring.outputs import qualified_id, upgrade_id
from streams.settings import REPO_ROOT
from tests.integration.conftest import WorkerHarness
from tests.integration.factories import as_json, form_submit, now_ms, web_activity
from tests.integration.kafkatools import KafkaTools
from tests.integration.test_routing import load_roster

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
ROSTER = {
    "label": "late-and-upgrades",
    "territories": [{"id": "na", "countries": ["US", "CA"]}],
    "reps": [
        {"id": "sdr-sam", "name": "Sam SDR", "role": "SDR", "team": "na", "capacity": 100, "territories": ["na"]},
        {"id": "ae-alex", "name": "Alex AE", "role": "AE", "team": "na", "capacity": 100, "territories": ["na"]},
        {"id": "ae-blair", "name": "Blair AE", "role": "AE", "team": "na", "capacity": 100, "territories": ["na"]},
        {"id": "nurture-sequence", "name": "Nurture", "role": "nurture", "round_robin": False},
        {"id": "revops-triage", "name": "RevOps triage queue", "role": "queue", "round_robin": False},
    ],
    "rules": [],
    "account_owners": {},
}


@pytest.fixture(scope="module")
def kafka_module(stack, stack_settings) -> KafkaTools:
    return KafkaTools(stack_settings.kafka_bootstrap)


@pytest.fixture(scope="module")
def pipeline(stack, stack_settings, tmp_path_factory):
    """One stock worker (all capabilities) with its own topics, Redis prefix and roster."""
    harness = WorkerHarness(
        stack_settings, tmp_path_factory.mktemp("late"), redis_key_prefix="t" + uuid.uuid4().hex[:10]
    )
    load_roster(harness, ROSTER)
    harness.start()
    try:
        yield harness
    finally:
        harness.stop_all()


def _publish_backfill(harness: WorkerHarness, kind: str, records: list[dict[str, Any]]) -> None:
    """Through the real CLI: `leadflow publish KIND - --backfill` (sets the leadflow-backfill header)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(harness.env_overrides)
    done = subprocess.run(
        [sys.executable, "-m", "leadflow.cli", "publish", kind, "-", "--backfill"],
        input=b"\n".join(as_json(r) for r in records),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()


def _for(records, lead_id):
    return [r["value"] for r in records if r["value"]["lead_id"] == lead_id]


def _hot(email: str, at: int) -> tuple[dict, dict]:
    """Pricing page + demo request from an ICP director: 55+ points at `at`."""
    page = web_activity(email=email, page_type="pricing", occurred_at=at)
    demo = form_submit(
        email,
        occurred_at=at + 60_000,
        job_title="Director of Engineering",
        industry="software",
        company_size=500,
        country="US",
    )
    return page, demo


def test_late_and_backfilled_hot_leads_get_no_mql_and_no_assignment(pipeline, kafka_module):
    kafka, topics = kafka_module, pipeline.topics
    tag = uuid.uuid4().hex[:6]
    late, backfilled, live = (f"{who}.{tag}@acme-software.com" for who in ("late", "backfilled", "live"))
    late_id, backfilled_id, live_id = map(lead_id_for_email, (late, backfilled, live))
    started = time.monotonic()
    # 1. A publisher's retry queue delivers a hot lead's events 200 days late (no header).
    page, demo = _hot(late, now_ms() - 200 * DAY_MS)
    kafka.produce(topics.web_activity, [as_json(page)])
    kafka.produce(topics.form_submits, [as_json(demo)])
    # 2. A CRM import of an hour-old hot lead, marked as backfill: hot even today, still no MQL.
    page, demo = _hot(backfilled, now_ms() - HOUR_MS)
    _publish_backfill(pipeline, "web", [page])
    _publish_backfill(pipeline, "form", [demo])
    # 3. The control: the same behaviour, live.
    page, demo = _hot(live, now_ms())
    kafka.produce(topics.web_activity, [as_json(page)])
    kafka.produce(topics.form_submits, [as_json(demo)])

    scored = kafka.consume(
        topics.lead_scored,
        timeout=120,
        until=pipeline.watch(lambda rs: all(len(_for(rs, i)) >= 2 for i in (late_id, backfilled_id, live_id))),
    )
    assignments = kafka.consume(
        topics.assignments, timeout=60, until=pipeline.watch(lambda rs: bool(_for(rs, live_id)))
    )
    assert _for(assignments, live_id), pipeline.logs()
    time.sleep(3)  # anything wrongly sent for the other two would be right behind the control's
    mqls = kafka.consume(topics.mqls, until=lambda rs: False, timeout=3)
    assignments = kafka.consume(topics.assignments, until=lambda rs: False, timeout=3)
    print(f"\nlate/backfill scenario settled in {time.monotonic() - started:.1f}s")

    assert [m["event_id"] for m in _for(mqls, live_id)] == [qualified_id(live_id, 1)]
    for lead in (late_id, backfilled_id):
        assert _for(mqls, lead) == [], "a historical crossing is never sent"
        assert _for(assignments, lead) == [], "so no rep gets it, and no SLA clock starts"
        mine = [s for s in _for(scored, lead) if s["cause_kind"] != "sweep"]  # (a decay review may follow)
        assert not any(s["mql"] or s["stage"] == "mql" for s in _for(scored, lead)), "never reads as an MQL"
        assert (mine[-1]["stage"], mine[-1]["gate_passed"]) == ("nurture", True), mine[-1]
        assert mine[-1]["score"] > 50, "the event-time score is kept: the crossing happened then"
    assert _for(scored, live_id)[-1]["stage"] == "mql"

    # A live page view of the backfilled lead, while its (event-time) MQL episode is open and
    # its score today is above the threshold: its MQL (number 1) goes out now, and is routed.
    kafka.produce(topics.web_activity, [as_json(web_activity(email=backfilled, page_type="docs"))])
    mqls = kafka.consume(topics.mqls, timeout=60, until=pipeline.watch(lambda rs: bool(_for(rs, backfilled_id))))
    assert [m["event_id"] for m in _for(mqls, backfilled_id)] == [qualified_id(backfilled_id, 1)], pipeline.logs()
    assigned = kafka.consume(
        topics.assignments, timeout=60, until=pipeline.watch(lambda rs: bool(_for(rs, backfilled_id)))
    )
    assert len(_for(assigned, backfilled_id)) == 1


def test_a_demo_request_from_a_p2_lead_an_sdr_owns_is_rerouted_once_at_p1(pipeline, kafka_module):
    kafka, topics = kafka_module, pipeline.topics
    email = f"sam.{uuid.uuid4().hex[:6]}@retail-corp.com"
    lead = lead_id_for_email(email)
    profile = dict(job_title="Marketing Manager", industry="retail", company_size=500, country="US")
    kafka.produce(
        topics.form_submits,
        [
            as_json(form_submit(email, form_kind=kind, **profile))
            for kind in ("webinar_registration", "event_badge_scan", "event_badge_scan")
        ],
    )
    kafka.produce(
        topics.web_activity,
        [
            as_json(web_activity(email=email, activity_kind=kind, page_type=None, content_title="Events playbook"))
            for kind in ("webinar_attended", "webinar_attended", "content_download")
        ],
    )
    first = kafka.consume(topics.assignments, timeout=120, until=pipeline.watch(lambda rs: bool(_for(rs, lead))))
    [p2] = _for(first, lead)
    assert (p2["priority"], p2["owner_id"], p2["owner_role"]) == ("P2", "sdr-sam", "SDR"), (p2, pipeline.logs())

    demo = form_submit(email, form_kind="demo_request", **profile)
    kafka.produce(topics.form_submits, [as_json(demo)])
    both = kafka.consume(topics.assignments, timeout=60, until=pipeline.watch(lambda rs: len(_for(rs, lead)) >= 2))
    # Redelivery of the demo request (same event id), and another P1 signal: nothing more.
    kafka.produce(topics.form_submits, [as_json(demo), as_json(form_submit(email, form_kind="chat", **profile))])
    kafka.consume(topics.lead_scored, timeout=60, until=pipeline.watch(lambda rs: len(_for(rs, lead)) >= 8))
    time.sleep(3)
    assignments = _for(kafka.consume(topics.assignments, until=lambda rs: False, timeout=3), lead)
    mqls = _for(kafka.consume(topics.mqls, until=lambda rs: False, timeout=3), lead)

    assert len(_for(both, lead)) == 2 and len(assignments) == 2, [(a["priority"], a["owner_id"]) for a in assignments]
    p1 = assignments[1]
    assert (p1["priority"], p1["owner_role"], p1["is_fallback"]) == ("P1", "AE", False), p1
    assert p1["owner_id"] in {"ae-alex", "ae-blair"} and p1["owner_id"] != p2["owner_id"]
    assert p1["first_touch_due_at"] - p1["assigned_at"] == 10 * 60_000, "the P1 SLA, from the upgrade"
    assert "priority raised from P2 to P1 on the same MQL" in p1["reason"]
    assert [(m["mql_number"], m["upgrade_of"], m["priority_hint"]) for m in mqls] == [
        (1, None, "P2"),
        (1, qualified_id(lead, 1), "P1"),
    ]
    assert mqls[1]["event_id"] == upgrade_id(lead, 1, "P1") == p1["mql_event_id"]
    assert Counter(a["event_id"] for a in assignments) == {p2["event_id"]: 1, p1["event_id"]: 1}


def test_web_activity_overtaking_a_form_gives_the_mqls_of_the_in_order_run(pipeline, kafka_module):
    """Issue 16: one lead's pages and its form on two topics, published in reversed topic order
    with event times interleaved (form first in event time, pages first on the wire), give the
    MQLs - numbers and ids - of the same events published in event-time order."""
    kafka, topics = kafka_module, pipeline.topics
    tag = uuid.uuid4().hex[:6]
    in_order, reversed_ = f"ordered.{tag}@acme-software.com", f"reversed.{tag}@acme-software.com"
    # A few seconds ahead, so both leads stay live however long the round trips take: the only
    # difference between them is the interleaving.
    at = now_ms() + 10_000

    def events(email):
        form = form_submit(
            email,
            occurred_at=at,
            job_title="Director of Engineering",
            industry="software",
            company_size=500,
            country="US",
        )  # 20 fit + 20 demo request = 40
        web = [
            web_activity(email=email, page_type="pricing", occurred_at=at + 100),  # 55: MQL 1
            web_activity(email=email, activity_kind="unsubscribe", page_type=None, occurred_at=at + 200),  # 40
            web_activity(email=email, page_type="pricing", occurred_at=at + 300),
        ]  # 55: MQL 2
        return form, web

    def publish_and_wait(email, batches):
        lead, published = lead_id_for_email(email), 0
        for topic, records in batches:
            kafka.produce(topic, [as_json(r) for r in records])
            published += len(records)
            kafka.consume(
                topics.lead_scored, timeout=60, until=pipeline.watch(lambda rs, n=published: len(_for(rs, lead)) >= n)
            )

    form, web = events(in_order)
    publish_and_wait(in_order, [(topics.form_submits, [form]), (topics.web_activity, web)])
    form, web = events(reversed_)
    publish_and_wait(reversed_, [(topics.web_activity, web), (topics.form_submits, [form])])

    ids = {lead_id_for_email(e): e for e in (in_order, reversed_)}
    mqls = kafka.consume(
        topics.mqls, timeout=60, until=pipeline.watch(lambda rs: all(len(_for(rs, lead)) >= 2 for lead in ids))
    )
    time.sleep(1)  # a wrongly extra MQL would be right behind
    mqls = kafka.consume(topics.mqls, until=lambda rs: False, timeout=2)
    seen = {lead: sorted({(m["mql_number"], m["event_id"]) for m in _for(mqls, lead)}) for lead in ids}
    ordered_id, reversed_id = lead_id_for_email(in_order), lead_id_for_email(reversed_)
    assert [n for n, _ in seen[ordered_id]] == [1, 2], pipeline.logs()
    # Ids derive from lead + mql_number: the reversed run's are the ones the in-order run gives it.
    assert seen[reversed_id] == [(n, qualified_id(reversed_id, n)) for n, _ in seen[ordered_id]], pipeline.logs()
