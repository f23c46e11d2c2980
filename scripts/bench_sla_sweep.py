#!/usr/bin/env python3
"""Benchmark of the SLA sweep: work per tick is proportional to the clocks that are due,
not to the clocks that are open.

It runs the agent's own table logic (``agents.sla.agent.ClockStore``: the ``DueIndex``
buckets and the clocks in one table, here a dict instead of the Faust table) per sweep
command: read the bucket, load each lead's clock, skip stale entries, apply ``Tick``,
Avro-encode each breach (the cost of publishing it, minus the network), index the next tier,
save the clock, close the bucket.

Three measurements, each with up to 1,000,000 open clocks (first-touch deadlines spread over
30 days, each assigned its priority's SLA before it - P1 10 min, P2 48 h, P3 5 days -,
priorities P1/P2/P3 = 20/50/30 %, the shipped ``config/sla.yaml``, 2 s buckets):

1. ticks that close one bucket holding 0, 10, 100, 1,000 or 10,000 due clocks, for 10k,
   100k and 1M open clocks: time grows with the due count and not with the open count;
2. ordinary ticks over the realistic spread (about 0.8 clocks due per 2 s bucket) and a
   catch-up after one hour of downtime (1,800 buckets in one command);
3. for contrast, a naive sweep that checks every open clock.

    .venv/bin/python scripts/bench_sla_sweep.py [--clocks 1000000] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.sla import rules  # noqa: E402
from agents.sla.agent import ClockStore  # noqa: E402
from agents.sla.config import load_sla_config  # noqa: E402
from agents.sla.rules import Assigned, LeadClock  # noqa: E402
from streams.codec import Codec, SchemaRegistry  # noqa: E402
from streams.due_index import bucket_of  # noqa: E402

DAY = 86_400_000
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
PARTITION = 0
HOT_COUNTS = (0, 10, 100, 1_000, 10_000)
REPEATS = 3  # each hot bucket exists this many times; the median tick is reported


class Sweeper:
    """The agent's ``ClockStore`` over a dict; publishing = Avro-encoding each breach."""

    def __init__(self, config, width_ms: int) -> None:
        self.codec = Codec(SchemaRegistry.load())
        self.breaches = 0
        self.table: dict[bytes, bytes] = {}
        self.store = ClockStore(self.table, config, width_ms, self._publish)
        self.width_ms = width_ms
        self.loop = asyncio.new_event_loop()

    async def _publish(self, outputs) -> None:
        for out in outputs:
            if out.subject == rules.SLA_BREACHED:
                self.codec.encode("sla_breached", out.record)
                self.breaches += 1

    def open(self, lead_id: str, record: dict, now_ms: int) -> None:
        self.loop.run_until_complete(self.store.apply(lead_id, Assigned(record), PARTITION, now_ms))

    def sweep(self, first: int, last: int, now_ms: int) -> int:
        """One sweep command, exactly as the agent runs it; returns the due clocks processed."""
        return self.loop.run_until_complete(self.store.sweep(PARTITION, first, last, lambda: now_ms))

    def naive_sweep(self, now_ms: int) -> int:
        """What a sweep without the index would do: look at every open clock."""
        due = 0
        for key, raw in self.table.items():
            if not key.startswith(b"ld_"):
                continue
            next_due = rules.next_due_ms(LeadClock.from_dict(orjson.loads(raw)))
            if next_due is not None and next_due <= now_ms:
                due += 1
        return due


SLA_MS = {"P1": 10 * 60_000, "P2": 48 * 3_600_000, "P3": 5 * DAY}  # config/routing.yaml defaults


def record(lead_id: str, rng: random.Random, *, due_at: int) -> dict:
    """An assignment whose first-touch deadline is ``due_at``: assigned its priority's SLA earlier."""
    priority = rng.choices(("P1", "P2", "P3"), weights=(20, 50, 30))[0]
    assigned_at = due_at - SLA_MS[priority]
    return {
        "event_id": f"as_{lead_id}",
        "lead_id": lead_id,
        "mql_event_id": f"mql_{lead_id}",
        "owner_id": rng.choice(("ae-ana", "ae-ben", "sdr-sam", "sdr-priya", "nurture-sequence")),
        "team": rng.choice(("na-sales", "emea-sales", "marketing")),
        "priority": priority,
        "assigned_at": assigned_at,
        "first_touch_due_at": due_at,
    }


