"""Cold table recovery at consumer speed: a changelog far behind is bulk-read before Faust's own recovery.

Why. Faust restores a table by handing every changelog record, one at a time, through its
consumer, an ``Event`` and a queue to ``Recovery._slurp_changelogs``, which waits on the queue
per record (a task and a timer each time), applies records in small batches and re-checks
whether recovery is done after each one. That costs about 250 µs per record on a 2-core
machine: a worker whose local state is gone took 246 s to come back with 1,000,000 leads
(``make bench-recovery``, issue 14), where a plain consumer reads the same changelog in a
fraction of that.

What. :func:`install` wraps ``Recovery._build_offsets``, the step that decides where each
assigned active changelog partition is read from (after the highwaters are known, before the
seek). For each active partition more than ``min_records`` behind its highwater, a group-less
aiokafka consumer with the workers' connection settings reads the partition from the
position Faust would start at up to that highwater, in large fetches, and applies each fetch
with the table's own ``apply_changelog_batch`` (the very writes Faust's recovery makes,
tombstones as deletes; the RocksDB store records the offset with them). The position Faust
reads from then is the last offset applied, so Faust's recovery only reads what is left (the
records written meanwhile; none while this worker owns the partition). Any failure - a
fetch timeout, a broker error - stops the bulk read where it is: what was applied stays
applied (in offset order) and Faust's recovery reads the rest as before. So does running out
of time: Faust gives the step ``broker_request_timeout`` (90 s) and stops recovery beyond it,
so the bulk read stops at 60 % of that (about 2.7M records at this machine's 50k records/s). Standby partitions
are left to Faust (they are read continuously, never far behind).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from faust.tables.recovery import Recovery

log = logging.getLogger(__name__)

_INSTALLED = "_leadflow_bulk_restore"
APP_ATTRIBUTE = "_leadflow_bulk_restore"  # the app's BulkRestore (set by streams.app.faust_app)
BUDGET_SHARE = 0.6  # of Faust's broker_request_timeout, the time the step it runs in is given


@dataclass(frozen=True)
class BulkRestore:
    """What one worker's bulk reads need: its Kafka client settings and when to use them."""

    client_kwargs: dict[str, Any]  # streams.connections.kafka_client_kwargs(settings)
    min_records: int  # a partition at least this far behind is bulk-read (0: never)
    fetch_bytes: int  # per partition and per fetch
    idle_timeout_s: float = 30.0  # no record for this long: leave the rest to Faust


@dataclass(frozen=True, slots=True)
class ChangelogMessage:
    """The part of a Faust message that ``apply_changelog_batch`` reads."""

    tp: Any
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class ChangelogEvent:
    """The part of a Faust event that the stores' ``apply_changelog_batch`` reads."""

    message: ChangelogMessage
    key: bytes | None
    value: bytes | None


def plan(
    tps: Iterable[Any], start_offsets: dict[Any, int | None], highwaters: dict[Any, int], min_records: int
) -> dict[Any, tuple[int, int]]:
    """tp -> (first offset to read, last offset to read) for the partitions worth a bulk read.

    ``start_offsets``: the last offset already applied per partition (None or -1: none);
    ``highwaters``: the last offset in each partition (-1: empty), as Faust's recovery keeps them."""
    if min_records <= 0:
        return {}
    todo = {}
    for tp in tps:
        applied = start_offsets.get(tp)
        first = 0 if applied is None or applied < 0 else applied + 1
        last = highwaters.get(tp, -1)
        if last is not None and last - first + 1 >= min_records:
            todo[tp] = (first, last)
    return todo


