"""``run_bench``: start (or reuse) the stack, then for each security protocol asked for, one run
on its own topics: the same N messages, generated and encoded once, through every measurement -
the floors (``floors``), then the pipeline (``pipeline``) - and the results written as JSON."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leadflow.bench.floors import faust_floor, passthrough, quix_peer
from leadflow.bench.options import BenchOptions, Progress, bench_settings, no_progress
from leadflow.bench.pipeline import measure_pipeline
from leadflow.bench.quix_peer import quix_missing
from leadflow.bench.results import add_goal_ratios, add_goals, add_quix_ratio, environment, security_comparison
from leadflow.bench.topic_io import delete_topics, prefill
from leadflow.simulator.harness import CpuMeter, StackSession, forget_redis_keys
from streams.connections import kafka_client_kwargs
from streams.settings import Settings


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
        await prefill(pub, [(pt_in, k, v) for _, k, v in items], progress, "pre-fill pass-through")
        await prefill(pub, items, progress, "pre-fill inputs")

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
            results["faust_passthrough"][label] = await faust_floor(
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

    # (a3) leadflow's capture + scoring rules on Quix Streams, over the pre-filled inputs (before
    # the latency phase adds to them): the same work without Faust.
    skipped = "not asked for (--no-quix-peer)" if not opts.quix_peer else quix_missing()
    if skipped:
        results["quix_peer"] = {"skipped": skipped}
        if opts.quix_peer:
            say(f"Quix Streams peer skipped: {skipped}")
    else:
        results["quix_peer"] = await quix_peer(settings, stack.kafka_pid(), opts.events, workdir, progress=progress)
        say(f"Quix Streams peer (capture + scoring): {results['quix_peer']['events_per_s']:,.0f} events/s")

    # (b) pipeline throughput on the pre-filled inputs, then (c) latency, live, on the same worker.
    await measure_pipeline(settings, stack, opts, run_id, names, codec, stream, workdir, results, progress, say)
    add_goal_ratios(results)
    add_quix_ratio(results)
    add_goals(results)
    return results


def run_bench(
    base: Settings,
    opts: BenchOptions,
    *,
    manage_stack: bool = True,
    keep_stack: bool = False,
    progress: Progress = no_progress,
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
        from leadflow.demo.run import load_roster

        all_results = []
        for one_id, one in runs:
            say(f"{one_id}: Kafka over {one.kafka_security_protocol} at {one.kafka_bootstrap}")
            say(load_roster(one, Path(one.data_dir).parent))  # routing routes for real
            loop = asyncio.new_event_loop()
            try:
                all_results.append(loop.run_until_complete(_run(one, stack, opts, one_id, progress, say)))
                if not opts.keep_topics:
                    loop.run_until_complete(delete_topics(kafka_client_kwargs(one), one_id))
            finally:
                loop.close()
                shutil.rmtree(one.data_dir, ignore_errors=True)
                forget_redis_keys(one)
        results = all_results[0]
        if opts.compare_sasl_ssl:
            results["sasl_ssl"] = all_results[1]
            results["security_comparison"] = security_comparison(all_results[0], all_results[1])
    results["environment"] = environment(settings, opts, started)
    path = opts.results_dir / f"{run_id}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    results["results_file"] = str(path)
    return results
