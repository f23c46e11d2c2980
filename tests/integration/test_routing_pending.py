"""Routing never loses an MQL to unusable roster data in Redis (issue 12, item 2).

Through real Kafka, Redis and worker processes, with ``roster_error: pending``: a roster
document with ``reps: "not-a-list"`` (loaded as a new version, as a bad load would) parks a
hot lead - no dead letter, no assignment, ``leadflow_pending_assignments`` 1; the parked lead
survives a worker restart that rebuilds the table from its changelog; once a valid roster is
loaded the re-drive timer routes it by the normal rules, exactly once. A non-numeric
round-robin cursor (the assignment script fails) parks and re-drives the same way. The default policy
(``fallback``) is pinned by the unit tests (tests/unit/agents/routing/test_pending.py).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from streams.settings import REPO_ROOT
from tests.integration.test_routing import (
    RoutingHarness,
    _redis_call,
    assignments_for,
    load_roster,
    mql,
    publish_mqls,
    shared_roster,
)

pytestmark = pytest.mark.integration


def _corrupt_roster(harness: RoutingHarness) -> None:
    """Store a roster document whose ``reps`` is not a list and bump the version (a bad load)."""

    async def corrupt(store):
        async with store.client.pipeline(transaction=True) as pipe:
            pipe.set(store.doc_key, b'{"roster": {"reps": "not-a-list"}, "meta": {}}')
            pipe.incr(store.version_key)
            await pipe.execute()

    _redis_call(harness.settings, corrupt)


def _wait_for_metric(harness: RoutingHarness, sample: str, value: float, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if harness.metric(sample) == value:
                return
        except OSError:  # a worker restarting: metrics not served yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"{sample} never became {value}\n{harness.logs()}")


def test_corrupt_roster_parks_the_mql_and_a_restored_roster_assigns_it_once(stack, stack_settings, kafka, tmp_path):
    config = (REPO_ROOT / "config" / "routing.yaml").read_text()
    assert "roster_error: {action: fallback, max_pending_minutes: null}" in config
    path = tmp_path / "routing.yaml"
    path.write_text(config.replace("roster_error: {action: fallback,", "roster_error: {action: pending,"))
    harness = RoutingHarness(
        stack_settings,
        tmp_path,
        redis_key_prefix="t" + uuid.uuid4().hex[:10],
        routing_config_path=path,
        routing_redrive_interval_s=0.5,
    )
    load_roster(harness, shared_roster())
    worker = harness.start()
    try:
        warm = mql(country="FR")  # the worker is up and has cached roster version 1
        publish_mqls(harness, [warm])
        assignments_for(kafka, harness, [warm["lead_id"]], timeout=120)

        _corrupt_roster(harness)
        hot = mql(country="FR")  # a P1 demo request
        publish_mqls(harness, [hot])
        _wait_for_metric(harness, "leadflow_pending_assignments", 1.0)
        assert "roster field 'reps' is a str, not a list" in harness.logs()
        assert harness.metric('leadflow_dead_letters_total{reason="processing_error"}') == 0.0
        assert hot["email"] not in harness.logs()

        # The parked lead is table state: it survives a restart that rebuilds from the changelog.
        harness.killed.add(worker.name)
        worker.stop(timeout=20)
        harness.wipe_local_state()
        harness.start()
        _wait_for_metric(harness, "leadflow_pending_assignments", 1.0, timeout=60)

        load_roster(harness, shared_roster())
        got = assignments_for(kafka, harness, [warm["lead_id"], hot["lead_id"]], timeout=60, settle=2.0)
        assert Counter(a["lead_id"] for a in got) == {warm["lead_id"]: 1, hot["lead_id"]: 1}, "each exactly once"
        [assigned] = [a for a in got if a["lead_id"] == hot["lead_id"]]
        assert assigned["rule"] == "rule:fair" and not assigned["is_fallback"], assigned
        assert assigned["priority"] == "P1"
        _wait_for_metric(harness, "leadflow_pending_assignments", 0.0)

        # A non-numeric round-robin cursor fails the assignment script: parked too, then routed.
        cursor = f"{harness.settings.redis_key_prefix}:rr:rule:fair:AE"
        _redis_call(harness.settings, lambda store: store.client.hset(cursor, "fair-1", "not-a-number"))
        later = mql(country="FR")
        publish_mqls(harness, [later])
        _wait_for_metric(harness, "leadflow_pending_assignments", 1.0)
        assert "the assignment (open-lead sets, round-robin cursors) failed in Redis" in harness.logs()
        _redis_call(harness.settings, lambda store: store.client.delete(cursor))
        [routed] = assignments_for(kafka, harness, [later["lead_id"]], timeout=60, settle=1.0)
        assert routed["rule"] == "rule:fair" and not routed["is_fallback"], routed
    finally:
        harness.stop_all()