async def bulk_read(
    restore: BulkRestore,
    todo: dict[Any, tuple[int, int]],
    apply: Callable[[Any, list[ChangelogEvent]], None],
    applied: dict[Any, int],
    *,
    budget_s: float | None = None,
    consumer_factory: Callable[..., Any] | None = None,
) -> None:
    """Read each partition of ``todo`` from its first to its last offset and ``apply(tp, events)``
    fetch by fetch, recording in ``applied`` tp -> the last offset applied as it goes (so a
    failure part way leaves the progress made). Stops after ``budget_s`` seconds (None: none)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    factory = consumer_factory or AIOKafkaConsumer
    consumer = factory(
        **restore.client_kwargs,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # compacted away below the first offset: start where the log starts
        max_partition_fetch_bytes=restore.fetch_bytes,
        fetch_max_bytes=max(restore.fetch_bytes * max(1, len(todo)), 52_428_800),
    )
    by_kafka_tp = {TopicPartition(tp.topic, tp.partition): tp for tp in todo}
    await consumer.start()
    try:
        consumer.assign(list(by_kafka_tp))
        for ktp, tp in by_kafka_tp.items():
            consumer.seek(ktp, todo[tp][0])
        remaining = set(by_kafka_tp)
        idle_since = started = time.monotonic()
        while remaining:
            if budget_s is not None and time.monotonic() - started > budget_s:
                log.info("bulk restore: its %.0f s are spent; Faust's recovery reads the rest", budget_s)
                break
            batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=20_000)
            if batches:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > restore.idle_timeout_s:
                log.warning(
                    "bulk restore: no changelog record for %.0f s; Faust's recovery reads the rest",
                    restore.idle_timeout_s,
                )
                break
            for ktp, records in batches.items():
                tp = by_kafka_tp[ktp]
                last = todo[tp][1]
                events = [_event(tp, r) for r in records if r.offset <= last]
                if events:
                    apply(tp, events)
                    applied[tp] = events[-1].message.offset
            for ktp in list(remaining):
                if await consumer.position(ktp) > todo[by_kafka_tp[ktp]][1]:
                    remaining.discard(ktp)
                    consumer.pause(ktp)
    finally:
        await consumer.stop()


def _event(tp: Any, record: Any) -> ChangelogEvent:
    message = ChangelogMessage(tp, record.partition, record.offset, record.key, record.value)
    return ChangelogEvent(message, record.key, record.value)


def _wrap(original: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    async def build_offsets(self: Recovery, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        restore: BulkRestore | None = getattr(self.app, APP_ATTRIBUTE, None)
        if restore is not None and title == "active" and tps:
            await _restore_actives(self, restore, set(tps), destination)
        await original(self, consumer, tps, destination, title)

    return build_offsets


async def _restore_actives(recovery: Recovery, restore: BulkRestore, tps: set[Any], destination: Any) -> None:
    todo = plan(tps, dict(destination), dict(recovery.active_highwaters), restore.min_records)
    if not todo:
        return
    records = sum(last - first + 1 for first, last in todo.values())
    log.info("bulk restore: reading up to %d changelog records of %d partitions", records, len(todo))
    started = time.monotonic()

    def apply(tp: Any, events: list[ChangelogEvent]) -> None:
        # The stores read only .key, .value and .message (tp, partition, offset, key, value) of an event.
        recovery.tp_to_table[tp].apply_changelog_batch(events)  # type: ignore[arg-type]

    applied: dict[Any, int] = {}
    # Faust gives this step broker_request_timeout (90 s by default) and stops the recovery
    # service when it runs over: the bulk read keeps well inside it, Faust reads what is left.
    budget_s = BUDGET_SHARE * float(recovery.app.conf.broker_request_timeout)
    try:
        await bulk_read(restore, todo, apply, applied, budget_s=budget_s)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the broker, the network: Faust's own recovery reads what is left
        log.warning("bulk restore stopped (%s); Faust's recovery reads the rest", type(exc).__name__)
    for tp, offset in applied.items():
        previous = destination.get(tp)
        destination[tp] = offset if previous is None else max(previous, offset)
    log.info(
        "bulk restore: %d partitions up to date in %.1f s; Faust's recovery reads what was written since",
        len(applied),
        time.monotonic() - started,
    )


def install() -> None:
    """Patch ``Recovery._build_offsets`` once per process (idempotent). An app without a
    :class:`BulkRestore` (``APP_ATTRIBUTE``) recovers exactly as before."""
    if getattr(Recovery, _INSTALLED, False):
        return
    Recovery._build_offsets = _wrap(Recovery._build_offsets)  # type: ignore[method-assign,assignment]  # the patch itself
    setattr(Recovery, _INSTALLED, True)
