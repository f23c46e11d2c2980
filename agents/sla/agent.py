"""sla: first-touch clocks as windowed timeouts (thin Faust wiring around ``agents.sla.rules``).

One agent, ``track_sla_clocks``, subscribed to three topics that are all keyed by lead id and
have the same partition count, so a lead's assignment, its CRM events and the sweep commands
for its bucket meet on one partition and in one agent:
- ``<p>.out.assignments`` (Avro ``lead_assigned``): opens (or supersedes) the lead's clock;
- ``<p>.internal.lead-events``: only ``crm_status`` events matter (a touch stops the clock);
  the others are skipped by the decoder without building the event. Scoring reads the same
  topic with its own agent - Faust hands each message to both and commits once both are done;
- ``<p>.internal.sla-commands``: ``wire.SlaSweep {partition, first, last}`` from the timer.

It alone mutates its table, ``lead_to_sla_clock`` (tables must be written from the stream that
owns them; a Faust table writes its changelog to the partition of the event being processed,
so every key is unique per partition). The table holds three kinds of keys:
- ``ld_...`` (lead id) -> ``LeadClock`` (orjson);
- the due-time index of the one sweeper (``streams.due_index.DueIndex``):
  ``b:<partition>:<bucket>`` -> lead ids whose next tier is due in that bucket,
  ``c:<partition>`` -> last closed bucket;
- ``n:<partition>:<priority>`` -> open clocks on the partition (the gauge survives restarts and
  rebalances because it is table state, not a worker's counter).
Why one table and not a clock table plus an index table: the writes one event makes then go
to one changelog partition, in order, so a crash can only lose a *suffix* of them. The sweep
writes, per bucket: each lead's next-tier index entry, then its clock, and only at the end
the bucket's removal and the cursor (``DueIndex.sweep`` removes a bucket only after ``on_due``,
here ``ClockStore._close_due``, returned). Whatever prefix survived a crash, the redelivered
sweep command finds the bucket again and redoes what is missing (same breach ids); with two
tables the removal could survive while a clock's next-tier entry was lost, and that lead would
never escalate again.

Work per sweep is linear in the due clocks: the next-tier entries of one bucket's clocks are
appended per target bucket in one read-modify-write (``DueIndex.schedule_many``), not one
per clock - clocks due together (a burst of assignments) escalate together, and one-by-one
appends to a JSON list would make such a sweep quadratic.

The timer ``request_sla_sweeps`` (the one sweeper's, ``streams.due_index.Sweeper``) runs every
``LEADFLOW_SWEEP_INTERVAL_S`` on every worker and, for each partition of ``sla-commands`` this
worker owns, sends commands covering the buckets that ended since the last request, at most
``sweep.max_buckets_per_command`` each (docs/faust-pitfalls.md item 5: a timer must not touch
tables, it asks the owning agent). Work per sweep: one table read per elapsed bucket plus the
work for each entry that is due - proportional to what is due, never to all open clocks
(``scripts/bench_sla_sweep.py``). A breach goes out at most one bucket width plus one sweep
interval after its deadline (``sweep.bucket_seconds`` in sla.yaml, 2 s by default).

Restarts: the cursor and the index are in the changelog; after a restart the timer resumes
from the cursor, so buckets that ended while the worker was down are swept at once. Outputs
are sent before the state write; a crash in between redelivers the command, and the clock's
fired tiers make the second pass either a no-op or a re-send of the *same* breach id.
"""

from __future__ import annotations

import logging

import orjson

from agents.domain import wire
from agents.domain.erasure import is_erasure
from agents.domain.events import CRM_STATUS, LeadEvent
from agents.sla import rules
from agents.sla.config import PRIORITIES, SlaConfig
from agents.sla.rules import Assigned, LeadClock, Tick, Touched
from streams.app import Pipeline
from streams.consume import Meta, record_reader
from streams.due_index import DueIndex, Sweeper

log = logging.getLogger(__name__)


def open_count_key(partition: int, priority: str) -> bytes:
    return b"n:%d:%s" % (partition, priority.encode())


