"""`leadflow bench`: the full pipeline against the ceiling of any Python pipeline here.

In one run, on the same broker, with the same messages (the same bytes and keys, N of them):

(a) **pass-through**: a minimal aiokafka loop - ``getmany`` a batch, ``send`` every record to
    another topic, wait for the acks, commit - from a pre-filled topic. No decoding, no state:
    the ceiling for a Python consume->produce pipeline on this machine and broker. Run
    ``passthrough_runs`` times (fresh consumer group each), median reported.
(b) **pipeline, throughput**: the three input topics pre-filled with the same N simulator
    events, then one ``leadflow worker`` (a child process, its own topic prefix and app id) is
    started; throughput = N / (last ``lead_scored`` output - first record the worker wrote),
    the worker being done when its committed offsets reach the end of every input and internal
    topic.
(c) **pipeline, latency**: the same worker, fed live at a fraction of (b)'s throughput for a
    few seconds; p50/p95/p99 of input broker timestamp -> ``lead_scored`` / MQL / assignment
    (when a routing agent runs) broker timestamp.

Also reported: worker peak RSS (VmHWM), CPU seconds per phase (worker, Kafka, this process,
everything else on the machine) and events per worker CPU-second, which is much less
sensitive to other load on a shared machine than events per wall second.

``profile="pyinstrument"|"cprofile"`` runs the worker under that profiler and writes its
report next to the results (``<run>.worker-profile.txt`` / ``.prof``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from leadflow.simulator.harness import (
    CpuMeter,
    HarnessError,
    OutputReader,
    StackSession,
    WorkerProcess,
    end_offsets,
    forget_redis_keys,
    percentile,
    wait_for_group,
)
from streams.connections import kafka_client_kwargs
from streams.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

GOAL_RATIO = 0.25
DEFAULT_RESULTS_DIR = REPO_ROOT / ".leadflow" / "bench"


@dataclass
class BenchOptions:
    events: int = 50_000
    seed: int = 7
    passthrough_runs: int = 3
    latency_seconds: float = 15.0
    latency_rate: float | None = None  # events/s; None = latency_fraction x pipeline throughput
    latency_fraction: float = 0.5
    faust_floor: bool = True  # also measure the smallest Faust agents (Faust's own ceiling)
    profile: str | None = None  # None | "pyinstrument" | "cprofile"
    worker_env: dict[str, str] = field(default_factory=dict)  # extra LEADFLOW_* for the worker
    # Prototyping (see leadflow.bench_worker): extra faust.App settings and named code patches.
    faust_overrides: dict[str, Any] = field(default_factory=dict)
    patches: list[str] = field(default_factory=list)
    keep_topics: bool = False
    results_dir: Path = DEFAULT_RESULTS_DIR
    drain_timeout_s: float = 600.0
    # Also run every measurement through the stack's SASL_SSL listener (SCRAM-SHA-512 + TLS),
    # in the same run, to put a number on what production security costs.
    compare_sasl_ssl: bool = False


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def _noop(phase: str, done: int, total: int) -> None:
    return None


# --- (a) pass-through ---------------------------------------------------------------------


async def passthrough(
    kafka: dict[str, Any], source: str, sink: str, n: int, *, group: str, progress: Progress = _noop
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


# --- helpers -------------------------------------------------------------------------------


async def _prefill(publisher, items: list[tuple[str, bytes | None, bytes]], progress: Progress, label: str) -> float:
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


async def _committed_lag(kafka: dict[str, Any], group: str, ends: dict[Any, int]) -> int:
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


async def _read_all(kafka: dict[str, Any], codec, topics: list[str], *, decode: bool) -> list[tuple]:
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


def _pcts(values: list[float]) -> dict[str, float | int | None]:
    return {
        "count": len(values),
        "p50_ms": _r(percentile(values, 50)),
        "p95_ms": _r(percentile(values, 95)),
        "p99_ms": _r(percentile(values, 99)),
        "max_ms": _r(max(values) if values else None),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- the benchmark -------------------------------------------------------------------------


async def _run(
    settings: Settings,
    stack: StackSession,
    opts: BenchOptions,
    run_id: str,
    progress: Progress,
    say: Callable[[str], None],
) -> dict[str, Any]:
    from leadflow.simulator import Publisher, TrafficSimulator
    from streams.app import build_codec
    from streams.topics import TopicNames, ensure_topics

    codec = build_codec(settings, register=True)  # the worker's ids (a Schema Registry's, if set)
    names = TopicNames.from_settings(settings)
    kafka = kafka_client_kwargs(settings)
    results: dict[str, Any] = {
        "run_id": run_id,
        "events": opts.events,
        "seed": opts.seed,
        "partitions": settings.topic_partitions,
    }

    # The same N events for both measurements: generated once, encoded once.
    sim = TrafficSimulator(
        opts.seed, start_ms=int(time.time() * 1000), inline_crm=True, tag=run_id, lead_id_key=settings.lead_id_key_bytes
    )
    stream = iter(sim)
    # Stamped as if published live at 1,000 events/s up to now (not all at one instant: due
    # times of decay reviews and SLA clocks spread over time buckets as they would live).
    now_ms = int(time.time() * 1000) - opts.events
    topic_of = {
        "form_submitted": names.form_submits,
        "web_activity": names.web_activity,
        "crm_status": names.crm_status,
    }
    items: list[tuple[Any, ...]] = []
    by_subject: dict[str, int] = {}
    for event in (next(stream) for _ in range(opts.events)):
        items.append((topic_of[event.subject], event.key, event.encode(codec, now_ms=now_ms + len(items))))
        by_subject[event.subject] = by_subject.get(event.subject, 0) + 1
    sizes = [len(v) for _, _, v in items]
    results["messages"] = {
        "by_subject": by_subject,
        "mean_bytes": round(statistics.mean(sizes), 1),
        "total_bytes": sum(sizes),
    }

    pt_in, pt_out = f"{settings.topic_prefix}.passthrough.in", f"{settings.topic_prefix}.passthrough.out"
    await ensure_topics(settings, [pt_in, pt_out, *names.all()])
    async with Publisher(kafka, names, codec, linger_ms=20, client_id="leadflow-bench") as pub:
        say(
            f"pre-filling {opts.events:,} events ({results['messages']['mean_bytes']:.0f} B mean) "
            "into the pass-through topic and the 3 input topics"
        )
        await _prefill(pub, [(pt_in, k, v) for _, k, v in items], progress, "pre-fill pass-through")
        await _prefill(pub, items, progress, "pre-fill inputs")

    # (a) pass-through ceiling.
    runs = []
    for i in range(opts.passthrough_runs):
        meter = CpuMeter()
        meter.start({"kafka": stack.kafka_pid()})
        run = await passthrough(kafka, pt_in, pt_out, opts.events, group=f"{run_id}-pt{i}", progress=progress)
        run["load"] = meter.stop()
        runs.append(run)
        say(f"pass-through run {i + 1}: {run['events_per_s']:,.0f} events/s")
    best = max(runs, key=lambda r: r["events_per_s"])
    results["passthrough"] = {
        "runs": runs,
        "events_per_s_median": round(statistics.median(r["events_per_s"] for r in runs), 1),
        "events_per_s_best": best["events_per_s"],
        "events_per_cpu_s_median": round(statistics.median(r["events_per_cpu_s"] or 0 for r in runs), 1),
    }

    # (a2) the same records through the smallest Faust agents: Faust's own ceiling here.
    workdir = Path(settings.data_dir).parent
    if opts.faust_floor:
        results["faust_passthrough"] = {}
        for stateful in (False, True):
            label = "faust_table" if stateful else "faust"
            results["faust_passthrough"][label] = await _faust_floor(
                settings,
                stack,
                pt_in,
                f"{settings.topic_prefix}.{label}.out",
                opts.events,
                workdir,
                label,
                stateful=stateful,
                progress=progress,
            )
            say(
                f"Faust pass-through{' + table' if stateful else ''}: "
                f"{results['faust_passthrough'][label]['events_per_s']:,.0f} events/s"
            )

    # (b) pipeline throughput on the pre-filled inputs.
    wrapper: list[str] = []
    profile_out = None
    if opts.profile == "pyinstrument":
        import importlib.util

        if importlib.util.find_spec("pyinstrument") is None:
            raise HarnessError(
                "--profile pyinstrument needs pyinstrument (`pip install pyinstrument`, the "
                "'bench' extra); --profile cprofile needs nothing"
            )
        profile_out = opts.results_dir / f"{run_id}.worker.pyisession"
        # 5 ms sampling: a few minutes of worker stay a few MB (the default 1 ms makes ~1 MB/s).
        wrapper = ["-m", "pyinstrument", "-i", "0.005", "-r", "pyisession", "-o", str(profile_out)]
    elif opts.profile == "cprofile":
        profile_out = opts.results_dir / f"{run_id}.worker.prof"
        wrapper = ["-m", "cProfile", "-o", str(profile_out)]
    elif opts.profile:
        raise HarnessError(f"unknown profiler {opts.profile!r}; use pyinstrument or cprofile")
    proto = bool(opts.faust_overrides or opts.patches)
    extra_env = dict(opts.worker_env)
    if proto:
        extra_env["LEADFLOW_BENCH_FAUST"] = json.dumps(opts.faust_overrides)
        extra_env["LEADFLOW_BENCH_PATCHES"] = ",".join(opts.patches)
    worker = WorkerProcess(
        settings,
        workdir,
        wrapper=wrapper,
        extra_env=extra_env,
        module="leadflow.bench_worker" if proto else "leadflow.cli",
    )
    internal = [names.lead_events, names.visitor_events]
    input_ends = await end_offsets(kafka, names.inputs())
    meter = CpuMeter()
    try:
        say("starting the worker")
        worker.start()
        meter.start({"worker": worker.pid, "kafka": stack.kafka_pid()})
        await wait_for_group(kafka, settings.app_id, timeout=90, worker=worker)
        say(f"worker ready (pid {worker.pid}); draining {opts.events:,} events")
        deadline = time.monotonic() + opts.drain_timeout_s
        while True:
            if not worker.alive():
                raise HarnessError(
                    f"the worker died during the benchmark; log {worker.log_file}:\n{worker.log_tail(25)}"
                )
            internal_ends = await end_offsets(kafka, internal)
            input_lag = await _committed_lag(kafka, settings.app_id, input_ends)
            internal_lag = await _committed_lag(kafka, settings.app_id, internal_ends)
            lag = input_lag + internal_lag
            internal_total = sum(internal_ends.values())
            progress("pipeline: capture", opts.events - input_lag, opts.events)
            progress("pipeline: score", internal_total - internal_lag, max(1, internal_total))
            if lag == 0:
                break
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"the pipeline did not drain within {opts.drain_timeout_s:.0f}s ({lag} records left)"
                )
            await asyncio.sleep(0.5)
        load = meter.stop()
        worker.sample()
        rss_after_throughput = worker.peak_rss_kib
        # The worker's outputs tell when it started and finished.
        written = await _read_all(kafka, codec, [*internal, names.dead_letters], decode=False)
        scored = await _read_all(kafka, codec, [names.lead_scored], decode=False)
        if not scored:
            raise HarnessError(f"the worker produced no lead_scored output; log {worker.log_file}")
        first = min(r[3] for r in written)
        last = max(r[3] for r in scored)
        seconds = max(1e-3, (last - first) / 1000)
        wcpu = load["cpu_s"].get("worker") or 0.0
        results["pipeline"] = {
            "events": opts.events,
            "seconds": round(seconds, 3),
            "events_per_s": round(opts.events / seconds, 1),
            "lead_scored_outputs": len(scored),
            "internal_records": len(written),
            "worker_cpu_s": wcpu,
            "events_per_worker_cpu_s": round(opts.events / wcpu, 1) if wcpu else None,
            "load": load,
            "worker_peak_rss_mib": round((rss_after_throughput or 0) / 1024, 1),
        }
        say(f"pipeline: {results['pipeline']['events_per_s']:,.0f} events/s")

        # (c) latency at a steady rate, live.
        rate = opts.latency_rate or max(10.0, round(results["pipeline"]["events_per_s"] * opts.latency_fraction))
        results["latency"] = await _latency_phase(
            settings, names, codec, stream, rate, opts, worker, stack, progress, say
        )
        worker.sample()
    finally:
        worker.stop(timeout=60)
        if worker.peak_rss_kib:
            results.setdefault("pipeline", {})["worker_peak_rss_mib_overall"] = round(worker.peak_rss_kib / 1024, 1)
    results["worker_log"] = str(worker.log_file)
    if profile_out is not None:
        results["profile"] = _render_profile(opts.profile, profile_out)
    pt = results["passthrough"]["events_per_s_median"]
    results["ratio"] = round(results["pipeline"]["events_per_s"] / pt, 4) if pt else None
    pt_cpu = results["passthrough"]["events_per_cpu_s_median"]
    pl_cpu = results["pipeline"].get("events_per_worker_cpu_s")
    results["ratio_per_cpu_s"] = round(pl_cpu / pt_cpu, 4) if pt_cpu and pl_cpu else None
    results["goal_ratio"] = GOAL_RATIO
    results["meets_goal"] = bool(results["ratio"] and results["ratio"] >= GOAL_RATIO)
    return results


async def _drain(
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
        lag = await _committed_lag(kafka_client_kwargs(settings), group, ends)
        progress(label, total - min(total, lag), total)
        if lag == 0:
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"{label}: not drained within {timeout:.0f}s ({lag} records left)")
        await asyncio.sleep(0.5)


async def _faust_floor(
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
    worker = WorkerProcess(floor_settings, workdir, name=label, module="leadflow.bench_worker", args=args)
    ends = await end_offsets(kafka_client_kwargs(settings), [source])
    meter = CpuMeter()
    try:
        worker.start()
        meter.start({"worker": worker.pid, "kafka": stack.kafka_pid()})
        await wait_for_group(kafka_client_kwargs(settings), app_id, timeout=90, worker=worker)
        await _drain(floor_settings, app_id, ends, worker, 600, progress, label, n)
        load = meter.stop()
    finally:
        worker.stop(timeout=30)
    out = await _read_all(kafka_client_kwargs(settings), None, [sink], decode=False)
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


async def _latency_phase(
    settings, names, codec, stream, rate: float, opts: BenchOptions, worker, stack, progress: Progress, say
) -> dict[str, Any]:
    from leadflow.simulator import Publisher

    out_topics = [names.lead_scored, names.mqls, names.assignments]
    reader = OutputReader(
        kafka_client_kwargs(settings), codec, await end_offsets(kafka_client_kwargs(settings), out_topics)
    )
    await reader.start()
    sent_at: dict[str, int] = {}
    scored_lat: list[float] = []
    mql_lat: list[float] = []
    assign_lat: list[float] = []
    mql_cause: dict[str, int] = {}
    pending_assign: list[dict] = []
    stop = asyncio.Event()

    def on_sent(event, stamped_ms: int) -> None:
        # Anonymous page views are scored only once the visitor identifies (by design, maybe
        # much later): their delay is the buyer's, not the pipeline's. Identified events only.
        if event.event_id and (event.subject != "web_activity" or event.record.get("email")):
            sent_at[event.event_id] = stamped_ms

    def absorb(rows) -> None:
        for _topic, subject, value, ts, _ in rows:
            if subject == "lead_scored":
                t_in = sent_at.get(value["cause_event_id"])
                if t_in is not None:
                    scored_lat.append(ts - t_in)
            elif subject == "lead_qualified" and value.get("cause_received_at"):
                if value["cause_received_at"] >= phase_start_ms:
                    mql_lat.append(ts - value["cause_received_at"])
                    mql_cause[value["event_id"]] = value["cause_received_at"]
            elif subject == "lead_assigned":
                pending_assign.append({"mql": value["mql_event_id"], "ts": ts})
        for item in list(pending_assign):
            cause = mql_cause.get(item["mql"])
            if cause is not None:
                assign_lat.append(item["ts"] - cause)
                pending_assign.remove(item)

    async def read_loop() -> None:
        while not stop.is_set():
            absorb(await reader.poll(200))

    n = int(rate * opts.latency_seconds)
    say(f"latency: {n:,} live events at {rate:,.0f} events/s")
    meter = CpuMeter()
    meter.start({"worker": worker.pid, "kafka": stack.kafka_pid()})
    phase_start_ms = int(time.time() * 1000)
    reading = asyncio.create_task(read_loop())
    try:
        async with Publisher(kafka_client_kwargs(settings), names, codec, client_id="leadflow-bench-live") as pub:

            async def report() -> None:
                while not stop.is_set():
                    progress("latency", pub.stats.sent, n)
                    await asyncio.sleep(0.5)

            reporter = asyncio.create_task(report())
            try:
                stats = await pub.run(stream, rate=rate, limit=n, on_sent=on_sent)
            finally:
                reporter.cancel()
        # Wait for the outputs of the last events (or give up after 30 s).
        deadline = time.monotonic() + 30
        while len(scored_lat) < len(sent_at) * 0.98 and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await reading
        await reader.stop()
    load = meter.stop()
    progress("latency", n, n)
    return {
        "rate_events_per_s": rate,
        "events": stats.sent,
        "achieved_rate": round(stats.rate, 1),
        "event_to_scored": _pcts(scored_lat),
        "event_to_mql": _pcts(mql_lat),
        "event_to_assignment": _pcts(assign_lat),
        "load": load,
        "note": (
            "input broker timestamp -> output broker timestamp; lead_scored: identified events only "
            "(anonymous page views wait for the visitor to identify); assignments only when a routing "
            "agent runs"
        ),
    }


def _render_profile(kind: str | None, path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"error": f"the profiler wrote no {path.name} (did the worker exit cleanly?)"}
    if kind == "pyinstrument":
        from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer
        from pyinstrument.session import Session

        session = Session.load(str(path))
        text = ConsoleRenderer(unicode=True, color=False, show_all=False, short_mode=False).render(session)
        text_path = path.with_suffix(".txt")
        text_path.write_text(text)
        path.with_suffix(".html").write_text(HTMLRenderer().render(session))
        return {"session": str(path), "text": str(text_path), "html": str(path.with_suffix(".html"))}
    import pstats

    text_path = path.with_suffix(".txt")
    with text_path.open("w") as fh:
        stats = pstats.Stats(str(path), stream=fh)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)
    return {"pstats": str(path), "text": str(text_path)}


def bench_settings(base: Settings, run_id: str, **overrides: Any) -> Settings:
    """The worker's own topic prefix, app id, data dir; metrics off (nothing scrapes them)."""
    data = base.model_dump()
    data.update(
        topic_prefix=run_id,
        app_id=run_id,
        redis_key_prefix=run_id,
        metrics_port=0,
        data_dir=Path(base.stack_dir) / "bench" / run_id / "data",
    )
    data.update(overrides)
    return Settings(**data)


