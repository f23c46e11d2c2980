"""The pure parts of ``make bench-recovery``: realistic pooled states, their clones (still valid
states, the worker's exact bytes, under a new lead id), the partitioner that places them, the
probes, the goals and the worker-log parsing."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from agents.capture.rules import CaptureLimits, to_lead_event
from agents.domain.identity import lead_id_for_email
from agents.scoring.state import LeadState
from agents.scoring.state_codec import decode_state, encode_state, unpack
from leadflow.bench.goals import evaluate_goals, goal_table
from leadflow.bench.recovery_probe import assigned_partitions, log_marks, log_time_of
from leadflow.bench.recovery_state import (
    GOALS,
    clone_state,
    probe_event,
    probe_for_partition,
    simulate_pool,
    size_stats,
)
from streams.app import partition_for
from streams.settings import load_settings

END_MS = 1_790_000_000_000
LEAD_ID = re.compile(r"^ld_[0-9a-f]{20}$")


@pytest.fixture(scope="module")
def pool():
    from leadflow.compose import load_configs

    settings = load_settings()
    return simulate_pool(settings, load_configs(settings), 60, seed=3, end_ms=END_MS)


def test_the_pool_holds_realistic_states_and_a_human_form(pool):
    states = [LeadState.from_dict(orjson.loads(s.value)) for s in pool.states]
    assert len(states) == 60
    assert len({s.lead_id for s in states}) == 60
    assert len({s.stage for s in states}) >= 3  # not one kind of lead cloned a million times
    assert all(s.event_count >= 1 and s.as_of_ms <= END_MS for s in states)
    assert [s.event_count for s in states] == [p.event_count for p in pool.states]
    record = pool.form.record
    assert pool.form.subject == "form_submitted" and not record["honeypot"] and record["seconds_to_fill"] >= 5


@pytest.mark.parametrize("key", [None, b"lead-id-secret"])
def test_a_clone_is_a_valid_state_of_its_new_lead_in_the_workers_exact_bytes(pool, key):
    for index, template in enumerate(pool.states):
        lead_id, email, value = clone_state(template, 1000 + index, key)
        assert LEAD_ID.match(lead_id) and lead_id == lead_id_for_email(email, key)
        assert email.rpartition("@")[2] == template.email.rpartition("@")[2]  # same domain: same fit
        state = decode_state(value)
        assert (state.lead_id, state.email) == (lead_id, email)
        assert encode_state(state) == value  # what the worker would have written
        assert template.lead_id.encode() not in unpack(value)
        if state.window is not None:  # the reorder window's snapshot and events are the new lead's too
            snapshot = state.window["snap"]
            assert snapshot is None or LeadState.from_dict(snapshot).lead_id == lead_id
            assert all(entry[0]["lead_id"] == lead_id for entry in state.window["tail"])


def test_clones_are_distinct_leads(pool):
    ids = {clone_state(pool.states[i % len(pool.states)], i, None)[0] for i in range(3000)}
    assert len(ids) == 3000


# Kafka's own murmur2 test vectors (Java's signed ints; UtilsTest.testMurmur2).
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("partitions", [1, 4, 7, 12])
def test_states_go_to_the_partition_of_a_keyed_send(partitions):
    default = DefaultPartitioner()
    every = list(range(partitions))
    for key, java_hash in KAFKA_MURMUR2.items():
        assert partition_for(key, partitions) == (java_hash & 0x7FFFFFFF) % partitions
    for n in range(500):
        key = lead_id_for_email(f"user{n}@example.com").encode()
        # Faust's producer leaves keyed sends to aiokafka's DefaultPartitioner, all partitions up or not.
        assert partition_for(key, partitions) == default(key, every, every) == default(key, every, every[:1])


def test_a_probe_is_a_valid_form_submit_of_a_new_lead_on_the_asked_partition(pool):
    key = b"k"
    n = 0
    for partition in (0, 1, 2, 3, 2):
        n, email, lead_id = probe_for_partition("recovery-x", n, partition, 4, key)
        assert partition_for(lead_id.encode(), 4) == partition
        event = probe_event(pool.form, email, f"probe-{n}", lead_id)
        lead_event = to_lead_event(
            "form_submitted",
            event.record,
            "avro",
            raw=b"",
            received_at_ms=END_MS,
            now_ms=END_MS,
            limits=CaptureLimits(lead_id_key=key),
        )
        assert lead_event.lead_id == lead_id and event.key == lead_id.encode() and lead_event.visitor_id is None


def test_goals_are_met_up_to_their_limit_and_unmeasured_ones_say_so():
    goals = {
        g["figure"]: g
        for g in evaluate_goals(
            GOALS,
            {"cold_recovery_s": 60.0, "failover_s": 15.01, "worker_peak_rss_mib": 700.0, "state_bytes_per_lead": None},
        )
    }
    assert goals["cold_recovery_s"]["met"] is True
    assert goals["failover_s"]["met"] is False
    assert goals["worker_peak_rss_mib"]["met"] is True
    assert goals["state_bytes_per_lead"]["met"] is None
    table = goal_table(GOALS, list(goals.values()), [("warm restart to processing", "2.2 s")])
    assert "NOT MET" in table and "not measured" in table and "warm restart" in table
    assert len(table.splitlines()) == 6


def test_size_stats():
    stats = size_stats(list(range(1, 101)))
    assert (stats["mean"], stats["p50"], stats["p95"], stats["max"], stats["count"]) == (50.5, 50, 95, 100, 100)


LOG = """\
2026-11-28 19:26:08,254 INFO aiokafka.consumer.group_coordinator: Setting newly assigned partitions {TopicPartition(topic='r.in.form-submits', partition=0), TopicPartition(topic='r-lead_to_state-changelog', partition=3)} for group r
2026-11-28 19:26:09,018 INFO faust.tables.recovery: [^---Recovery]: Restoring state from changelog topics...
2026-11-28 19:26:09,607 INFO faust.tables.recovery: [^---Recovery]: Worker ready
2026-11-28 19:26:30,000 INFO aiokafka.consumer.group_coordinator: Setting newly assigned partitions {TopicPartition(topic='r.in.form-submits', partition=1), TopicPartition(topic='r.in.form-submits', partition=3), TopicPartition(topic='r-lead_to_state-changelog', partition=0)} for group r
2026-11-28 19:26:31,500 INFO faust.tables.recovery: [^---Recovery]: Worker ready
"""


def test_worker_log_times_and_assignment(tmp_path: Path):
    log = tmp_path / "w.log"
    log.write_text(LOG)
    first = log_time_of(log, "Worker ready")
    assert first is not None
    assert log_time_of(log, "Restoring state") == pytest.approx(first - 0.589, abs=1e-6)
    assert log_marks(log, first + 1, {"ready": "Worker ready", "gone": "Restoring"}) == {"ready": 20.89, "gone": None}
    # The latest assignment, input topic only (changelog partitions may be standbys).
    assert assigned_partitions(log, "r.in.form-submits") == {1, 3}
    assert assigned_partitions(tmp_path / "missing.log", "r.in.form-submits") == set()
