"""The one sweeper (streams.due_index): the bucket index and its close loop over a dict, and the
wall-clock half on the fake pipeline - commands per owned partition, from the cursor, in ranges
of at most max_buckets_per_command, a failing round logged and retried at the next tick."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from streams.due_index import DueIndex, Sweeper, bucket_key, cursor_key
from streams.testing import ManualClock

W = 1_000  # bucket width, ms
T0 = 1_767_225_600_000


def run(coroutine):
    return asyncio.run(coroutine)


def test_schedule_indexes_by_due_bucket_never_into_a_closed_one():
    index = DueIndex({}, W)
    assert index.schedule(0, "a", T0 + 5 * W, T0) == (T0 + 5 * W) // W
    assert index.cursor(0) == T0 // W - 1  # first use: everything before now is closed
    assert index.schedule(0, "late", T0 - 60 * W, T0) == T0 // W  # history: the next open bucket
    assert index.schedule(0, "b", T0 + W, T0, min_bucket=T0 // W + 9) == T0 // W + 9
    index.schedule_many(0, {"a": T0 + 5 * W, "c": T0 + 5 * W + 1}, T0)
    assert index.members(0, (T0 + 5 * W) // W) == ["a", "c"]  # one entry per key


def test_sweep_hands_due_keys_over_and_removes_the_bucket_only_afterwards():
    table: dict[bytes, bytes] = {}
    index = DueIndex(table, W)
    bucket = index.schedule(2, "a", T0 + W, T0)
    index.schedule(2, "b", T0 + W, T0)
    seen: list[tuple[int, list[str], bool]] = []

    async def on_due(partition: int, b: int, keys: list[str]) -> int:
        seen.append((b, keys, bucket_key(partition, b) in table))  # the bucket is still there
        if keys == ["a", "b"]:
            index.append(partition, b, ["c"])  # appended meanwhile: handed over in a second round
        return len(keys)

    assert run(index.sweep(2, bucket - 3, bucket + 2, on_due)) == 3
    assert seen == [(bucket, ["a", "b"], True), (bucket, ["c"], True)]
    assert bucket_key(2, bucket) not in table and index.cursor(2) == bucket + 2


def test_a_crash_inside_on_due_leaves_the_bucket_for_the_redelivered_command():
    index = DueIndex({}, W)
    bucket = index.schedule(0, "a", T0 + W, T0)
    cursor = index.cursor(0)

    async def crash(partition: int, b: int, keys: list[str]) -> int:
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run(index.sweep(0, bucket, bucket, crash))
    assert index.members(0, bucket) == ["a"] and index.cursor(0) == cursor


@pytest.fixture
def host(fake_pipeline):
    return fake_pipeline(clock=ManualClock(T0 / 1000), partitions=(1, 3))


def commands(pipeline) -> list[tuple[int | None, tuple[int, int, int]]]:
    return [(s.partition, tuple(orjson.loads(s.value))) for s in pipeline.channel("sla_commands").sent]


def test_the_sweeper_asks_each_owned_partition_for_its_ended_buckets_in_ranges(host):
    index = DueIndex({}, W)
    index.schedule(1, "a", T0, T0)  # partition 1 is in use; partition 3 never was
    rounds: list[set[int]] = []
    Sweeper(
        host,
        index,
        timer="sweep_test",
        channel="sla_commands",
        key=b"k",
        command=lambda p, first, last: orjson.dumps([p, first, last]),
        max_buckets_per_command=4,
        after=rounds.append,
    )
    start = index.cursor(1) + 1

    host.clock.advance(10.5)  # buckets start .. start+9 have ended
    run(host.fire("sweep_test"))
    run(host.fire("sweep_test"))  # nothing new ended: nothing asked twice

    assert commands(host) == [
        (1, (1, start, start + 3)),
        (1, (1, start + 4, start + 7)),
        (1, (1, start + 8, start + 9)),
    ]
    assert {s.key for s in host.channel("sla_commands").sent} == {b"k"}
    assert rounds == [{1, 3}, {1, 3}]


def test_a_failing_round_is_logged_and_the_timer_keeps_running(host, caplog):
    index = DueIndex({}, W)
    index.schedule(1, "a", T0, T0)

    def broken(partition: int, first: int, last: int) -> bytes:
        raise ValueError("bug")

    Sweeper(host, index, timer="sweep_test", channel="sla_commands", key=b"k", command=broken)
    host.clock.advance(3)
    with caplog.at_level(logging.ERROR):
        run(host.fire("sweep_test"))  # does not raise: a timer that raises stops for good
    assert "sweep_test: requesting sweeps failed" in caplog.text
    assert cursor_key(1) in index.table