def build(total: int, config, width_ms: int, seed: int, *, hot: bool) -> tuple[Sweeper, int, list[int]]:
    """``total`` open clocks. With ``hot``, the first buckets after the start hold HOT_COUNTS
    clocks each (REPEATS times) and the rest are spread over 30 days after them; otherwise all
    are spread."""
    rng = random.Random(seed)
    sweeper = Sweeper(config, width_ms)
    now = START
    first_bucket = bucket_of(now, width_ms)
    hot_counts = [c for c in HOT_COUNTS for _ in range(REPEATS)]
    hot_buckets = [first_bucket + 1 + i for i in range(len(hot_counts))]
    n = 0
    if hot:
        for bucket, count in zip(hot_buckets, hot_counts):
            for _ in range(count):
                due = bucket * width_ms + rng.randrange(width_ms)
                sweeper.open(f"ld_{n:020x}", record(f"ld_{n:020x}", rng, due_at=due), now)
                n += 1
    spread_from = (first_bucket + len(hot_buckets) + 10) * width_ms if hot else now
    while n < total:
        due = spread_from + rng.randrange(30 * DAY)
        lead = f"ld_{n:020x}"
        sweeper.open(lead, record(lead, rng, due_at=due), now)
        n += 1
    return sweeper, first_bucket, hot_buckets


def timed(fn, *args) -> tuple[float, object]:
    gc.collect()
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clocks", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    config = load_sla_config(REPO / "config" / "sla.yaml")
    width_ms = config.bucket_ms or 2000
    sizes = sorted({min(s, args.clocks) for s in (50_000, args.clocks)})

    print(f"SLA sweep benchmark: bucket {width_ms / 1000:g} s, python {sys.version.split()[0]}\n")
    print(f"1. One tick closing one bucket that holds N due clocks (median of {REPEATS})")
    print(f"{'open clocks':>12} {'due':>7} {'tick ms':>9} {'us/due clock':>13}")
    results: dict[tuple[int, int], float] = {}
    for total in sizes:
        t0 = time.perf_counter()
        sweeper, _, hot_buckets = build(total, config, width_ms, args.seed, hot=True)
        build_s = time.perf_counter() - t0
        total = sum(1 for k in sweeper.table if k.startswith(b"ld_"))  # includes the hot clocks
        for i, count in enumerate(HOT_COUNTS):
            runs = []
            for bucket in hot_buckets[i * REPEATS : (i + 1) * REPEATS]:
                seconds, touched = timed(sweeper.sweep, bucket, bucket, (bucket + 1) * width_ms)
                assert touched == count, (touched, count)
                runs.append(seconds)
            seconds = statistics.median(runs)
            results[(total, count)] = seconds
            per = f"{seconds / count * 1e6:13.1f}" if count else f"{'-':>13}"
            print(f"{total:>12,} {count:>7,} {seconds * 1000:9.3f} {per}")
        print(
            f"{'':>12} (built {total:,} clocks in {build_s:.1f} s; "
            f"{sum(1 for k in sweeper.table if k.startswith(b'b:')):,} index buckets)"
        )
        del sweeper
        gc.collect()

    big = sizes[-1]
    print(f"\n2. Realistic spread: {big:,} clocks over 30 days")
    sweeper, first_bucket, _ = build(big, config, width_ms, args.seed + 1, hot=False)
    ticks, dues = [], []
    bucket = first_bucket + 1
    for _ in range(2000):  # ~67 minutes of ordinary 2 s ticks
        seconds, touched = timed(sweeper.sweep, bucket, bucket, (bucket + 1) * width_ms)
        ticks.append(seconds)
        dues.append(touched)
        bucket += 1
    ticks_us = sorted(t * 1e6 for t in ticks)
    print(
        f"   ordinary tick (1 bucket): {len(ticks)} ticks, {statistics.mean(dues):.2f} due per tick, "
        f"median {statistics.median(ticks_us):.0f} us, p99 {ticks_us[int(len(ticks_us) * 0.99)]:.0f} us, "
        f"max {ticks_us[-1]:.0f} us"
    )
    catch_up = 3_600_000 // width_ms
    seconds, touched = timed(sweeper.sweep, bucket, bucket + catch_up - 1, (bucket + catch_up) * width_ms)
    print(
        f"   catch-up after 1 h down: {catch_up:,} buckets, {touched:,} due clocks in "
        f"{seconds * 1000:.1f} ms ({seconds / max(touched, 1) * 1e6:.1f} us per due clock)"
    )
    seconds, due = timed(sweeper.naive_sweep, (bucket + catch_up) * width_ms)
    print(
        f"\n3. Naive sweep (check every open clock): {big:,} clocks in {seconds:.2f} s "
        f"per tick, whatever is due ({due:,} due)"
    )

    totals = sorted({t for t, _ in results})
    if len(totals) > 1:
        small, one = results[(totals[0], 1_000)], results[(totals[-1], 1_000)]
        print(
            f"\nSame 1,000 due clocks: {totals[0]:,} open -> {small * 1000:.2f} ms, "
            f"{totals[-1]:,} open -> {one * 1000:.2f} ms (ratio {one / small:.2f}; "
            f"open clocks x{totals[-1] / totals[0]:.0f})"
        )
    print(f"breaches encoded: {sweeper.breaches:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
