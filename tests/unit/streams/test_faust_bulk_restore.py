"""The pure parts of the bulk changelog restore (streams/faust_bulk_restore.py): which partitions
are read, and the read loop's bookkeeping. The reads themselves go through a real broker in
tests/integration/test_bench_recovery.py (a cold start restores its tables in bulk)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka import TopicPartition
from faust.types import TP

from streams import faust_bulk_restore
from streams.faust_bulk_restore import BulkRestore, bulk_read, plan

A, B, C = TP("t-changelog", 0), TP("t-changelog", 1), TP("t-changelog", 2)


def test_only_partitions_far_enough_behind_are_planned():
    highwaters = {A: 99_999, B: 20_000, C: -1}  # last offsets; C is empty
    start = {A: None, B: 15_000, C: None}  # last offset applied (None: nothing local)
    assert plan([A, B, C], start, highwaters, min_records=10_000) == {A: (0, 99_999)}
    assert plan([A, B, C], start, highwaters, min_records=5_000) == {A: (0, 99_999), B: (15_001, 20_000)}
    assert plan([A, B, C], {A: -1}, highwaters, min_records=1) == {A: (0, 99_999), B: (0, 20_000)}
    assert plan([A, B], start, highwaters, min_records=0) == {}  # off


class FakeConsumer:
    """Serves records by partition in fetches of ``batch``; ``fail_after`` fetches, raises."""

    def __init__(self, logs, *, batch=3, fail_after=None, **kwargs):
        self.logs, self.batch, self.fail_after, self.kwargs = logs, batch, fail_after, kwargs
        self.positions, self.paused, self.fetches, self.stopped = {}, set(), 0, False

    async def start(self):
        return None

    async def stop(self):
        self.stopped = True

    def assign(self, tps):
        self.assigned = list(tps)

    def seek(self, tp, offset):
        self.positions[tp] = offset

    def pause(self, tp):
        self.paused.add(tp)

    async def position(self, tp):
        return self.positions[tp]

    async def getmany(self, *tps, timeout_ms, max_records):
        self.fetches += 1
        if self.fail_after is not None and self.fetches > self.fail_after:
            raise ConnectionError("broker went away")
        out = {}
        for tp in tps:
            log = [r for r in self.logs[tp] if r.offset >= self.positions[tp]][: self.batch]
            if log:
                out[tp] = log
                self.positions[tp] = log[-1].offset + 1
        return out


def record(tp, offset, value=b"v"):
    return SimpleNamespace(partition=tp.partition, offset=offset, key=b"k%d" % offset, value=value)


def test_each_partition_is_read_to_its_highwater_in_offset_order_and_no_further():
    ka, kb = TopicPartition(A.topic, A.partition), TopicPartition(B.topic, B.partition)
    logs = {
        ka: [record(A, o) for o in (0, 1, 4, 5, 6, 9, 10)],  # compacted: gaps in the offsets
        kb: [record(B, 3), record(B, 4, value=None)],  # a tombstone
    }
    made = {}

    def factory(**kwargs):
        made["consumer"] = FakeConsumer(logs, **kwargs)
        return made["consumer"]

    applied_events, applied = [], {}
    restore = BulkRestore(client_kwargs={"bootstrap_servers": "x:1"}, min_records=1, fetch_bytes=1 << 20)
    asyncio.run(
        bulk_read(
            restore,
            {A: (0, 9), B: (3, 4)},
            lambda tp, events: applied_events.append((tp, [e.message.offset for e in events])),
            applied,
            consumer_factory=factory,
        )
    )
    by_tp = {}
    for tp, offsets in applied_events:
        by_tp.setdefault(tp, []).extend(offsets)
    assert by_tp == {A: [0, 1, 4, 5, 6, 9], B: [3, 4]}  # 10 was written after the highwater: Faust reads it
    assert applied == {A: 9, B: 4}
    consumer = made["consumer"]
    assert consumer.kwargs["group_id"] is None and consumer.kwargs["enable_auto_commit"] is False
    assert consumer.kwargs["bootstrap_servers"] == "x:1"  # the workers' connection settings
    assert consumer.stopped


def _read_ten(consumer_class=FakeConsumer, *, budget_s=None, **consumer_kwargs) -> dict:
    """Bulk-read offsets 0-9 of partition A in fetches of 4; returns what was applied (also
    when the read raised: the exception is attached as ``applied["error"]``)."""
    logs = {TopicPartition(A.topic, A.partition): [record(A, o) for o in range(10)]}
    applied: dict = {}
    restore = BulkRestore(client_kwargs={}, min_records=1, fetch_bytes=1 << 20)
    try:
        asyncio.run(
            bulk_read(
                restore,
                {A: (0, 9)},
                lambda tp, events: None,
                applied,
                budget_s=budget_s,
                consumer_factory=lambda **kw: consumer_class(logs, batch=4, **consumer_kwargs, **kw),
            )
        )
    except ConnectionError as exc:
        applied["error"] = exc
    return applied


def test_a_failure_part_way_keeps_the_progress_made():
    applied = _read_ten(fail_after=1)
    assert isinstance(applied.pop("error"), ConnectionError)
    assert applied == {A: 3}  # the first fetch (0-3) stays applied; Faust's recovery reads from there


def test_the_read_stops_when_its_time_is_spent_keeping_the_progress_made():
    class SlowConsumer(FakeConsumer):
        async def getmany(self, *tps, timeout_ms, max_records):
            await asyncio.sleep(0.05)
            return await super().getmany(*tps, timeout_ms=timeout_ms, max_records=max_records)

    applied = _read_ten(SlowConsumer, budget_s=0.01)
    assert applied == {A: 3}  # one fetch, then the budget was spent: Faust's recovery reads from 3


def test_the_events_carry_what_the_stores_read():
    event = faust_bulk_restore._event(A, record(A, 7, value=None))
    assert (event.key, event.value) == (b"k7", None)
    assert (event.message.tp, event.message.partition, event.message.offset) == (A, 0, 7)
    assert (event.message.key, event.message.value) == (b"k7", None)


def test_install_is_idempotent_and_keeps_the_original_for_apps_without_a_bulk_restore():
    from faust.tables.recovery import Recovery

    faust_bulk_restore.install()
    patched = Recovery._build_offsets
    faust_bulk_restore.install()
    assert Recovery._build_offsets is patched
    calls = []

    async def original(self, consumer, tps, destination, title):
        calls.append(title)

    wrapped = faust_bulk_restore._wrap(original)
    recovery = SimpleNamespace(app=SimpleNamespace())  # no BulkRestore on the app
    asyncio.run(wrapped(recovery, None, {A}, {}, "active"))
    assert calls == ["active"]