def security_comparison(plain: dict[str, Any], secure: dict[str, Any]) -> dict[str, Any]:
    """PLAINTEXT vs SASL_SSL, same events, same broker, same run."""

    def figures(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "passthrough_events_per_s": r["passthrough"]["events_per_s_median"],
            "pipeline_events_per_s": r["pipeline"].get("events_per_s"),
            "pipeline_events_per_worker_cpu_s": r["pipeline"].get("events_per_worker_cpu_s"),
        }

    a, b = figures(plain), figures(secure)
    ratio = {k: (round(b[k] / a[k], 3) if a[k] and b[k] else None) for k in a}
    return {"plaintext": a, "sasl_ssl": b, "sasl_ssl_over_plaintext": ratio}


async def _delete_topics(kafka: dict[str, Any], prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka, request_timeout_ms=15000)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix + ".") or t.startswith(prefix + "-")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def run_bench(
    base: Settings,
    opts: BenchOptions,
    *,
    manage_stack: bool = True,
    keep_stack: bool = False,
    progress: Progress = _noop,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark; returns the results dict (also written as JSON)."""
    run_id = time.strftime("bench-%Y%m%d-%H%M%S")
    settings = bench_settings(base, run_id)
    opts.results_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with StackSession(settings, manage=manage_stack, keep=keep_stack, secure=opts.compare_sasl_ssl) as stack:
        say(stack.describe())
        runs = [(run_id, settings)]
        if opts.compare_sasl_ssl:
            secure_id = f"{run_id}-sasl"
            secure = bench_settings(base, secure_id, **stack.secure_overrides())
            runs.append((secure_id, secure))
        from leadflow.demo import load_roster

        all_results = []
        for one_id, one in runs:
            say(f"{one_id}: Kafka over {one.kafka_security_protocol} at {one.kafka_bootstrap}")
            say(load_roster(one, Path(one.data_dir).parent))  # routing routes for real
            loop = asyncio.new_event_loop()
            try:
                all_results.append(loop.run_until_complete(_run(one, stack, opts, one_id, progress, say)))
                if not opts.keep_topics:
                    loop.run_until_complete(_delete_topics(kafka_client_kwargs(one), one_id))
            finally:
                loop.close()
                shutil.rmtree(one.data_dir, ignore_errors=True)
                forget_redis_keys(one)
        results = all_results[0]
        if opts.compare_sasl_ssl:
            results["sasl_ssl"] = all_results[1]
            results["security_comparison"] = security_comparison(all_results[0], all_results[1])
    results["environment"] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "cpus": os.cpu_count(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "kafka": settings.kafka_version,
        "bootstrap": settings.kafka_bootstrap,
        "worker_env": opts.worker_env,
        "profile": opts.profile,
        "faust_overrides": opts.faust_overrides,
        "patches": opts.patches,
    }
    path = opts.results_dir / f"{run_id}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    results["results_file"] = str(path)
    return results


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, pass-through, pipeline) rows for the short table."""
    pt, pl, lat = results["passthrough"], results["pipeline"], results.get("latency", {})

    def ms(block: dict | None) -> str:
        if not block or not block.get("count"):
            return "n/a (no outputs)"
        return f"{block['p50_ms']:.0f} / {block['p95_ms']:.0f} / {block['p99_ms']:.0f} ms (n={block['count']})"

    ratio = results.get("ratio")
    return [
        ("events", f"{results['events']:,}", f"{results['events']:,}"),
        ("events/s", f"{pt['events_per_s_median']:,.0f} (median of {len(pt['runs'])})", f"{pl['events_per_s']:,.0f}"),
        (
            "events per CPU-second",
            f"{pt['events_per_cpu_s_median']:,.0f}",
            f"{pl.get('events_per_worker_cpu_s') or 0:,.0f}",
        ),
        ("ratio pipeline / pass-through", "", f"{ratio:.1%} (goal {GOAL_RATIO:.0%})" if ratio else "n/a"),
        ("event→lead_scored p50/p95/p99", "", ms(lat.get("event_to_scored"))),
        ("event→MQL p50/p95/p99", "", ms(lat.get("event_to_mql"))),
        ("event→assignment p50/p95/p99", "", ms(lat.get("event_to_assignment"))),
        ("latency load", "", f"{lat.get('rate_events_per_s', 0):,.0f} events/s for {lat.get('events', 0):,} events"),
        ("worker peak RSS", "", f"{pl.get('worker_peak_rss_mib_overall', pl.get('worker_peak_rss_mib'))} MiB"),
        (
            "machine busy during run",
            f"{pt['runs'][0]['load']['machine_busy_pct']}%",
            f"{pl['load']['machine_busy_pct']}% (others {pl['load']['other_processes_cpu_s']} CPU-s)",
        ),
    ]


def as_dict(opts: BenchOptions) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()}


