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
"""

from __future__ import annotations

import gc
import logging
import time

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
