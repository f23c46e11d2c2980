"""What leadflow's own agents give for bench input records: capture and scoring registered in
``streams.testing.FakePipeline``, fed one record at a time, their internal records pumped after
each. The reference the Quix Streams peer (``leadflow.bench.quix_peer``) is held to, in the unit
tests (in-process) and the integration test (on Kafka)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.settings import Settings

# (input topic field, key, value, broker timestamp ms, the event's id)
Item = tuple[str, bytes | None, bytes, int, str | None]


@dataclass
class Outputs:
    """The outputs of a run, in the terms the tests compare."""

    records: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (subject, key, record)
    dead_letters: list[str] = field(default_factory=list)  # reason codes

    def count(self, subject: str) -> int:
        return sum(1 for s, _, _ in self.records if s == subject)

    def mql_leads(self) -> set[str]:
        return {r["lead_id"] for s, _, r in self.records if s == "lead_qualified"}

    def scored_causes(self, *kinds: str) -> Counter[str]:
        """lead_scored records by cause event id (of these cause kinds; all if none given)."""
        return Counter(
            r["cause_event_id"]
            for s, _, r in self.records
            if s == "lead_scored" and (not kinds or r["cause_kind"] in kinds)
        )


def bench_items(
    settings: Settings, codec: Any, n: int, *, seed: int = 7, now_ms: int | None = None, bad_share: float = 0.0
) -> list[Item]:
    """The bench's input records (leadflow/bench/run.py): ``n`` simulator events, keyed as the
    simulator keys them, stamped 1 ms apart ending about now (``bad_share``: deliberately bad ones)."""
    from leadflow.simulator import TrafficSimulator

    now_ms = int(time.time() * 1000) - n if now_ms is None else now_ms
    sim = TrafficSimulator(
        seed, start_ms=now_ms, inline_crm=True, tag="qx", lead_id_key=settings.lead_id_key_bytes, bad_share=bad_share
    )
    field_of = {"form_submitted": "form_submits", "web_activity": "web_activity", "crm_status": "crm_status"}
    return [
        (field_of[e.subject], e.key, e.encode(codec, now_ms=now_ms + i), now_ms + i, e.event_id)
        for i, e in enumerate(sim.take(n))
    ]


def agents_outputs(settings: Settings, items: Iterable[Item], *, clock: Callable[[], float]) -> Outputs:
    from prometheus_client import CollectorRegistry

    from agents.capture import agent as capture
    from agents.routing.priority import priority_policy
    from agents.scoring import agent as scoring
    from leadflow.compose import METRIC_VOCABULARY, load_configs
    from streams.app import partition_for
    from streams.metrics import Metrics
    from streams.testing import FakePipeline

    configs = load_configs(settings)
    pipeline = FakePipeline(
        metrics=Metrics(CollectorRegistry(), METRIC_VOCABULARY),
        settings=settings,
        clock=clock,
        partitions=tuple(range(settings.topic_partitions)),
        hand_offs=True,
    )
    capture.register(pipeline)
    scoring.register(
        pipeline,
        model=configs.scoring,
        dispositions=configs.sla.dispositions,
        priority=priority_policy(configs.routing),
    )

    async def run() -> None:
        for topic, key, value, ts, _ in items:
            partition = partition_for(key, settings.topic_partitions) if key else 0
            await pipeline.deliver(topic, value, key=key, partition=partition, timestamp_ms=ts)
            await pipeline.pump("lead_events", "visitor_events")

    asyncio.run(run())
    return Outputs(
        records=[(e.subject, e.key, e.record) for e in pipeline.emitted],
        dead_letters=[d.reason_code for d in pipeline.dead_letters],
    )


def decode_outputs(codec: Any, values: Iterable[tuple[bytes | None, bytes]]) -> Outputs:
    """The peer's sink records ((key, value) pairs) as Outputs."""
    out = Outputs()
    for key, value in values:
        subject, record = codec.decode(value)
        if subject == "dead_letter":
            out.dead_letters.append(record["reason_code"])
        else:
            out.records.append((subject, (key or b"").decode(), record))
    return out
