"""Windowed timeouts: the one sweeper of every capability with deadlines (scoring's decay
reviews, SLA clocks).

Faust's ``on_window_close`` is a poor timer (docs/faust-pitfalls.md item 4), so leadflow follows
Kafka Streams' punctuator design, in two halves:

- :class:`DueIndex`, on the owning agent: ``bucket -> [keys]`` entries (deadlines bucketed by
  due time, ``width_ms`` wide) and the partition's cursor (the last closed bucket), in a
  changelog-backed table of the capability. A bucket is stored in chunks (layout below), so
  scheduling a key costs the same in a bucket of 10 keys or of 10,000. :meth:`DueIndex.sweep`
  closes a range of ended buckets: it hands the keys of each bucket to the capability's
  ``on_due(partition, bucket, keys)`` and removes the bucket (and moves the cursor) only
  *after* that returned, so a crash anywhere in between leaves the bucket for the redelivered
  command. Work per sweep is proportional to the buckets and keys that are due, never to all
  keys.
- :class:`Sweeper`, on the wall clock: a timer (every ``sweep_interval_s``, on every worker)
  that, for each partition of the command topic this worker owns, sends the commands covering
  the buckets that ended since its last request, starting from the cursor after a restart or a
  rebalance. A timer must not write tables (docs/faust-pitfalls.md item 5): it only asks the
  partition's own agent, which calls :meth:`DueIndex.sweep`.

A capability supplies only what is its own: the table, how a command is encoded, and what to
do with a due key (``on_due``: load the key's state, skip it if the state says it is due later -
an entry is appended, never moved, when a deadline changes - apply, publish, write;
re-schedule with ``min_bucket=bucket + 1``, never into the bucket being closed).

Crash safety. Keep the index in the same table as the state it indexes (the SLA clocks do) and
write, per due key, outputs first, then its next index entry, then its state: a table writes
its changelog in order to the partition of the command, so a crash loses only a suffix of
those writes and the bucket's removal is the last of them. Two tables (scoring's reviews) give
no such order across them; the bucket is still removed last.

Bucket layout. The head ``b:<partition>:<bucket>`` holds the number of chunks, and chunk ``i``
(``b:<partition>:<bucket>:<i>``) an orjson list of at most ``chunk_size`` keys: an append
rewrites the last chunk (and the head when it opens a chunk), never the whole bucket. It
dedupes against that chunk only, so a key may repeat in earlier chunks; :meth:`DueIndex.members`
dedupes. A head holding a list is a bucket written before chunks (a changelog of an older
worker): it is read as it is, converted to chunks by the first append, and dropped. Any suffix
of the index's own writes may be lost without losing a key the table still says is indexed:
an append writes the head before the chunk it opens (a lost chunk is read as empty, and its
keys went with the state written after them); a conversion writes its chunks before the head
that points at them; a drop deletes the chunks, then the head - the bucket's removal is still
its last write, and a sweep closes a head left without chunks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Protocol

import orjson

log = logging.getLogger(__name__)

OnDue = Callable[[int, int, list[str]], Awaitable[int]]  # (partition, bucket, keys) -> keys processed


def bucket_of(due_ms: int, width_ms: int) -> int:
    return due_ms // width_ms


def bucket_end_ms(bucket: int, width_ms: int) -> int:
    return (bucket + 1) * width_ms


def bucket_key(partition: int, bucket: int) -> bytes:
    # The partition is part of the key so the memory store (one dict for all partitions)
    # and the RocksDB store (one DB per partition) behave the same.
    return b"b:%d:%d" % (partition, bucket)


def chunk_key(bkey: bytes, i: int) -> bytes:
    return b"%s:%d" % (bkey, i)


def cursor_key(partition: int) -> bytes:
    return b"c:%d" % partition


class DueIndex:
    """Bucketed due times over a bytes->bytes table (a Faust table, or a dict in tests and
    benchmarks). Call only from the agent that owns the partition.

    Storage goes through :meth:`members`, :meth:`append` and :meth:`drop` (a bucket is a head
    and chunks of at most ``chunk_size`` keys, see the module docstring); everything else is
    written in terms of them."""

    def __init__(self, table: MutableMapping[bytes, bytes], width_ms: int, *, chunk_size: int = 64) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        self.table = table
        self.width_ms = width_ms
        self.chunk_size = chunk_size

    def bucket_of(self, due_ms: int) -> int:
        return due_ms // self.width_ms

    # --- storage -------------------------------------------------------------------------------

    def _head(self, bkey: bytes) -> tuple[int, list[str] | None]:
        """(number of chunks, the keys of a bucket in the one-list format, else None)."""
        raw = self.table.get(bkey)
        if raw is None:
            return 0, None
        value = orjson.loads(raw)
        return (value, None) if isinstance(value, int) else (0, value)

    def _chunk(self, bkey: bytes, i: int) -> list[str]:
        raw = self.table.get(chunk_key(bkey, i))
        return orjson.loads(raw) if raw else []  # absent: a crash lost it (module docstring)

    def members(self, partition: int, bucket: int) -> list[str]:
        """Keys indexed in a bucket, each once (read only: the bucket stays open)."""
        bkey = bucket_key(partition, bucket)
        chunks, legacy = self._head(bkey)
        if legacy is not None:
            return legacy
        keys: list[str] = []
        for i in range(chunks):
            keys.extend(self._chunk(bkey, i))
        return list(dict.fromkeys(keys))

    def append(self, partition: int, bucket: int, keys: Iterable[str]) -> None:
        """Add the keys the bucket's last chunk does not hold, opening chunks as it fills."""
        bkey = bucket_key(partition, bucket)
        chunks, legacy = self._head(bkey)
        if legacy:
            chunks = self._convert(bkey, legacy)
        last = self._chunk(bkey, chunks - 1) if chunks else []
        held = set(last)
        added = [key for key in dict.fromkeys(keys) if key not in held]
        if not added:
            return
        writes: list[tuple[int, list[str]]] = []
        if chunks and len(last) < self.chunk_size:
            room = self.chunk_size - len(last)
            writes.append((chunks - 1, last + added[:room]))
            added = added[room:]
        opened = self._split(added)
        if opened:  # the head first: a chunk it counts but a crash lost is read as empty
            self.table[bkey] = b"%d" % (chunks + len(opened))
        writes.extend(enumerate(opened, start=chunks))
        for i, chunk in writes:
            self.table[chunk_key(bkey, i)] = orjson.dumps(chunk)

    def _split(self, keys: list[str]) -> list[list[str]]:
        return [keys[i : i + self.chunk_size] for i in range(0, len(keys), self.chunk_size)]

    def _convert(self, bkey: bytes, legacy: list[str]) -> int:
        """A one-list bucket to chunks: the chunks first, then the head pointing at them."""
        chunks = self._split(legacy)
        for i, chunk in enumerate(chunks):
            self.table[chunk_key(bkey, i)] = orjson.dumps(chunk)
        self.table[bkey] = b"%d" % len(chunks)
        return len(chunks)

    def drop(self, partition: int, bucket: int) -> None:
        """The chunks, then the head (the bucket's removal, last)."""
        bkey = bucket_key(partition, bucket)
        if self.table.get(bkey) is None:
            return
        chunks, legacy = self._head(bkey)
        if legacy is not None:  # the chunks a conversion cut short by a crash may have written
            chunks = len(self._split(legacy))
        for i in range(chunks):
            ckey = chunk_key(bkey, i)
            if self.table.get(ckey) is not None:
                del self.table[ckey]
        del self.table[bkey]

    # --- cursor --------------------------------------------------------------------------------

    def cursor(self, partition: int) -> int | None:
        """Last bucket closed on this partition (None before the first schedule)."""
        value = self.table.get(cursor_key(partition))
        return int(value) if value is not None else None

    def advance(self, partition: int, bucket: int) -> None:
        """The cursor to ``bucket``, unless it is there already."""
        cursor = self.cursor(partition)
        if cursor is None or cursor < bucket:
            self.table[cursor_key(partition)] = str(bucket).encode()

    def _first_open(self, partition: int, now_ms: int) -> int:
        cursor = self.cursor(partition)
        if cursor is None:  # first use on this partition: everything before now counts as closed
            cursor = self.bucket_of(now_ms) - 1
            self.table[cursor_key(partition)] = str(cursor).encode()
        return cursor + 1

    # --- scheduling ----------------------------------------------------------------------------

    def schedule_many(
        self, partition: int, due_by_key: dict[str, int], now_ms: int, *, min_bucket: int = 0
    ) -> list[int]:
        """Index every key under its due bucket, one read-modify-write per bucket; returns the
        buckets written. A due time in a closed bucket (replayed history, a late event) or
        before ``min_bucket`` goes to the first bucket allowed, so it fires at the next sweep
        instead of never."""
        if not due_by_key:
            return []
        floor = max(self._first_open(partition, now_ms), min_bucket)
        groups: dict[int, list[str]] = {}
        for key, due_ms in due_by_key.items():
            groups.setdefault(max(self.bucket_of(due_ms), floor), []).append(key)
        for bucket, keys in groups.items():
            self.append(partition, bucket, keys)
        return list(groups)

    def schedule(self, partition: int, key: str, due_ms: int, now_ms: int, *, min_bucket: int = 0) -> int:
        """Index one key; returns the bucket used."""
        return self.schedule_many(partition, {key: due_ms}, now_ms, min_bucket=min_bucket)[0]

    # --- sweeping (one sweep command) ----------------------------------------------------------

    async def sweep(self, partition: int, first: int, last: int, on_due: OnDue) -> int:
        """Close buckets ``first..last``; returns the sum of what ``on_due`` returned. An empty
        bucket costs one read; the cursor is written once for the whole range."""
        processed = 0
        for bucket in range(first, last + 1):
            if self.table.get(bucket_key(partition, bucket)) is not None:  # a head left without chunks too
                processed += await self.close(partition, bucket, on_due)
        self.advance(partition, last)
        return processed

    async def close(self, partition: int, bucket: int, on_due: OnDue) -> int:
        """Hand the bucket's keys to ``on_due`` (again for keys appended meanwhile) until none is
        left, then remove the bucket and move the cursor - last, once everything else is written."""
        done: set[str] = set()
        processed = 0
        while True:
            todo = [key for key in self.members(partition, bucket) if key not in done]
            if not todo:
                break
            done.update(todo)
            processed += await on_due(partition, bucket, todo)
        self.drop(partition, bucket)
        self.advance(partition, bucket)
        return processed


