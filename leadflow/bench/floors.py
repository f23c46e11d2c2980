"""The floors the pipeline is measured against, on the same broker and the same records:
(a) a minimal raw aiokafka consume->produce loop, the ceiling of any Python pipeline here,
(a2) the smallest Faust agent (with and without a table write), Faust's own ceiling, and
(a3) the Quix Streams peer: leadflow's capture + scoring rules without Faust (``quix_peer``)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from leadflow.bench.options import Progress, no_progress
from leadflow.bench.topic_io import committed_lag, drain, read_all
from leadflow.simulator.harness import (
    CpuMeter,
    HarnessError,
    StackSession,
    WorkerProcess,
    end_offsets,
    wait_for_group,
)
from streams.connections import kafka_client_kwargs
from streams.settings import Settings
from streams.topic_names import TopicNames


async def passthrough(
    kafka: dict[str, Any], source: str, sink: str, n: int, *, group: str, progress: Progress = no_progress
) -> dict[str, Any]:
    """Consume ``n`` records of ``source`` and produce them to ``sink``; events/s."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(
        source,
        **kafka,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=1024 * 1024,
    )
    producer = AIOKafkaProducer(**kafka, acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    moved, started = 0, None
    cpu0 = time.process_time()
    try:
        while moved < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            if not batch:
                continue
            if started is None:
                started = time.monotonic()
            futures = []
            for records in batch.values():
                for r in records:
                    futures.append(await producer.send(sink, value=r.value, key=r.key))
            await asyncio.gather(*futures)
            await consumer.commit()
            moved += len(futures)
            progress("pass-through", moved, n)
        elapsed = time.monotonic() - (started or time.monotonic())
    finally:
        await producer.stop()
        await consumer.stop()
    cpu = time.process_time() - cpu0
    return {
        "events": moved,
        "seconds": round(elapsed, 3),
        "events_per_s": round(moved / elapsed, 1),
        "cpu_s": round(cpu, 2),
        "events_per_cpu_s": round(moved / cpu, 1) if cpu else None,
    }


async def faust_floor(
    settings: Settings,
    stack: StackSession,
    source: str,
    sink: str,
    n: int,
    workdir: Path,
    label: str,
    *,
    stateful: bool,
    progress: Progress,
) -> dict[str, Any]:
    from streams.topics import ensure_topics

    app_id = f"{settings.app_id}-{label}"
    floor_settings = Settings(**{**settings.model_dump(), "app_id": app_id, "data_dir": workdir / f"{label}-data"})
    await ensure_topics(floor_settings, [sink])
    args = ["faust-passthrough", source, sink, *(["--table"] if stateful else [])]
    worker = WorkerProcess(floor_settings, workdir, name=label, module="leadflow.bench.worker", args=args)
    ends = await end_offsets(kafka_client_kwargs(settings), [source])
    meter = CpuMeter()
    try:
        worker.start()
        meter.start({"worker": worker.pid, "kafka": stack.kafka_pid()})
        await wait_for_group(kafka_client_kwargs(settings), app_id, timeout=90, worker=worker)
        await drain(floor_settings, app_id, ends, worker, 600, progress, label, n)
        load = meter.stop()
    finally:
        worker.stop(timeout=30)
    out = await read_all(kafka_client_kwargs(settings), None, [sink], decode=False)
    stamps = [r[3] for r in out]
    seconds = max(1e-3, (max(stamps) - min(stamps)) / 1000) if stamps else float("nan")
    wcpu = load["cpu_s"].get("worker") or 0.0
    return {
        "events": len(out),
        "seconds": round(seconds, 3),
        "events_per_s": round(n / seconds, 1),
        "worker_cpu_s": wcpu,
        "events_per_worker_cpu_s": round(n / wcpu, 1) if wcpu else None,
        "stateful": stateful,
        "load": load,
    }


async def quix_peer(
    settings: Settings,
    kafka_pid: int | None,
    events: int,
    workdir: Path,
    *,
    timeout_s: float = 600.0,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """(a3) ``leadflow.bench.quix_peer`` over the pre-filled input topics (the pipeline's own
    ``events`` records), as a child process with its own consumer group, internal topic and sink.
    The child stops itself when done and reports its own figures (its CPU included)."""
    from aiokafka.errors import KafkaError

    from streams.topics import ensure_topics

    label = "quix"
    peer = Settings(
        **{**settings.model_dump(), "app_id": f"{settings.app_id}-{label}", "data_dir": workdir / f"{label}-data"}
    )
    sink, internal = f"{settings.topic_prefix}.{label}.out", f"{settings.topic_prefix}.{label}.keyed"
    await ensure_topics(settings, [sink, internal])  # the inputs' partition count: one state store
    result_file = workdir / f"{label}-peer.json"
    result_file.unlink(missing_ok=True)
    args = [str(events), sink, internal, str(result_file)]
    worker = WorkerProcess(peer, workdir, name=f"{label}-peer", module="leadflow.bench.quix_peer", args=args)
    kafka = kafka_client_kwargs(settings)
    ends = await end_offsets(kafka, list(TopicNames.from_settings(settings).inputs()))
    meter = CpuMeter()
    try:
        worker.start()
        meter.start({"kafka": kafka_pid})
        deadline = time.monotonic() + timeout_s
        while worker.alive():
            if time.monotonic() > deadline:
                raise HarnessError(f"the Quix peer did not finish within {timeout_s:.0f}s; log {worker.log_file}")
            try:
                lag = await committed_lag(kafka, peer.app_id, ends)
            except KafkaError:  # progress only: a new broker's coordinator may not be up yet
                lag = events
            progress("Quix Streams peer", events - min(events, lag), events)
            await asyncio.sleep(0.5)
        load = meter.stop()
    finally:
        worker.stop(timeout=30)
    if not result_file.exists():
        raise HarnessError(f"the Quix peer exited without results; log {worker.log_file}:\n{worker.log_tail(25)}")
    progress("Quix Streams peer", events, events)
    return {**json.loads(result_file.read_text()), "sink": sink, "load": load, "log": str(worker.log_file)}
