"""The leadflow pipeline measured: (b) throughput - one ``leadflow worker`` drains the
pre-filled input topics; (c) latency - the same worker fed live at a fraction of that rate,
then at each of ``--goal-rates``, input broker timestamp -> ``lead_scored`` / MQL / assignment
broker timestamp."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leadflow.bench.options import BenchOptions, Progress
from leadflow.bench.profiling import render_profile, worker_profiler
from leadflow.bench.results import percentiles
from leadflow.bench.topic_io import committed_lag, read_all
from leadflow.simulator.harness import (
    CpuMeter,
    HarnessError,
    OutputReader,
    StackSession,
    WorkerProcess,
    end_offsets,
    wait_for_group,
)
from streams.connections import kafka_client_kwargs
from streams.settings import Settings


async def measure_pipeline(
    settings: Settings,
    stack: StackSession,
    opts: BenchOptions,
    run_id: str,
    names,
    codec,
    stream,
    workdir: Path,
    results: dict[str, Any],
    progress: Progress,
    say: Callable[[str], None],
) -> None:
    """(b), then (c) on the same worker; adds ``pipeline``, ``latency``, ``goal_latency`` (one
    phase per goal rate), ``worker_log`` (and ``profile``) to ``results``. ``stream``: the simulator that made the pre-filled events."""
    kafka = kafka_client_kwargs(settings)
    wrapper, profile_out = worker_profiler(opts, run_id)
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
        module="leadflow.bench.worker" if proto else "leadflow.cli",
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
            input_lag, internal_lag, internal_total = await _lags(kafka, settings.app_id, input_ends, internal)
            lag = input_lag + internal_lag
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
        written = await read_all(kafka, codec, [*internal, names.dead_letters], decode=False)
        scored = await read_all(kafka, codec, [names.lead_scored], decode=False)
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
        # (c2) at the fixed loads the goals name, lowest first (a saturating one backs up the next).
        results["goal_latency"] = []
        for goal_rate in sorted(opts.goal_rates):
            backlog = await _settle(kafka, settings.app_id, names, opts.output_wait_s)
            phase = await _latency_phase(
                settings,
                names,
                codec,
                stream,
                goal_rate,
                opts,
                worker,
                stack,
                progress,
                say,
                f"latency {goal_rate:g}/s",
            )
            results["goal_latency"].append({**phase, "backlog_at_start": backlog})
        worker.sample()
    finally:
        worker.stop(timeout=60)
        if worker.peak_rss_kib:
            results.setdefault("pipeline", {})["worker_peak_rss_mib_overall"] = round(worker.peak_rss_kib / 1024, 1)
    results["worker_log"] = str(worker.log_file)
    if profile_out is not None:
        results["profile"] = render_profile(opts.profile, profile_out)


async def _lags(kafka, app_id: str, input_ends, internal: list[str]) -> tuple[int, int, int]:
    """(input lag, internal lag, internal records in all) of the worker's group."""
    internal_ends = await end_offsets(kafka, internal)
    input_lag = await committed_lag(kafka, app_id, input_ends)
    internal_lag = await committed_lag(kafka, app_id, internal_ends)
    return input_lag, internal_lag, sum(internal_ends.values())


async def _settle(kafka, app_id: str, names, timeout_s: float) -> int:
    """Wait (at most ``timeout_s``) for the worker to catch up with what earlier phases sent, so
    a phase measures its own load; returns the records still behind when it gives up (0: none)."""
    deadline = time.monotonic() + timeout_s
    while True:
        input_lag, internal_lag, _ = await _lags(
            kafka, app_id, await end_offsets(kafka, names.inputs()), [names.lead_events, names.visitor_events]
        )
        if input_lag + internal_lag == 0 or time.monotonic() > deadline:
            return input_lag + internal_lag
        await asyncio.sleep(0.5)


