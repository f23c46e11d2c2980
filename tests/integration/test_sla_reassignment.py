"""SLA reassignment end to end: real Kafka, real Redis, real `leadflow worker` processes.

An MQL goes to ``<p>.out.mqls``; routing assigns it to a rep of a three-AE pool who never
touches it. SLAs are compressed by config files (routing.yaml: P1 first touch in 3 s;
sla.yaml: 1 s buckets, ladder 8 s / 16 s / 20 s from the first assignment, tier 1 reassigns):

- tier 0 (3 s) escalates to the owner; tier 1 (8 s) reassigns: exactly one new assignment, to
  another AE of the pool, with the reason and the breach as cause; the old owner's open count
  in Redis drops by one and the new owner's rises by one;
- the new owner's own first-touch clock breaches 3 s after the reassignment; the ladder's
  tiers 2 and 3 still fire 16 s and 20 s after the *first* assignment (no restart);
- the breach and the MQL redelivered change nothing;
- a fresh app (new topics, empty tables, same Redis) fed the same MQL replays everything from
  Redis' idempotency keys: the very same two assignments, field for field, and no slot moves.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml

from agents.sla.rules import breach_id
from streams.settings import REPO_ROOT
from tests.integration.conftest import WorkerHarness
from tests.integration.kafkatools import KafkaTools, codec
from tests.integration.test_routing import _redis_call, assignments_for, load_roster, mql, publish_mqls, rep
from tests.integration.test_sla import SLA_CONFIG, metric

pytestmark = pytest.mark.integration

POOL = ("ae-ana", "ae-ben", "ae-cy")
P1_SLA_MS = 3_000
LADDER_MS = {1: 5_000, 2: 9_000, 3: 12_000}


def reassignment_sla() -> dict:
    """test_sla's configuration, with a ladder long enough to watch and tier 1 reassigning."""
    config = yaml.safe_load(SLA_CONFIG)
    config["version"] = "reassign-integration"
    for tier, after_ms in zip(config["escalation"]["P1"]["tiers"], LADDER_MS.values()):
        tier["after"] = f"{after_ms // 1000}s"
    config["contacts"]["manager"] = {"by_team": {"na-sales": "mgr-mia"}}
    config["reassignment"] = {"enabled": True, "priorities": ["P1"], "tiers": [1], "max_per_mql": 1}
    return config