# --- prototyping hook: a worker with Faust settings / code patches applied, for measurement only --


PATCHES: dict[str, Callable[[], None]] = {}


def _patch(name: str):
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        PATCHES[name] = fn
        return fn

    return register


@_patch("no_spinner")
def _no_spinner() -> None:
    """Faust's terminal spinner off (it sets the root logger to DEBUG at loglevel >= warn)."""
    import faust.worker

    original = faust.worker.Worker.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.spinner = None

    faust.worker.Worker.__init__ = init  # type: ignore[method-assign]


@_patch("fast_event_dict")
def _fast_event_dict() -> None:
    """LeadEvent.to_dict without dataclasses.asdict (a recursive deepcopy per event)."""
    from agents.domain.events import LeadEvent

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "lead_id": self.lead_id,
            "visitor_id": self.visitor_id,
            "occurred_at_ms": self.occurred_at_ms,
            "received_at_ms": self.received_at_ms,
            "source": self.source,
            "data": dict(self.data),
        }

    LeadEvent.to_dict = to_dict  # type: ignore[method-assign]


@_patch("chunked_due_index")
def _chunked_due_index() -> None:
    """DueIndex buckets as chunks of at most 64 keys: an append costs O(64), not O(bucket).

    Patches only the index's storage (``members``/``append``/``drop``), so scoring and SLA keep
    their sweep logic; buckets written in the one-list format are still read (and dropped)."""
    import orjson

    from streams import due_index as di

    chunk_size = 64

    def chunk_key(bkey: bytes, i: int) -> bytes:
        return b"%s:%d" % (bkey, i)

    def head(table, bkey: bytes) -> tuple[int, list[str]]:
        """(number of chunks, keys of a bucket stored in the one-list format)."""
        raw = table.get(bkey)
        if raw is None:
            return 0, []
        value = orjson.loads(raw)
        return (value, []) if isinstance(value, int) else (0, value)

    def members(self, partition: int, bucket: int) -> list[str]:
        bkey = di.bucket_key(partition, bucket)
        chunks, keys = head(self.table, bkey)
        for i in range(chunks):
            keys.extend(orjson.loads(self.table.get(chunk_key(bkey, i)) or b"[]"))
        return list(dict.fromkeys(keys))

    def append(self, partition: int, bucket: int, keys) -> None:
        bkey = di.bucket_key(partition, bucket)
        chunks, legacy = head(self.table, bkey)
        if legacy:  # a bucket in the one-list format becomes chunk 0
            self.table[chunk_key(bkey, 0)] = orjson.dumps(legacy)
            self.table[bkey] = b"1"
            chunks = 1
        last = orjson.loads(self.table.get(chunk_key(bkey, chunks - 1)) or b"[]") if chunks else []
        added = [k for k in dict.fromkeys(keys) if k not in last]
        while added:  # a duplicate in an earlier chunk is harmless: members() and the sweep dedupe
            if not chunks or len(last) >= chunk_size:
                chunks, last = chunks + 1, []
                self.table[bkey] = b"%d" % chunks
            room = chunk_size - len(last)
            last, added = last + added[:room], added[room:]
            self.table[chunk_key(bkey, chunks - 1)] = orjson.dumps(last)

    def drop(self, partition: int, bucket: int) -> None:
        bkey = di.bucket_key(partition, bucket)
        chunks, _ = head(self.table, bkey)
        for i in range(chunks):
            if self.table.get(chunk_key(bkey, i)) is not None:
                del self.table[chunk_key(bkey, i)]
        if self.table.get(bkey) is not None:
            del self.table[bkey]

    di.DueIndex.members = members  # type: ignore[method-assign]
    di.DueIndex.append = append  # type: ignore[method-assign]
    di.DueIndex.drop = drop  # type: ignore[method-assign]


@_patch("big_producer_buffer")
def _big_producer_buffer() -> None:
    """Faust's changelog ProducerBuffer holds 100 messages before the stream stops to flush."""
    from faust.transport.producer import ProducerBuffer

    ProducerBuffer.max_messages = 2000
