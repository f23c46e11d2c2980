"""``make bench-recovery``: recovery with N leads in state (issue 14), each goal's figure and
whether it is met, and the run as JSON (``recovery-<timestamp>.json``).

    python -m leadflow.bench.recovery [--leads N] [--output DIR] [--no-failover] [--keep-stack]

On its own topic prefix and app id (Kafka + Redis started if not running):

1. **state**: N lead states written straight to the ``lead_to_state`` changelog, clones of a
   pool of realistic states (``recovery_state``), each on the partition the worker would have
   written it to. Only that table: the review due-index and the other tables stay empty.
2. **cold**: one worker on an empty data dir; from its start, a probe (a form submit of a new
   lead) every 0.5 s; figure = process start -> the first probe's ``lead_scored`` (broker time).
   Then a form submit of a pre-filled lead checks the worker recovered that lead's state.
3. **warm**: the worker stopped with SIGTERM and started again on the same data dir, same figure.
4. **failover**: two workers with LEADFLOW_STANDBY_REPLICAS=1 on fresh data dirs; once both
   are in the group, process probes on every partition and have gone idle (their standbys read
   to the end of the changelogs), one is killed with SIGKILL while probes go to every partition;
   figure = kill -> the first probe output from a partition the killed worker owned.

Peak RSS (VmHWM) of every worker; bytes per lead = mean of key + value of the states written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from leadflow.bench.goals import evaluate_goals, goal_table
from leadflow.bench.options import bench_settings
from leadflow.bench.recovery_phases import DEFAULT_OUTPUT, RecoveryOptions, RecoveryRun, failover, phase_line, restart
from leadflow.bench.recovery_probe import Prober, prefill
from leadflow.bench.recovery_state import GOALS, machine_info, simulate_pool, size_stats
from leadflow.simulator.harness import HarnessError, StackSession, WorkerProcess
from streams.local_state import MARKER
from streams.settings import Settings


def run_recovery(base: Settings, opts: RecoveryOptions, *, say=print) -> dict[str, Any]:
    """Run every phase; returns the results (also written to ``opts.output``)."""
    from leadflow.bench.topic_io import delete_topics
    from leadflow.demo.run import load_roster
    from leadflow.simulator.harness import forget_redis_keys
    from streams.connections import kafka_client_kwargs

    run_id = time.strftime("recovery-%Y%m%d-%H%M%S")
    settings = bench_settings(base, run_id)
    workdir = Path(settings.data_dir).parent
    started = time.time()
    results: dict[str, Any] = {
        "run_id": run_id,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "leads": opts.leads,
        "partitions": settings.topic_partitions,
        "store": settings.store,
        "faust_overrides": opts.faust_overrides,
        "machine": machine_info(),
    }
    opts.output.mkdir(parents=True, exist_ok=True)
    path = opts.output / f"{run_id}.json"

    def save(complete: bool = False) -> None:
        """After each phase too: an interrupted run keeps what it measured (``complete`` false)."""
        results["figures"] = _figures(results, run.workers)
        results["goals"] = evaluate_goals(GOALS, results["figures"])
        results["complete"] = complete
        path.write_text(json.dumps(results, indent=2, default=str))

    run = RecoveryRun(base, settings, opts, run_id, workdir, say, save=save)
    kept = set(_children())  # already running (a test's stack): not ours to report
    with StackSession(settings, manage=opts.manage_stack, keep=opts.keep_stack) as stack:
        say(stack.describe())
        say(load_roster(settings, workdir))
        loop = asyncio.new_event_loop()
        measuring = loop.create_task(_measure(run, results))
        try:
            loop.run_until_complete(measuring)
        finally:
            if not measuring.done():  # interrupted: end it (its probes) before cleaning up on this loop
                measuring.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(measuring)
            run.stop_all()
            loop.run_until_complete(delete_topics(kafka_client_kwargs(settings), run_id))
            loop.close()
            for data in workdir.glob("data*"):
                shutil.rmtree(data, ignore_errors=True)
            forget_redis_keys(settings)
        if opts.keep_stack:
            kept |= {pid for pid in (stack.kafka_pid(), _redis_pid(stack)) if pid}
    # Everything this run started and did not keep is gone: should be empty.
    results["leftover_processes"] = [f"{pid} {cmd}" for pid, cmd in _children().items() if pid not in kept]
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["duration_s"] = round(time.time() - started, 1)
    save(complete=True)
    results["results_file"] = str(path)
    return results


async def _measure(run: RecoveryRun, results: dict[str, Any]) -> None:
    from agents.scoring import state_codec
    from leadflow.compose import load_configs
    from streams.app import build_codec
    from streams.topics import changelog_topics, ensure_topics

    settings, opts, say = run.settings, run.opts, run.say
    await ensure_topics(settings)
    changelog = next(t for t in changelog_topics(settings) if t.endswith("-lead_to_state-changelog"))
    say(f"simulating a pool of {opts.pool_size} lead states")
    pool = simulate_pool(
        settings, load_configs(settings), opts.pool_size, seed=opts.seed, end_ms=int(time.time() * 1000)
    )
    pool_sizes = [len(s.lead_id) + len(state_codec.pack(s.value)) for s in pool.states]  # as stored
    with_window = sum(1 for s in pool.states if b'"window":' in s.value)
    say(f"writing {opts.leads:,} lead states to {changelog} (lead_to_state only: no review due-index entries)")
    written = await prefill(settings, changelog, pool, opts.leads, say)
    run.samples = written.pop("samples")
    results["state"] = {
        "changelog": changelog,
        "tables_prefilled": ["lead_to_state"],
        "not_prefilled": "review due-index, visitor buffers, SLA clocks, assignments, account facts",
        "written_bytes_per_lead": size_stats(list(written.pop("sizes"))),
        "pool_bytes_per_lead": size_stats(pool_sizes),
        "pool_states": len(pool.states),
        "pool_simulator_events": pool.events,
        "pool_share_with_reorder_window": round(with_window / len(pool.states), 3),
        "prefill": written,
    }
    say(
        f"  {results['state']['written_bytes_per_lead']['mean']:,.0f} B per lead (key + value) in "
        f"{written['seconds']:.0f} s; {with_window}/{len(pool.states)} pooled states carry a reorder window"
    )
    run.save()
    run.prober = Prober(settings, build_codec(settings, register=True), pool, run.run_id)
    await run.prober.start()
    try:
        cold_worker, results["cold"] = await restart(run, "cold", run.samples[0])
        say(phase_line("cold recovery", results["cold"]))
        run.save()
        t = time.monotonic()
        cold_worker.stop(timeout=120)  # SIGTERM: a clean stop, the local stores are kept
        results["cold"]["sigterm_stop_s"] = round(time.monotonic() - t, 2)
        results["cold"]["stopped_cleanly"] = not (Path(settings.data_dir) / MARKER).exists()
        warm_worker, results["warm"] = await restart(run, "warm", run.samples[1])
        say(phase_line("warm restart", results["warm"]))
        run.save()
        warm_worker.stop(timeout=120)
        if opts.failover:
            results["failover"] = await failover(run)
    finally:
        await run.prober.stop()


def _figures(results: dict[str, Any], workers: list[WorkerProcess]) -> dict[str, float | None]:
    peaks = [w.peak_rss_kib for w in workers if w.peak_rss_kib]
    failover = results.get("failover") or {}
    return {
        "cold_recovery_s": (results.get("cold") or {}).get("to_processing_s"),
        "warm_restart_s": (results.get("warm") or {}).get("to_processing_s"),
        "failover_s": failover.get("failover_s"),
        "failover_all_partitions_s": failover.get("all_victim_partitions_s"),
        "worker_peak_rss_mib": round(max(peaks) / 1024, 1) if peaks else None,
        "state_bytes_per_lead": ((results.get("state") or {}).get("written_bytes_per_lead") or {}).get("mean"),
    }


def _redis_pid(stack: StackSession) -> int | None:
    return stack.stack.redis.process.running_pid() if stack.stack is not None else None


def _children() -> dict[int, str]:
    """Our live descendants, pid -> command line (empty without psutil)."""
    try:
        import psutil
    except ImportError:
        return {}
    out = {}
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                out[child.pid] = " ".join(child.cmdline())[:120]
        except psutil.NoSuchProcess:
            continue
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leadflow.bench.recovery", description="Recovery with N leads in state (issue 14)."
    )
    parser.add_argument("--leads", type=int, default=1_000_000, help="lead states in the changelog (default 1000000)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="directory of the JSON results")
    parser.add_argument("--no-failover", action="store_true", help="skip the standby failover phase")
    parser.add_argument("--keep-stack", action="store_true", help="leave Kafka/Redis running if this started them")
    parser.add_argument("--no-stack", action="store_true", help="use the configured Kafka/Redis, start nothing")
    parser.add_argument("--pool", type=int, default=400, help="realistic states simulated, then cloned")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--faust",
        default="{}",
        help="extra faust.App settings for the workers as JSON, to try a recovery tuning "
        "(they run as `python -m leadflow.bench.worker`), e.g. '{\"consumer_max_fetch_size\": 8388608}'",
    )
    args = parser.parse_args(argv)
    if args.leads < 10 or args.pool < 1:
        parser.error("--leads must be >= 10 and --pool >= 1")
    from leadflow.cli_feedback import quiet_clients
    from streams.settings import load_settings

    # SIGTERM (a timeout, a supervisor) unwinds like Ctrl-C: workers stopped, topics and state removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_clients()
    opts = RecoveryOptions(
        leads=args.leads,
        output=args.output,
        failover=not args.no_failover,
        manage_stack=not args.no_stack,
        keep_stack=args.keep_stack,
        pool_size=args.pool,
        seed=args.seed,
        faust_overrides=json.loads(args.faust),
    )
    try:
        results = run_recovery(load_settings(), opts, say=lambda line: print(line, flush=True))
    except HarnessError as exc:
        print(f"bench-recovery failed: {exc}", file=sys.stderr)
        return 1
    figures = results["figures"]
    extra = [("warm restart to processing", f"{figures['warm_restart_s']} s")]
    if figures["failover_all_partitions_s"] is not None:
        extra.append(("failover, all the victim's partitions", f"{figures['failover_all_partitions_s']} s"))
    print(f"\n{results['leads']:,} leads, {results['machine']['cores']} cores ({results['machine'].get('cpu_model')})")
    print(goal_table(GOALS, results["goals"], extra))
    if results["leftover_processes"]:
        print(f"left running: {results['leftover_processes']}", file=sys.stderr)
    print(f"results: {results['results_file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