def write_configs(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    routing = yaml.safe_load((REPO_ROOT / "config" / "routing.yaml").read_text())
    routing["priorities"]["P1"]["first_touch_sla_minutes"] = P1_SLA_MS / 60_000
    (directory / "routing.yaml").write_text(yaml.safe_dump(routing))
    (directory / "sla.yaml").write_text(yaml.safe_dump(reassignment_sla()))
    return {"routing_config_path": directory / "routing.yaml", "sla_config_path": directory / "sla.yaml"}


def pool_roster() -> dict:
    aes = [rep(r, team="na-sales", manager="mgr-mia", capacity=5, round_robin=False) for r in POOL]
    return {
        "label": "reassignment",
        "territories": [{"id": "na", "countries": ["US", "CA"]}],
        "reps": [
            *aes,
            rep("mgr-mia", "manager", team="na-sales", round_robin=False),
            {"id": "nurture-sequence", "name": "Nurture", "role": "nurture", "round_robin": False},
            {"id": "revops-triage", "name": "RevOps triage queue", "role": "queue", "round_robin": False},
        ],
        "rules": [{"name": "pool", "match": {"countries": ["US"]}, "members": list(POOL), "default_owner": "mgr-mia"}],
    }


def harness(stack_settings, workdir: Path, redis_prefix: str) -> WorkerHarness:
    return WorkerHarness(
        stack_settings,
        workdir,
        redis_key_prefix=redis_prefix,
        sweep_bucket_s=1,
        sweep_interval_s=0.5,
        **write_configs(workdir / "config"),
    )


def open_counts(h: WorkerHarness) -> dict[str, int]:
    return _redis_call(h.settings, lambda store: store.open_counts(list(POOL)))


def breaches(kafka: KafkaTools, h: WorkerHarness, lead_id: str, *, until, timeout: float) -> list[dict]:
    out = kafka.consume(
        h.topics.sla_breaches,
        timeout=timeout,
        until=h.watch(lambda rs: until([r["value"] for r in rs if r["value"]["lead_id"] == lead_id])),
    )
    return [r["value"] for r in out if r["value"]["lead_id"] == lead_id]


def test_a_reassigning_tier_moves_the_lead_once_and_the_ladder_continues(stack, stack_settings, tmp_path):
    kafka = KafkaTools(stack_settings.kafka_bootstrap)
    redis_prefix = "t" + uuid.uuid4().hex[:10]
    first_run = harness(stack_settings, tmp_path / "a", redis_prefix)
    load_roster(first_run, pool_roster())
    record = mql(country="US")
    lead = record["lead_id"]
    first_run.start()
    try:
        publish_mqls(first_run, [record])
        [first] = assignments_for(kafka, first_run, [lead], timeout=120)
        old, a0 = first["owner_id"], first["assigned_at"]
        assert old in POOL and first["rule"] == "rule:pool" and first["reassigned_from"] is None
        assert first["first_touch_due_at"] - a0 == P1_SLA_MS
        before = open_counts(first_run)
        assert before == {r: int(r == old) for r in POOL}, "the reassignment came before the first read"

        # Tier 1 reassigns; wait for the whole ladder and the new owner's tier 0.
        seen = breaches(
            kafka,
            first_run,
            lead,
            timeout=60,
            until=lambda bs: {b["tier"] for b in bs} >= {0, 1, 2, 3} and Counter(b["tier"] for b in bs)[0] >= 2,
        )
        got = assignments_for(kafka, first_run, [lead], per_lead=2, timeout=30, settle=2.0)
        assert len(got) == 2, first_run.logs()
        second = got[1]
        new = second["owner_id"]
        [tier1] = [b for b in seen if b["tier"] == 1]
        assert (tier1["action"], tier1["assignment_id"], tier1["owner_id"]) == ("reassign", first["event_id"], old)
        assert new in POOL and new != old and second["rule"] == "rule:pool"
        assert (second["reassigned_from"], second["replaces_assignment_id"], second["cause_event_id"]) == (
            old,
            first["event_id"],
            tier1["event_id"],
        )
        assert second["mql_event_id"] == first["mql_event_id"] and second["handoff"] == first["handoff"]
        assert second["reason"].startswith(
            f"reassigned: first touch SLA breached by {old} (tier 1, {LADDER_MS[1] // 1000} s); P1 "
        )
        assert second["assigned_at"] >= tier1["breached_at"]
        assert second["first_touch_due_at"] - second["assigned_at"] == P1_SLA_MS  # a fresh clock
        assert open_counts(first_run) == {**{r: 0 for r in POOL}, new: 1}, "one slot moved from old to new"

        # The new owner's own tier 0, and the ladder from the first assignment, each exactly once.
        late = breaches(kafka, first_run, lead, timeout=8, until=lambda bs: False)  # a few more sweeps
        by = Counter((b["assignment_id"], b["tier"]) for b in late)
        assert by == {
            (first["event_id"], 0): 1,
            (first["event_id"], 1): 1,
            (second["event_id"], 0): 1,
            (second["event_id"], 2): 1,
            (second["event_id"], 3): 1,
        }, (by, first_run.logs())
        fresh = next(b for b in late if b["assignment_id"] == second["event_id"] and b["tier"] == 0)
        assert (fresh["owner_id"], fresh["action"]) == (new, "escalate")
        assert fresh["due_at"] == second["first_touch_due_at"] and fresh["event_id"] == breach_id(
            lead, second["event_id"], 0
        )
        for b in late:
            assert b["first_assigned_at"] == a0
            if b["tier"] > 0:
                assert b["due_at"] - a0 == LADDER_MS[b["tier"]], "the ladder did not restart"
        ladder = {b["tier"]: b for b in late if b["tier"] > 0}
        assert (ladder[2]["owner_id"], ladder[2]["escalate_to_id"], ladder[2]["action"]) == (new, "mgr-mia", "escalate")

        # Redelivery: the breach (and the MQL) again change nothing.
        kafka.produce(first_run.topics.sla_breaches, [codec().encode("sla_breached", tier1)] * 2, key=lead.encode())
        publish_mqls(first_run, [record])
        deadline = time.monotonic() + 30
        while metric(first_run.metrics_port, 'leadflow_duplicates_skipped_total{stage="reassign_duplicate"}') < 2:
            assert time.monotonic() < deadline, first_run.logs()
            time.sleep(0.5)
        again = assignments_for(kafka, first_run, [lead], per_lead=2, timeout=10, settle=2.0)
        assert again == got, "no new assignment"
        assert open_counts(first_run) == {**{r: 0 for r in POOL}, new: 1}
    finally:
        first_run.stop_all()

    # A fresh app - new topics, empty tables - on the same Redis, fed the same MQL: routing gets
    # its decisions back from the idempotency keys (the MQL's, then the reassignment's, whose
    # breach id the fresh SLA clock derives again), so both assignments are the same records.
    fresh_run = harness(stack_settings, tmp_path / "b", redis_prefix)
    fresh_run.start()
    try:
        publish_mqls(fresh_run, [record])
        replayed = assignments_for(kafka, fresh_run, [lead], per_lead=2, timeout=120, settle=3.0)
        assert replayed == got, fresh_run.logs()
        assert open_counts(fresh_run) == {**{r: 0 for r in POOL}, new: 1}, "no slot moved twice"
    finally:
        fresh_run.stop_all()
