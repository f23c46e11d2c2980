"""Prototyping hook: named code patches a bench worker applies before it starts
(``leadflow bench --patch NAME``, see ``leadflow.bench.worker``), to measure a change before
asking the owner of the code to make it. For measurement only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PATCHES: dict[str, Callable[[], None]] = {}


def _patch(name: str):
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        PATCHES[name] = fn
        return fn

    return register


@_patch("no_spinner")
def _no_spinner() -> None:
    """Faust's terminal spinner off (it sets the root logger to DEBUG at loglevel >= warn)."""
    import faust.worker

    original = faust.worker.Worker.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.spinner = None

    faust.worker.Worker.__init__ = init  # type: ignore[method-assign]


@_patch("fast_event_dict")
def _fast_event_dict() -> None:
    """LeadEvent.to_dict without dataclasses.asdict (a recursive deepcopy per event)."""
    from agents.domain.events import LeadEvent

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "lead_id": self.lead_id,
            "visitor_id": self.visitor_id,
            "occurred_at_ms": self.occurred_at_ms,
            "received_at_ms": self.received_at_ms,
            "source": self.source,
            "data": dict(self.data),
        }

    LeadEvent.to_dict = to_dict  # type: ignore[method-assign]


@_patch("chunked_due_index")
def _chunked_due_index() -> None:
    """DueIndex buckets as chunks of at most 64 keys: an append costs O(64), not O(bucket).

    Patches only the index's storage (``members``/``append``/``drop``), so scoring and SLA keep
    their sweep logic; buckets written in the one-list format are still read (and dropped)."""
    import orjson

    from streams import due_index as di

    chunk_size = 64

    def chunk_key(bkey: bytes, i: int) -> bytes:
        return b"%s:%d" % (bkey, i)

    def head(table, bkey: bytes) -> tuple[int, list[str]]:
        """(number of chunks, keys of a bucket stored in the one-list format)."""
        raw = table.get(bkey)
        if raw is None:
            return 0, []
        value = orjson.loads(raw)
        return (value, []) if isinstance(value, int) else (0, value)

    def members(self, partition: int, bucket: int) -> list[str]:
        bkey = di.bucket_key(partition, bucket)
        chunks, keys = head(self.table, bkey)
        for i in range(chunks):
            keys.extend(orjson.loads(self.table.get(chunk_key(bkey, i)) or b"[]"))
        return list(dict.fromkeys(keys))

    def append(self, partition: int, bucket: int, keys) -> None:
        bkey = di.bucket_key(partition, bucket)
        chunks, legacy = head(self.table, bkey)
        if legacy:  # a bucket in the one-list format becomes chunk 0
            self.table[chunk_key(bkey, 0)] = orjson.dumps(legacy)
            self.table[bkey] = b"1"
            chunks = 1
        last = orjson.loads(self.table.get(chunk_key(bkey, chunks - 1)) or b"[]") if chunks else []
        added = [k for k in dict.fromkeys(keys) if k not in last]
        while added:  # a duplicate in an earlier chunk is harmless: members() and the sweep dedupe
            if not chunks or len(last) >= chunk_size:
                chunks, last = chunks + 1, []
                self.table[bkey] = b"%d" % chunks
            room = chunk_size - len(last)
            last, added = last + added[:room], added[room:]
            self.table[chunk_key(bkey, chunks - 1)] = orjson.dumps(last)

    def drop(self, partition: int, bucket: int) -> None:
        bkey = di.bucket_key(partition, bucket)
        chunks, _ = head(self.table, bkey)
        for i in range(chunks):
            if self.table.get(chunk_key(bkey, i)) is not None:
                del self.table[chunk_key(bkey, i)]
        if self.table.get(bkey) is not None:
            del self.table[bkey]

    di.DueIndex.members = members  # type: ignore[method-assign]
    di.DueIndex.append = append  # type: ignore[method-assign]
    di.DueIndex.drop = drop  # type: ignore[method-assign]


@_patch("big_producer_buffer")
def _big_producer_buffer() -> None:
    """Faust's changelog ProducerBuffer holds 100 messages before the stream stops to flush."""
    from faust.transport.producer import ProducerBuffer

    ProducerBuffer.max_messages = 2000
