"""Python's garbage collector in a long-running worker: what start-up built is frozen out of it.

Why (issue 14). In every live ``leadflow bench`` run the longest event-loop steps were full
garbage collections, 160-175 ms every few seconds (the bench's ``gc_time`` patch). A full
collection walks every container object the process holds, and nearly all of a worker's are
built at start-up and live until exit: modules, Faust's app, agents and tables, the Avro
schemas, the scoring model. Every event that arrives during one waits for it.

``gc.freeze()`` moves every object alive at that moment into a permanent generation that no
collection walks. :func:`freeze_what_is_alive` does it once, when the worker is first ready
(tables recovered, agents running): objects made later are collected as before. What it costs:
a cycle frozen then and dropped later is never freed (start-up leftovers, once).
``LEADFLOW_GC_FREEZE_AT_READY=false`` keeps Python's default.

What the freeze cannot reach is what the worker builds while it runs, above all the reorder
window's cached paths (``agents.scoring.reorder.PathCache``: about 170,000 objects once full).
:func:`collect_fully_less_often` makes full collections rarer (``LEADFLOW_GC_FULL_COLLECTION_EVERY``
young collections between two looks at one, Python's default 10): cyclic garbage that reached
the oldest generation waits longer, the rest is freed by reference counting as before.

Faust's RocksDB store runs a full collection each time a rebalance revokes partitions from a
table, whether or not it closed anything (``Store.revoke_partitions``; the first assignment
and every rebalance call it with the revoked set, often empty): one per table, six per
rebalance, 100-180 ms each in a worker whose path cache is full. The collection is there to
release a closed partition's database (rocksdict closes it when the object is freed), so
:func:`collect_only_when_a_store_closes` keeps it for that case only.
"""

from __future__ import annotations

import functools
import gc
import logging
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

log = logging.getLogger(__name__)


def collect_fully_less_often(every: int) -> None:
    """Look at a full collection every ``every`` young (generation 1) collections."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, every)


def freeze_what_is_alive() -> int:
    """Collect once, then freeze everything still alive. Returns the number of frozen objects."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info(
        "garbage collector: %d objects alive after start-up frozen out of collections (%.0f ms)",
        frozen,
        (time.perf_counter() - started) * 1000,
    )
    return frozen


_STORE_PATCHED = "_leadflow_collect_only_when_a_store_closes"


def collect_only_when_a_store_closes() -> None:
    """Faust's RocksDB store collects garbage after a rebalance only if it closed a partition's
    database (once per process; idempotent)."""
    from faust.stores import rocksdb

    if getattr(rocksdb.Store, _STORE_PATCHED, False):
        return
    # The module's own gc.collect() calls (revoke_partitions, stop) become no-ops; the wrappers
    # below collect when a database was let go, as Faust meant them to.
    rocksdb.gc = SimpleNamespace(collect=lambda *args: 0)  # type: ignore[assignment]  # the patch itself
    rocksdb.Store.revoke_partitions = _collecting_if_closed(rocksdb.Store.revoke_partitions)  # type: ignore[method-assign]
    rocksdb.Store.stop = _collecting_after_stop(rocksdb.Store.stop)  # type: ignore[method-assign]
    setattr(rocksdb.Store, _STORE_PATCHED, True)


def _collecting_if_closed(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def revoke_partitions(self: Any, table: Any, tps: Any) -> None:
        open_before = len(self._dbs)
        original(self, table, tps)
        if len(self._dbs) < open_before:
            gc.collect()

    return revoke_partitions


def _collecting_after_stop(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def stop(self: Any) -> None:
        await original(self)
        gc.collect()

    return stop
