"""The bench's own traffic on its topics: pre-fill them, wait until a consumer group has
committed everything, read every record back, delete the run's topics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from leadflow.bench.options import Progress
from leadflow.simulator.harness import HarnessError, OutputReader, WorkerProcess, end_offsets
from streams.connections import kafka_client_kwargs
from streams.settings import Settings


async def prefill(publisher, items: list[tuple[str, bytes | None, bytes]], progress: Progress, label: str) -> float:
    started = time.monotonic()
    pending = []
    for i, (topic, key, value) in enumerate(items, 1):
        pending.append(await publisher.send_raw(topic, value, key))
        if len(pending) >= 5000:
            await asyncio.gather(*pending)
            pending.clear()
            progress(label, i, len(items))
    await asyncio.gather(*pending)
    progress(label, len(items), len(items))
    return time.monotonic() - started


async def committed_lag(kafka: dict[str, Any], group: str, ends: dict[Any, int]) -> int:
    """Records of ``ends``'s partitions not yet committed by ``group``."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka, request_timeout_ms=5000)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    lag = 0
    for tp, end in ends.items():
        meta = committed.get(tp)
        lag += max(0, end - (meta.offset if meta is not None and meta.offset >= 0 else 0))
    return lag


async def read_all(kafka: dict[str, Any], codec, topics: list[str], *, decode: bool) -> list[tuple]:
    """Every record currently in ``topics`` (from the beginning)."""
    ends = await end_offsets(kafka, topics)
    reader = OutputReader(kafka, codec, {tp: 0 for tp in ends}, decode=decode, max_records=20000)
    await reader.start()
    out: list[tuple] = []
    try:
        want = sum(ends.values())
        deadline = time.monotonic() + 120
        while len(out) < want and time.monotonic() < deadline:
            out.extend(await reader.poll(500))
    finally:
        await reader.stop()
    return out


async def drain(
    settings: Settings,
    group: str,
    ends: dict[Any, int],
    worker: WorkerProcess,
    timeout: float,
    progress: Progress,
    label: str,
    total: int,
) -> None:
    """Until ``group`` has committed every offset in ``ends``."""
    deadline = time.monotonic() + timeout
    while True:
        if not worker.alive():
            raise HarnessError(f"the worker died during the benchmark; log {worker.log_file}:\n{worker.log_tail(25)}")
        lag = await committed_lag(kafka_client_kwargs(settings), group, ends)
        progress(label, total - min(total, lag), total)
        if lag == 0:
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"{label}: not drained within {timeout:.0f}s ({lag} records left)")
        await asyncio.sleep(0.5)


async def delete_topics(kafka: dict[str, Any], prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka, request_timeout_ms=15000)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if belongs_to_run(t, prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def belongs_to_run(topic: str, prefix: str) -> bool:
    """A run's topic: its prefix, Faust's ``<app id>-...`` ones, or the Quix peer's internal
    ``changelog__<group>--...`` / ``repartition__<group>--...`` (its group starts with the run id)."""
    kind, sep, rest = topic.partition("__")
    name = rest if sep and kind in ("changelog", "repartition") else topic
    return name.startswith((prefix + ".", prefix + "-"))
