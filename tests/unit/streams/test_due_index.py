"""The one sweeper (streams.due_index): the bucket index and its close loop over a dict (chunked
buckets, buckets in the one-list format of older workers, a crash after any prefix of the
index's writes), and the wall-clock half on the fake pipeline - commands per owned partition, from the cursor, in ranges
of at most max_buckets_per_command, a failing round logged and retried at the next tick."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from streams.due_index import DueIndex, Sweeper, bucket_key, chunk_key, cursor_key
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


def bucket_entries(table: dict[bytes, bytes], partition: int, bucket: int) -> dict[bytes, object]:
    """The head and chunks of a bucket, decoded."""
    bkey = bucket_key(partition, bucket)
    return {k: orjson.loads(v) for k, v in table.items() if k == bkey or k.startswith(bkey + b":")}


def test_appends_fill_chunks_of_at_most_chunk_size_keys_and_the_head_counts_them():
    table: dict[bytes, bytes] = {}
    index = DueIndex(table, W, chunk_size=3)
    index.append(0, 7, ["k0", "k1"])
    index.append(0, 7, [f"k{i}" for i in range(2, 9)])  # fills chunk 0, then opens two
    index.append(0, 7, ["k9"])
    assert bucket_entries(table, 0, 7) == {
        bucket_key(0, 7): 4,
        chunk_key(bucket_key(0, 7), 0): ["k0", "k1", "k2"],
        chunk_key(bucket_key(0, 7), 1): ["k3", "k4", "k5"],
        chunk_key(bucket_key(0, 7), 2): ["k6", "k7", "k8"],
        chunk_key(bucket_key(0, 7), 3): ["k9"],
    }
    assert index.members(0, 7) == [f"k{i}" for i in range(10)]
    with pytest.raises(ValueError, match="chunk_size"):
        DueIndex({}, W, chunk_size=0)


def test_a_key_repeated_across_chunks_is_a_member_and_handed_over_once():
    table: dict[bytes, bytes] = {}
    index = DueIndex(table, W, chunk_size=2)
    index.append(0, 7, ["a", "b", "a"])
    index.append(0, 7, ["c"])
    index.append(0, 7, ["a", "c"])  # "a" is in chunk 0 only: written again; "c" is in the last chunk
    assert orjson.loads(table[chunk_key(bucket_key(0, 7), 1)]) == ["c", "a"]
    assert index.members(0, 7) == ["a", "b", "c"]
    handed: list[list[str]] = []

    async def on_due(partition: int, bucket: int, keys: list[str]) -> int:
        handed.append(keys)
        return len(keys)

    assert run(index.close(0, 7, on_due)) == 3 and handed == [["a", "b", "c"]]


def test_a_bucket_in_the_one_list_format_is_read_appended_to_and_dropped():
    """Changelogs of workers from before the chunks hold ``bucket -> [keys]``."""
    legacy = [f"k{i}" for i in range(5)]
    table = {bucket_key(0, 7): orjson.dumps(legacy), bucket_key(0, 8): orjson.dumps(legacy), b"other": b"x"}
    index = DueIndex(table, W, chunk_size=2)
    assert index.members(0, 7) == legacy
    index.append(0, 7, ["k4", "k5"])  # k4 was already there: the conversion kept it in the last chunk
    assert bucket_entries(table, 0, 7) == {
        bucket_key(0, 7): 3,
        chunk_key(bucket_key(0, 7), 0): ["k0", "k1"],
        chunk_key(bucket_key(0, 7), 1): ["k2", "k3"],
        chunk_key(bucket_key(0, 7), 2): ["k4", "k5"],
    }
    assert index.members(0, 7) == [*legacy, "k5"]
    index.drop(0, 7)
    index.drop(0, 8)  # never converted
    index.drop(0, 9)  # absent: nothing to do
    assert table == {b"other": b"x"}


def test_drop_removes_the_head_and_every_chunk_and_nothing_else():
    table = {b"c:0": b"5", bucket_key(1, 7): b"[]"}
    index = DueIndex(table, W, chunk_size=2)
    index.append(0, 7, [f"k{i}" for i in range(7)])
    assert len(bucket_entries(table, 0, 7)) == 5  # head + 4 chunks
    index.drop(0, 7)
    assert table == {b"c:0": b"5", bucket_key(1, 7): b"[]"}  # the cursor and another partition's bucket stay


def test_a_sweep_closes_a_chunked_bucket_with_keys_appended_meanwhile():
    table: dict[bytes, bytes] = {}
    index = DueIndex(table, W, chunk_size=2)
    bucket = index.schedule_many(0, {f"k{i}": T0 + W for i in range(5)}, T0)[0]
    seen: list[list[str]] = []

    async def on_due(partition: int, b: int, keys: list[str]) -> int:
        seen.append(keys)
        if len(seen) == 1:
            index.append(partition, b, ["k0", "k5"])  # k0 again (in chunk 0): not handed over twice
        return len(keys)

    assert run(index.sweep(0, bucket, bucket + 1, on_due)) == 6
    assert seen == [["k0", "k1", "k2", "k3", "k4"], ["k5"]]
    assert bucket_entries(table, 0, bucket) == {} and index.cursor(0) == bucket + 1


class LoggingTable(dict):
    """A dict recording its writes in order, as a changelog does."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.writes: list[tuple[bytes, bytes | None]] = []

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes.append((key, value))
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.writes.append((key, None))
        super().__delitem__(key)


def replayed(before: dict[bytes, bytes], writes: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes]:
    table = dict(before)
    for key, value in writes:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


@pytest.mark.parametrize("legacy", [False, True], ids=["chunked", "one-list"])
def test_a_crash_after_any_prefix_of_the_index_writes_loses_no_key_and_leaves_nothing_behind(legacy):
    """Replay a prefix of the writes of an append (over two chunks, or converting a one-list
    bucket) or of a close, then redeliver the sweep: it hands over every key indexed before the
    append and leaves no head or chunk in the table."""
    keys = [f"k{i}" for i in range(5)]
    start = {bucket_key(0, 7): orjson.dumps(keys)} if legacy else {}
    if not legacy:
        DueIndex(start, W, chunk_size=2).append(0, 7, keys)
    appending = LoggingTable(start)
    DueIndex(appending, W, chunk_size=2).append(0, 7, ["k5", "k6", "k7"])
    closing = LoggingTable(appending)
    handed: list[str] = []

    async def on_due(partition: int, bucket: int, due: list[str]) -> int:
        handed.extend(due)
        return len(due)

    run(DueIndex(closing, W, chunk_size=2).sweep(0, 7, 7, on_due))
    assert closing.writes and sorted(handed) == sorted([*keys, "k5", "k6", "k7"])
    for base, writes, kept in ((start, appending.writes, keys), (dict(appending), closing.writes, [])):
        for cut in range(len(writes) + 1):
            survived = replayed(base, writes[:cut])
            handed.clear()
            run(DueIndex(survived, W, chunk_size=2).sweep(0, 7, 7, on_due))
            assert set(kept) <= set(handed), (cut, survived)
            assert bucket_entries(survived, 0, 7) == {}, (cut, survived)


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
