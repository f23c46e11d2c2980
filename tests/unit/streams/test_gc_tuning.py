"""Garbage collection in the worker (streams/gc_tuning.py): start-up objects frozen, full
collections rarer."""

from __future__ import annotations

import gc

from streams.gc_tuning import collect_fully_less_often, freeze_what_is_alive


def test_freeze_what_is_alive_moves_live_objects_out_of_collections():
    kept = [[i] for i in range(1000)]  # containers alive now: tracked by the collector
    try:
        frozen = freeze_what_is_alive()
        assert frozen == gc.get_freeze_count() >= len(kept)
        assert not any(obj is kept for obj in gc.get_objects())  # no generation walks it any more
    finally:
        gc.unfreeze()


def test_full_collections_are_looked_at_every_n_young_collections():
    before = gc.get_threshold()
    try:
        collect_fully_less_often(100)
        assert gc.get_threshold() == (before[0], before[1], 100)  # the young generations as they were
    finally:
        gc.set_threshold(*before)
