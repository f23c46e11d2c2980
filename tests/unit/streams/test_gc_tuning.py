"""Garbage collection in the worker (streams/gc_tuning.py): start-up objects frozen, full
collections rarer, Faust's store collecting only when it closes a database."""

from __future__ import annotations

import asyncio
import gc
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from streams import gc_tuning
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


# --- Faust's RocksDB store: a full collection only when a partition's database was closed --------


class _Store:
    """Faust's Store.revoke_partitions / stop, as far as the wrappers see them."""

    def __init__(self, partitions):
        self._dbs = {p: object() for p in partitions}

    def revoke_partitions(self, table, tps):
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                self._dbs.pop(tp.partition, None)

    async def stop(self):
        self._dbs.clear()


def _table(topic):
    return SimpleNamespace(changelog_topic=SimpleNamespace(topics={topic}))


@pytest.fixture
def collections(monkeypatch):
    calls = []
    monkeypatch.setattr(gc_tuning.gc, "collect", lambda *args: calls.append(args) or 0)
    return calls


def test_a_rebalance_that_closes_nothing_runs_no_full_collection(collections):
    revoke = gc_tuning._collecting_if_closed(_Store.revoke_partitions)
    store = _Store([0, 1])
    revoke(store, _table("app-lead_to_state-changelog"), set())  # the first assignment: nothing revoked
    revoke(store, _table("app-lead_to_state-changelog"), {TopicPartition("app-other-changelog", 0)})
    assert collections == [] and sorted(store._dbs) == [0, 1]


def test_closing_a_partition_database_still_collects_once(collections):
    revoke = gc_tuning._collecting_if_closed(_Store.revoke_partitions)
    store = _Store([0, 1])
    tps = {TopicPartition("app-lead_to_state-changelog", 0), TopicPartition("app-lead_to_state-changelog", 3)}
    revoke(store, _table("app-lead_to_state-changelog"), tps)
    assert len(collections) == 1 and list(store._dbs) == [1]


def test_stop_collects_after_closing_everything(collections):
    store = _Store([0])
    asyncio.run(gc_tuning._collecting_after_stop(_Store.stop)(store))
    assert len(collections) == 1 and not store._dbs


def test_the_patch_replaces_fausts_unconditional_collections_once():
    from faust.stores import rocksdb

    gc_tuning.collect_only_when_a_store_closes()
    patched = rocksdb.Store.revoke_partitions
    gc_tuning.collect_only_when_a_store_closes()  # idempotent: not wrapped twice
    assert rocksdb.Store.revoke_partitions is patched
    assert rocksdb.gc.collect() == 0 and rocksdb.gc is not gc  # Faust's own calls are no-ops now
    assert patched.__wrapped__.__name__ == "revoke_partitions"
