"""One changelog record per key per commit: a table's writes held until the next offset commit.

Why. Each ``table[key] = value`` on a Faust table writes the store and sends one changelog record
at once. Scoring rewrites a lead's state for every event of the lead, and the visitor buffer a
visitor's state for every page view, so a lead with five events in a second sent five changelog
records, four of them overwritten before anything could read them (issue 14: over a 10,000-event
``leadflow bench`` with a live phase, 24,578 writes to ``lead_to_state`` and
``visitor_to_activity`` held 9,085 distinct keys per commit interval; ``leadflow bench --patch
table_write_counts``).

:class:`WriteBehindTable` keeps each key's latest value (or deletion) in memory, with the event
that wrote it, and writes it to the Faust table, store and changelog, when the consumer commits:
:func:`install` makes ``Consumer.force_commit`` flush every write-behind table first. Reads see
the held value. At-least-once holds:

- The flush runs before the commit fixes its offsets, in the same step, so every event whose
  offset the commit covers has its writes queued for the changelog first, and the commit waits
  for them (``streams.faust_flush``). A crash before the commit loses the held values and the
  offsets together: the events are redelivered and applied again, as after a crash today.
- Each value is written under the event that last wrote it (Faust picks the store partition and
  the changelog partition from the event being processed), so it lands where a write-through
  would have put it. Only keys on partitions this worker still owns are written: a partition
  taken away by a rebalance was flushed by the commit that precedes every revocation
  (``Consumer.wait_empty``), and anything left for it belongs to its new owner now.
- Outputs are sent before the state write, and the held write goes out later still, so the
  changelog never gets ahead of the outputs (module doc of ``streams.faust_flush``).

Order. A flush writes a table's keys in the order they were first held, not in the order of
every write: it is only for tables whose value per key stands alone (a lead's state, a
visitor's buffer), never for one that keeps an index next to the keys it indexes and relies on
the changelog's order to survive a crash (the SLA clocks, routing's parked leads, the due
index). Those stay write-through. Scoring's review index is written at once, so a lead's state
is never durable before the index entry its events scheduled.

Objects: a capability may hold the decoded value (:func:`write_encoded`, :func:`read_decoded`),
so a lead with five events in a commit interval is decoded once and encoded once, not five
times each (the compact state's deflate was 8-10 % of a draining worker's samples).

Bounded: a table that holds ``max_keys`` keys writes them all at once, inside the write that
reached the bound (a commit that never comes, e.g. during a broker outage, must not grow the
worker without end). Opt-in: ``LEADFLOW_STATE_WRITE_BEHIND_KEYS`` is 0 (write-through) by
default, because the live tail latency after a large catch-up measured worse with it
(docs/benchmarks.md, issue 14's fourth round).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from itertools import islice
from typing import Any

log = logging.getLogger(__name__)

_INSTALLED = "_leadflow_write_behind"
_REGISTRY = "_leadflow_write_behind_tables"  # on the Faust app: the tables its commits flush
_DELETED = None  # a held deletion
# Keys written per event-loop step at a commit (about 25-50 ms of encoding and table writes
# here): the streams run between slices while a large held set (a burst of reviews) is written.
FLUSH_SLICE_KEYS = 256


class WriteBehindTable:
    """A Faust table's mapping surface (``get``, ``[]``, ``in``, ``del``) with its writes held
    until :meth:`flush`. Written from the table's own stream only, like the table itself."""

    def __init__(self, table: Any, *, max_keys: int) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.table = table
        self.name: str = table.name
        self.max_keys = max_keys
        # key -> (the value, the event that wrote it, how to encode the value: None when it
        # is bytes already, or None for a deletion)
        self._held: dict[bytes, tuple[Any, Any, Callable[[Any], bytes] | None]] = {}
        self.dropped = 0  # keys of partitions no longer owned, in all (logged as they go)

    # --- reads ---------------------------------------------------------------------------
    def get(self, key: bytes, default: Any = None) -> Any:
        held = self._held.get(key)
        if held is None:
            return self.table.get(key, default)
        value, event, encode = held
        if encode is not None:  # a held object read as bytes (the lead API): encoded once
            value = encode(value)
            self._held[key] = (value, event, None)
        return default if value is _DELETED else value

    def get_decoded(self, key: bytes, decode: Callable[[bytes], Any]) -> Any:
        """The key's value as an object: the one held (:meth:`hold_encoded`, not decoded
        again), else ``decode`` of the stored bytes; None when absent."""
        held = self._held.get(key)
        if held is not None and held[2] is not None:
            return held[0]
        raw = self.get(key)
        return decode(raw) if raw else None

    def __getitem__(self, key: bytes) -> bytes:
        value: bytes | None = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.get(key) is not None

    def held_keys(self) -> int:
        return len(self._held)

    # --- writes --------------------------------------------------------------------------
    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._hold(key, value, None)

    def hold_encoded(self, key: bytes, value: Any, encode: Callable[[Any], bytes]) -> None:
        """Hold an object, encoded only when it is written (or read as bytes): a key written
        several times per commit is encoded once. The object must not change afterwards (the
        scoring rules never mutate a state they are given)."""
        self._hold(key, value, encode)

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self._hold(key, _DELETED, None)

    def _hold(self, key: bytes, value: Any, encode: Callable[[Any], bytes] | None) -> None:
        from faust.streams import current_event

        event = current_event()
        if event is None:  # as Faust's own table: the changelog partition is the event's
            raise RuntimeError(f"table {self.name!r} written outside of its stream (no current event)")
        self._held[key] = (value, event, encode)
        if len(self._held) >= self.max_keys:
            self.flush(None)

    def flush(self, owned: Iterable[Any] | None, limit: int | None = None) -> int:
        """Write every held key (the first ``limit`` held, if given) to the table under the
        event that last wrote it; ``owned``: the topic partitions this worker owns (None: all
        of them), a key of any other is dropped. Returns the keys written or dropped. A write
        that fails keeps it and those after it held."""
        if not self._held:
            return 0
        from faust.streams import _current_event

        owned_tps = None if owned is None else set(owned)
        written = dropped = 0
        try:
            for key in list(self._held) if limit is None else list(islice(self._held, limit)):
                value, event, encode = self._held[key]
                if owned_tps is not None and event.message.tp not in owned_tps:
                    dropped += 1
                else:
                    token = _current_event.set(weakref.ref(event))
                    try:
                        if value is _DELETED:
                            if key in self.table:
                                del self.table[key]
                        else:
                            self.table[key] = value if encode is None else encode(value)
                    finally:
                        _current_event.reset(token)
                    written += 1
                del self._held[key]
        finally:
            self.dropped += dropped
            if dropped:
                log.info("table %s: %d held writes of partitions no longer owned dropped", self.name, dropped)
        return written + dropped