class _Channel(Protocol):
    async def send(
        self, *, key: bytes | None = None, value: bytes | None = None, partition: int | None = None
    ) -> Any: ...


class SweepHost(Protocol):
    """What the sweeper uses of :class:`streams.app.Pipeline` (or ``streams.testing.FakePipeline``)."""

    settings: Any

    def now_ms(self) -> int: ...

    def channel(self, name: str) -> Any: ...

    def timer(self, interval_s: float, *, name: str) -> Callable[[Callable[[], Awaitable[None]]], Any]: ...

    def owned_partitions(self, topic: str) -> set[int]: ...


class Sweeper:
    """The wall-clock half: timer ``timer`` asks the agent owning each partition of ``channel``
    (a TopicNames field the agent reads) to close the buckets of ``index`` that ended, with
    commands ``command(partition, first, last)`` (bytes) of at most ``max_buckets_per_command``
    buckets, keyed ``key``. ``after(owned partitions)`` runs after each round (gauges)."""

    def __init__(
        self,
        pipeline: SweepHost,
        index: DueIndex,
        *,
        timer: str,
        channel: str,
        key: bytes,
        command: Callable[[int, int, int], bytes],
        max_buckets_per_command: int = 3600,
        after: Callable[[set[int]], None] | None = None,
    ) -> None:
        if max_buckets_per_command < 1:
            raise ValueError("max_buckets_per_command must be >= 1")
        self.pipeline = pipeline
        self.index = index
        self.name = timer
        self.topic = channel
        self.channel = pipeline.channel(channel)
        self.key = key
        self.command = command
        self.max_buckets = max_buckets_per_command
        self.after = after
        self.requested_up_to: dict[int, int] = {}  # partition -> last bucket a sweep was requested for

        async def request_sweeps() -> None:
            try:
                await self.request()
            except Exception:  # a timer that raises stops for good; log and try at the next tick
                log.exception("%s: requesting sweeps failed", timer)

        pipeline.timer(pipeline.settings.sweep_interval_s, name=timer)(request_sweeps)

    async def request(self) -> None:
        """One round: the commands for every owned partition's ended buckets."""
        last_closed = self.index.bucket_of(self.pipeline.now_ms()) - 1
        owned = self.pipeline.owned_partitions(self.topic)
        for partition in list(self.requested_up_to):
            if partition not in owned:
                del self.requested_up_to[partition]  # moved to another worker; its cursor moves on there
        for partition in sorted(owned):
            start = self.requested_up_to.get(partition)
            if start is None:
                start = self.index.cursor(partition)
            if start is None:
                continue  # nothing ever scheduled on this partition
            first = start + 1
            while first <= last_closed:
                last = min(last_closed, first + self.max_buckets - 1)
                await self.channel.send(key=self.key, partition=partition, value=self.command(partition, first, last))
                first = last + 1
            self.requested_up_to[partition] = max(start, last_closed)
        if self.after is not None:
            self.after(owned)