async def _latency_phase(
    settings,
    names,
    codec,
    stream,
    rate: float,
    opts: BenchOptions,
    worker,
    stack,
    progress: Progress,
    say,
    label: str = "latency",
) -> dict[str, Any]:
    from leadflow.simulator import Publisher

    out_topics = [names.lead_scored, names.mqls, names.assignments]
    reader = OutputReader(
        kafka_client_kwargs(settings), codec, await end_offsets(kafka_client_kwargs(settings), out_topics)
    )
    await reader.start()
    sent_at: dict[str, int] = {}
    sent_subject: dict[str, str] = {}
    # (lead id, input broker time) -> when its lead_scored went out, and the input's subject
    scored_out: dict[tuple[str, int], tuple[int, str]] = {}
    # MQL broker time - its lead_scored's, by the input subject that caused it
    mql_after_scored: dict[str, list[float]] = {}
    scored_lat: list[float] = []
    mql_lat: list[float] = []
    assign_lat: list[float] = []
    mql_cause: dict[str, int] = {}
    scored_causes: set[str] = set()
    assigned_mqls: set[str] = set()
    pending_assign: list[dict] = []
    stop = asyncio.Event()

    def on_sent(event, stamped_ms: int) -> None:
        # Anonymous page views are scored only once the visitor identifies (by design, maybe
        # much later): their delay is the buyer's, not the pipeline's. Identified events only.
        if event.event_id and (event.subject != "web_activity" or event.record.get("email")):
            sent_at[event.event_id] = stamped_ms
            sent_subject[event.event_id] = event.subject

    def absorb(rows) -> None:
        for _topic, subject, value, ts, _ in rows:
            if subject == "lead_scored":
                t_in = sent_at.get(value["cause_event_id"])
                if t_in is not None:
                    scored_lat.append(ts - t_in)
                    scored_out[(value["lead_id"], t_in)] = (ts, sent_subject[value["cause_event_id"]])
                    scored_causes.add(value["cause_event_id"])
            elif subject == "lead_qualified" and value.get("cause_received_at"):
                if value["cause_received_at"] >= phase_start_ms:
                    mql_lat.append(ts - value["cause_received_at"])
                    scored = scored_out.get((value["lead_id"], value["cause_received_at"]))
                    if scored is not None:
                        mql_after_scored.setdefault(scored[1], []).append(ts - scored[0])
                    mql_cause[value["event_id"]] = value["cause_received_at"]
            elif subject == "lead_assigned":
                pending_assign.append({"mql": value["mql_event_id"], "ts": ts})
        for item in list(pending_assign):
            cause = mql_cause.get(item["mql"])
            if cause is not None:
                assign_lat.append(item["ts"] - cause)
                assigned_mqls.add(item["mql"])
                pending_assign.remove(item)

    async def read_loop() -> None:
        while not stop.is_set():
            absorb(await reader.poll(200))

    n = int(rate * opts.latency_seconds)
    say(f"{label}: {n:,} live events at {rate:,.0f} events/s")
    meter = CpuMeter()
    meter.start({"worker": worker.pid, "kafka": stack.kafka_pid()})
    phase_start_ms = int(time.time() * 1000)
    reading = asyncio.create_task(read_loop())
    try:
        async with Publisher(kafka_client_kwargs(settings), names, codec, client_id="leadflow-bench-live") as pub:

            async def report() -> None:
                while not stop.is_set():
                    progress(label, pub.stats.sent, n)
                    await asyncio.sleep(0.5)

            reporter = asyncio.create_task(report())
            try:
                stats = await pub.run(stream, rate=rate, limit=n, on_sent=on_sent)
            finally:
                reporter.cancel()
        # Wait for the outputs of the last events (a saturated worker: give up, report what is missing).
        deadline = time.monotonic() + opts.output_wait_s
        while len(scored_lat) < len(sent_at) * 0.98 and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await reading
        await reader.stop()
    load = meter.stop()
    progress(label, n, n)
    return {
        "rate_events_per_s": rate,
        "events": stats.sent,
        "achieved_rate": round(stats.rate, 1),
        "event_to_scored": percentiles(scored_lat),
        "event_to_mql": percentiles(mql_lat),
        "event_to_assignment": percentiles(assign_lat),
        # How long after its input's lead_scored an MQL went out, by the input's subject: a form
        # submit that links a visitor qualifies once the visitor's anonymous history has come back
        # through the visitor topic and the lead events topic (two hops), a page view at once.
        "mql_after_lead_scored": {subject: percentiles(v) for subject, v in sorted(mql_after_scored.items())},
        # Outputs not seen when the phase ended (their delays are not in the percentiles above):
        # identified events without lead_scored, MQLs of this phase without an assignment.
        "missing_outputs": {
            "lead_scored": len(sent_at.keys() - scored_causes),
            "assignment": len(mql_cause.keys() - assigned_mqls),
        },
        "output_wait_s": opts.output_wait_s,
        "load": load,
        "note": (
            "input broker timestamp -> output broker timestamp; lead_scored: identified events only "
            "(anonymous page views wait for the visitor to identify); assignments only when a routing "
            "agent runs"
        ),
    }