def read_decoded(table: Any, key: bytes, decode: Callable[[bytes], Any]) -> Any:
    """``decode(table[key])``, or None when absent, for any table: a write-behind table hands
    back the object it holds without decoding it."""
    if isinstance(table, WriteBehindTable):
        return table.get_decoded(key, decode)
    raw = table.get(key)
    return decode(raw) if raw else None


def write_encoded(table: Any, key: bytes, value: Any, encode: Callable[[Any], bytes]) -> None:
    """``table[key] = encode(value)`` for any table: a write-behind table holds the object and
    encodes it once, when it writes it."""
    if isinstance(table, WriteBehindTable):
        table.hold_encoded(key, value, encode)
    else:
        table[key] = encode(value)


def register(app: Any, table: WriteBehindTable) -> None:
    """Flush ``table`` before each of ``app``'s offset commits (see :func:`install`, done here:
    a worker without a write-behind table keeps Faust's commit as it is)."""
    install()
    tables = getattr(app, _REGISTRY, None)
    if tables is None:
        tables = []
        setattr(app, _REGISTRY, tables)
    tables.append(table)


def flush_all(app: Any) -> int:
    """Write every held key of ``app``'s write-behind tables (before a commit)."""
    tables = getattr(app, _REGISTRY, ())
    if not tables:
        return 0
    owned = app.consumer.assignment()
    return sum(table.flush(owned) for table in tables)


async def flush_yielding(app: Any, slice_keys: int = FLUSH_SLICE_KEYS) -> int:
    """:func:`flush_all`, ``slice_keys`` keys at a time with the event loop let run in between,
    so a commit after a burst (a sweep of a bucket of decay reviews: hundreds of leads) does not
    stall the streams for the whole write. Only the last slice runs in the caller's step, so
    what is held when this returns is nothing (keys held meanwhile are written too)."""
    tables = getattr(app, _REGISTRY, ())
    done = 0
    while sum(table.held_keys() for table in tables) > slice_keys:
        owned, budget = app.consumer.assignment(), slice_keys
        for table in tables:
            if budget > 0 and table.held_keys():
                flushed = table.flush(owned, limit=budget)
                done, budget = done + flushed, budget - flushed
        await asyncio.sleep(0)
    return done + flush_all(app)


def install() -> None:
    """Patch ``faust.transport.consumer.Consumer.force_commit`` for this process (idempotent):
    the held writes are flushed first, in the step that fixes the offsets to commit. Every
    commit goes through it (the timer, the inline commit, rebalances, stop)."""
    from faust.transport.consumer import Consumer

    if getattr(Consumer, _INSTALLED, False):
        return
    Consumer.force_commit = _flushing_first(Consumer.force_commit)  # type: ignore[method-assign]
    setattr(Consumer, _INSTALLED, True)


def _flushing_first(force_commit: Callable[..., Awaitable[bool]]) -> Callable[..., Awaitable[bool]]:
    """``force_commit`` that first writes the consumer's app's held keys. Nothing awaits
    between the last of them and the offsets being fixed, so every event those offsets cover
    has its writes queued (events processed while earlier slices were written included)."""

    async def flushed_then_committed(self: Any, *args: Any, **kwargs: Any) -> bool:
        await flush_yielding(self.app)  # its last slice and the offsets: one step
        return await force_commit(self, *args, **kwargs)

    return flushed_then_committed