class ClockStore:
    """The table side of the agent - load, apply, sweep - over any dict-like table (the agent's
    Faust table; a dict in ``scripts/bench_sla_sweep.py``). ``publish(outputs)`` is awaited
    before the state that produced them is written."""

    def __init__(self, table, config: SlaConfig, width_ms: int, publish) -> None:
        self.table = table
        self.config = config
        self.width_ms = width_ms
        self.publish = publish
        self.index = DueIndex(table, width_ms=width_ms)

    def load(self, lead_id: str) -> LeadClock | None:
        raw = self.table.get(lead_id.encode())
        return LeadClock.from_dict(orjson.loads(raw)) if raw else None

    def write_clock(self, lead_id: str, old: LeadClock | None, new: LeadClock, partition: int) -> None:
        """The clock and the open-clocks count (after its index entry: see the module docstring)."""
        self.table[lead_id.encode()] = orjson.dumps(new.to_dict())
        before, after = rules.open_priority(old), rules.open_priority(new)
        if before != after:
            for priority, delta in ((before, -1), (after, +1)):
                if priority is not None:
                    key = open_count_key(partition, priority)
                    self.table[key] = b"%d" % max(0, int(self.table.get(key) or 0) + delta)

    def erase(self, lead_id: str, partition: int) -> bool:
        """Erasure on request: the open-clocks count first, then the clock's tombstone. Index
        entries naming the lead stay (lead ids only) and find no clock when swept."""
        state = self.load(lead_id)
        if state is None:
            return False
        priority = rules.open_priority(state)
        if priority is not None:
            key = open_count_key(partition, priority)
            self.table[key] = b"%d" % max(0, int(self.table.get(key) or 0) - 1)
        del self.table[lead_id.encode()]
        return True

    def open_clocks(self, partitions, priority: str) -> int:
        return sum(int(self.table.get(open_count_key(p, priority)) or 0) for p in partitions)

    async def apply(self, lead_id: str, event, partition: int, now_ms: int) -> None:
        state = self.load(lead_id)
        new, outputs = rules.apply(state, event, self.config, now_ms=now_ms)
        if new is state:
            return
        assert new is not None  # rules.apply returns None only as the unchanged (absent) state
        await self.publish(outputs)
        due = rules.next_due_ms(new)
        if due is not None and due != rules.next_due_ms(state):
            self.index.schedule_many(partition, {lead_id: due}, now_ms)
        self.write_clock(lead_id, state, new, partition)

    async def sweep(self, partition: int, first: int, last: int, clock) -> int:
        """Close buckets ``first..last`` (one sweep command); ``clock()`` gives now in ms.
        Returns how many due clocks changed."""
        return await self.index.sweep(
            partition, first, last, lambda p, bucket, lead_ids: self._close_due(p, bucket, lead_ids, clock())
        )

    async def _close_due(self, partition: int, bucket: int, lead_ids: list[str], now_ms: int) -> int:
        changed: list[tuple[str, LeadClock | None, LeadClock]] = []
        next_due: dict[str, int] = {}
        for lead_id in lead_ids:
            state = self.load(lead_id)
            due = rules.next_due_ms(state)
            if due is None or self.index.bucket_of(due) > bucket:
                continue  # touched, or rescheduled since this entry was written
            new, outputs = rules.apply(state, Tick(), self.config, now_ms=now_ms)
            if new is state:  # due per the timer's clock, not yet per ours (skew across workers)
                next_due[lead_id] = due
                continue
            assert new is not None  # changed: a clock
            await self.publish(outputs)
            changed.append((lead_id, state, new))
            due = rules.next_due_ms(new)
            if due is not None:
                next_due[lead_id] = due
        self.index.schedule_many(partition, next_due, now_ms, min_bucket=bucket + 1)
        for lead_id, old, new in changed:
            self.write_clock(lead_id, old, new, partition)
        return len(changed)


def register(pipeline: Pipeline, *, config: SlaConfig) -> None:
    settings, metrics = pipeline.settings, pipeline.metrics
    # Series start at 0 (increase() of a series born at 1 is 0: first escalations would not alert).
    for priority in PRIORITIES:
        for tier in config.escalation_for(priority).tiers:
            metrics.sla_breaches.labels(priority=priority, tier=tier.number)
    width_ms = config.bucket_ms or settings.sweep_bucket_s * 1000
    clocks = pipeline.table(
        "lead_to_sla_clock",
        "lead id -> LeadClock (orjson); b:partition:bucket -> lead ids with an SLA tier due; "
        "c:partition -> last closed bucket; n:partition:priority -> open clocks",
    )

    async def publish(outputs) -> None:
        for out in outputs:
            if out.subject == rules.SLA_BREACHED:
                record = out.record
                await pipeline.emit(out.subject, out.key, record)
                metrics.sla_breaches.labels(priority=record["priority"], tier=record["tier"]).inc()
                log.info(
                    "SLA breach %s tier %d (%s, owner %s, escalate to %s): %.2f min late",
                    record["lead_id"],
                    record["tier"],
                    record["priority"],
                    record["owner_id"],
                    record["escalate_to_role"],
                    record["minutes_late"],
                )
            elif out.subject == rules.FIRST_TOUCH:
                metrics.speed_to_lead_seconds.labels(priority=out.priority, team=out.team).observe(out.seconds)

    store = ClockStore(clocks, config, width_ms, publish)

    async def track(message: LeadEvent | wire.SlaSweep | dict, meta: Meta) -> None:
        partition = meta.partition
        if isinstance(message, wire.SlaSweep):
            await store.sweep(message.partition, message.first, message.last, pipeline.now_ms)
        elif isinstance(message, LeadEvent):  # a CRM status (the decoder skips every other kind)
            if message.lead_id is None:
                return
            if is_erasure(message):
                store.erase(message.lead_id, partition)
                return
            data = message.data
            await store.apply(
                message.lead_id,
                Touched(
                    message.lead_id,
                    message.event_id,
                    data.get("status") or "unknown",
                    data.get("rep_id"),
                    message.occurred_at_ms,
                ),
                partition,
                pipeline.now_ms(),
            )
        else:  # a lead_assigned record
            await store.apply(message["lead_id"], Assigned(message), partition, pipeline.now_ms())

    pipeline.consume(
        {
            "assignments": record_reader(pipeline.codec, "lead_assigned", "assignments"),
            "lead_events": wire.reader(LeadEvent, kinds=(CRM_STATUS,), skip_others=True),
            "sla_commands": wire.reader(wire.SlaSweep),
        },
        name="track_sla_clocks",
        capability="sla",
        handle=track,
        rejects=(wire.UnknownMessage,),
    )

    def count_open_clocks(owned: set[int]) -> None:
        for priority in PRIORITIES:
            metrics.sla_open_clocks.labels(priority=priority).set(store.open_clocks(owned, priority))

    Sweeper(
        pipeline,
        store.index,
        timer="request_sla_sweeps",
        channel="sla_commands",
        key=b"sla-sweep",
        command=lambda partition, first, last: wire.encode(wire.SlaSweep(partition=partition, first=first, last=last)),
        max_buckets_per_command=config.max_buckets_per_command,
        after=count_open_clocks,
    )
