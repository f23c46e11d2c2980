"""The SLA agent's table logic (``ClockStore``) over a dict: sweeps, redelivery, and a crash
after any number of changelog writes (only a suffix of one event's writes can be lost, because
clocks and index share one table partition)."""

from __future__ import annotations

import asyncio

import pytest

from agents.sla.agent import ClockStore, open_count_key
from agents.sla.config import parse_sla_config
from agents.sla.rules import Assigned, Touched
from streams.due_index import bucket_of

S = 1_000
T0 = 1_767_225_600_000
WIDTH = 2 * S
CONFIG = parse_sla_config(
    {
        "version": "t",
        "escalation": {
            "P1": {
                "tiers": [
                    {"after": "20s", "role": "rep"},
                    {"after": "40s", "role": "manager"},
                    {"after": "60s", "role": "head_of_sales"},
                ]
            }
        },
        "contacts": {"head_of_sales": {"default": "hos-hana"}},
    }
)


class Log:
    """Interleaved log of table writes and published breach ids."""

    def __init__(self) -> None:
        self.entries: list[tuple] = []


class LoggingTable(dict):
    def __init__(self, log: Log, *args) -> None:
        super().__init__(*args)
        self.log = log

    def __setitem__(self, key, value) -> None:
        self.log.entries.append(("set", key, value))
        super().__setitem__(key, value)

    def __delitem__(self, key) -> None:
        self.log.entries.append(("del", key))
        super().__delitem__(key)


def make_store(log: Log, table: dict | None = None) -> tuple[ClockStore, LoggingTable, list[str]]:
    published: list[str] = []
    lt = LoggingTable(log, table or {})

    async def publish(outputs) -> None:
        for out in outputs:
            if out.subject == "sla_breached":
                published.append(out.record["event_id"])
                log.entries.append(("pub", out.record["event_id"]))

    return ClockStore(lt, CONFIG, WIDTH, publish), lt, published


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def assign(store: ClockStore, lead: str, due_in_s: int) -> None:
    record = {
        "event_id": f"as-{lead}",
        "lead_id": lead,
        "mql_event_id": f"mql-{lead}",
        "owner_id": "ae-ana",
        "team": "na-sales",
        "priority": "P1",
        "assigned_at": T0,
        "first_touch_due_at": T0 + due_in_s * S,
    }
    run(store.apply(lead, Assigned(record), 0, T0))


def sweep_until(store: ClockStore, until_ms: int) -> None:
    cursor = store.index.cursor(0)
    last = bucket_of(until_ms, WIDTH) - 1
    run(store.sweep(0, cursor + 1, last, lambda: until_ms))


def tiers_fired(store: ClockStore, lead: str) -> tuple[int, ...]:
    return store.load(lead).clock.fired


def test_each_tier_fires_once_and_the_open_count_follows():
    store, table, published = make_store(Log())
    for lead in ("ld_a", "ld_b"):
        assign(store, lead, 10)
    assert store.open_clocks([0], "P1") == 2
    sweep_until(store, T0 + 15 * S)
    assert len(published) == 2 and all(tiers_fired(store, lead) == (0,) for lead in ("ld_a", "ld_b"))
    run(store.sweep(0, bucket_of(T0, WIDTH), bucket_of(T0 + 15 * S, WIDTH) - 1, lambda: T0 + 15 * S))
    assert len(published) == 2  # a redelivered or repeated sweep command fires nothing twice
    run(store.apply("ld_a", Touched("ld_a", "crm-1", "first_touch", "ae-ana", T0 + 16 * S), 0, T0 + 16 * S))
    assert store.open_clocks([0], "P1") == 1
    sweep_until(store, T0 + 70 * S)
    assert tiers_fired(store, "ld_a") == (0,) and tiers_fired(store, "ld_b") == (0, 1, 2, 3)
    assert len(published) == len(set(published)) == 5 and store.open_clocks([0], "P1") == 0
    assert int(table[open_count_key(0, "P1")]) == 0


def test_catch_up_range_sweeps_only_buckets_with_entries_and_writes_the_cursor_once():
    log = Log()
    store, _, published = make_store(log)
    assign(store, "ld_a", 10)
    log.entries.clear()
    sweep_until(store, T0 + 3600 * S)  # one hour of buckets in one command
    writes = [e for e in log.entries if e[0] in ("set", "del")]
    cursor_writes = [e for e in writes if e[1] == b"c:0"]
    assert len(published) == 4 and len(cursor_writes) <= 5, cursor_writes  # not one per bucket (1,800)


@pytest.mark.parametrize("leads", [3])
def test_a_crash_after_any_prefix_of_a_sweeps_writes_loses_no_tier(leads):
    """Replay the sweep's writes up to every possible crash point, then redeliver the sweep
    command and keep sweeping: every tier of every clock is published (ids may repeat, since
    the breach was sent before the crash; the id is the same) and none is lost."""
    names = [f"ld_{i}" for i in range(leads)]
    setup_log = Log()
    store, table, _ = make_store(setup_log)
    for lead in names:
        assign(store, lead, 10)
    before = dict(table)
    crash_log = Log()
    store, _, _ = make_store(crash_log, before)
    first, last, now = store.index.cursor(0) + 1, bucket_of(T0 + 15 * S, WIDTH) - 1, T0 + 15 * S
    run(store.sweep(0, first, last, lambda: now))
    writes = [i for i, e in enumerate(crash_log.entries) if e[0] != "pub"]
    assert writes, "the sweep wrote something"
    for k in range(len(writes) + 1):
        cut = writes[k] if k < len(writes) else len(crash_log.entries)
        survived = dict(before)
        sent = set()
        for entry in crash_log.entries[:cut]:
            if entry[0] == "set":
                survived[entry[1]] = entry[2]
            elif entry[0] == "del":
                survived.pop(entry[1], None)
            else:
                sent.add(entry[1])
        recovered, _, published = make_store(Log(), survived)
        run(recovered.sweep(0, first, last, lambda: now))  # the redelivered command
        sweep_until(recovered, T0 + 70 * S)
        sent |= set(published)
        for lead in names:
            assert recovered.load(lead).clock.fired == (0, 1, 2, 3), (k, lead)
        assert len(sent) == 4 * leads, (k, len(sent))
