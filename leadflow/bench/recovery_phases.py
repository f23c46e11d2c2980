"""The measured phases of ``make bench-recovery`` (``leadflow.bench.recovery``): a worker
(re)started on N leads of state, until a probe's ``lead_scored`` comes out (cold, warm); two
workers with a standby replica each, one killed with SIGKILL (failover)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadflow.bench.options import bench_settings
from leadflow.bench.recovery_probe import (
    ASSIGNED,
    BULK_RESTORE_DONE,
    BULK_RESTORE_STARTED,
    RESTORE_DONE,
    RESTORE_STARTED,
    WORKER_READY,
    alive_check,
    assigned_partitions,
    group_members,
    log_marks,
    wait_until,
)
from leadflow.simulator.harness import HarnessError, WorkerProcess, read_cpu_seconds
from streams.settings import REPO_ROOT, Settings

DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results"


@dataclass
class RecoveryOptions:
    leads: int = 1_000_000
    output: Path = DEFAULT_OUTPUT
    failover: bool = True
    manage_stack: bool = True
    keep_stack: bool = False
    pool_size: int = 400
    seed: int = 7
    phase_timeout_s: float = 1200.0  # a cold start of 1M leads took 135 s in issue 14
    settle_timeout_s: float = 900.0
    idle_cpu_share: float = 0.2  # of one core, over 5 s: "done reading the standby changelogs"
    faust_overrides: dict[str, Any] = field(default_factory=dict)  # extra faust.App settings (a trial)


@dataclass
class RecoveryRun:
    base: Settings
    settings: Settings
    opts: RecoveryOptions
    run_id: str
    workdir: Path
    say: Any
    prober: Any = None
    save: Callable[[], None] = lambda: None  # writes the results so far
    samples: list[dict[str, Any]] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker(self, name: str, settings: Settings) -> WorkerProcess:
        if self.opts.faust_overrides:  # the same worker with these faust.App settings (leadflow.bench.worker)
            env = {"LEADFLOW_BENCH_FAUST": json.dumps(self.opts.faust_overrides)}
            worker = WorkerProcess(settings, self.workdir, name=name, extra_env=env, module="leadflow.bench.worker")
        else:
            worker = WorkerProcess(settings, self.workdir, name=name)
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop(timeout=60)


async def restart(run: RecoveryRun, name: str, sample: dict[str, Any]) -> tuple[WorkerProcess, dict[str, Any]]:
    """Start one worker on ``run.settings``' data dir; seconds until it processes again."""
    prober, parts = run.prober, run.settings.topic_partitions
    worker = run.worker(name, run.settings)
    run.say(f"{name}: starting a worker ({run.opts.leads:,} leads in the changelog)")
    prober.targets, prober.rotate = list(range(parts)), True
    t0 = time.time()
    worker.start()
    alive = alive_check(worker)
    first = await wait_until(
        lambda: prober.first_output(int(t0 * 1000)), run.opts.phase_timeout_s, alive, f"{name}: a probe's lead_scored"
    )
    prober.targets = []
    worker.sample()
    rss = worker.peak_rss_kib
    marks = log_marks(
        worker.log_file,
        t0,
        {
            "bulk_started": BULK_RESTORE_STARTED,
            "bulk_done": BULK_RESTORE_DONE,
            "restore_started": RESTORE_STARTED,
            "restore_done": RESTORE_DONE,
            "ready": WORKER_READY,
        },
    )
    check = await prober.check_state(sample, 120, alive)
    # With a bulk restore (streams/faust_bulk_restore.py) the changelog is read from its start.
    # (nothing left for Faust to read then: it logs neither its start nor its end).
    started = marks["bulk_started"] or marks["restore_started"]
    done = marks["restore_done"] or marks["bulk_done"]
    reading = round(done - started, 2) if started is not None and done is not None else None
    return worker, {
        "to_processing_s": round(first / 1000 - t0, 2),
        "worker_ready_logged_s": marks["ready"],
        "restore_started_logged_s": marks["restore_started"],
        "bulk_restore_logged_s": marks["bulk_started"],
        "changelog_read_s": reading,
        "changelog_records_per_s": round(run.opts.leads / reading) if reading else None,
        "peak_rss_mib_after_recovery": round(rss / 1024, 1) if rss else None,
        "state_check": check,
        "log": str(worker.log_file),
    }


async def failover(run: RecoveryRun) -> dict[str, Any]:
    from streams.topics import TopicNames

    prober, opts, say = run.prober, run.opts, run.say
    parts = list(range(run.settings.topic_partitions))
    workers = [
        run.worker(
            f"failover-{x}",
            bench_settings(run.base, run.run_id, data_dir=run.workdir / f"data-{x}", standby_replicas=1),
        )
        for x in "ab"
    ]
    say("failover: starting two workers with LEADFLOW_STANDBY_REPLICAS=1 on fresh data dirs")
    prober.targets, prober.rotate = parts, False  # one probe per partition every 0.5 s
    t0 = time.time()
    for worker in workers:
        worker.start()
    alive = alive_check(*workers)
    deadline = time.monotonic() + opts.phase_timeout_s
    while await group_members(run.settings) < 2:
        alive()
        if time.monotonic() > deadline:
            raise HarnessError("failover: the two workers did not form one group")
        await asyncio.sleep(0.5)
    joined_ms = int(time.time() * 1000)
    await wait_until(
        lambda: len(prober.first_per_partition(joined_ms)) == len(parts) or None,
        opts.phase_timeout_s,
        alive,
        "failover: probe outputs from every partition",
    )
    processing_s = time.time() - t0
    settle_s, settled = await _settle(workers, opts, alive)
    say(f"  both processing after {processing_s:.0f} s, idle {settle_s:.0f} s later (settled: {settled})")
    topic = TopicNames.from_settings(run.settings).form_submits
    owned = [assigned_partitions(w.log_file, topic) for w in workers]
    victim_index = 1 if owned[1] else 0
    victim, survivor = workers[victim_index], workers[1 - victim_index]
    victim_parts = sorted(owned[victim_index]) or sorted(set(parts) - owned[1 - victim_index])
    if not victim_parts:
        raise HarnessError(f"failover: no partition assignment found in {victim.log_file}")
    for worker in workers:
        worker.sample()
    victim_rss = victim.peak_rss_kib
    pid = victim.pid
    assert pid is not None
    kill_ms = int(time.time() * 1000)
    os.killpg(pid, signal.SIGKILL)
    victim.process.wait_for_exit(10)
    say(f"  killed {victim.log_file.stem} (pid {pid}, partitions {victim_parts}) with SIGKILL")
    alive = alive_check(survivor)
    first = await wait_until(
        lambda: prober.first_output(kill_ms, victim_parts), opts.phase_timeout_s, alive, "failover: a probe's output"
    )

    def all_back() -> int | None:
        got = prober.first_per_partition(kill_ms, victim_parts)
        return max(got.values()) if len(got) == len(victim_parts) else None

    last = await wait_until(all_back, opts.phase_timeout_s, alive, "failover: every partition's output")
    prober.targets = []
    after_kill = log_marks(
        survivor.log_file, kill_ms / 1000, {"reassigned": ASSIGNED, "restore_done": RESTORE_DONE, "ready": WORKER_READY}
    )
    sample = next((s for s in run.samples[2:] if s["partition"] in victim_parts), None)
    check = await prober.check_state(sample, 120, alive) if sample else None
    survivor.sample()
    result = {
        "failover_s": round((first - kill_ms) / 1000, 2),
        "all_victim_partitions_s": round((last - kill_ms) / 1000, 2),
        "victim_partitions": victim_parts,
        "session_timeout_s": run.settings.broker_session_timeout_s,
        "survivor_log_after_kill_s": after_kill,
        "both_processing_after_start_s": round(processing_s, 1),
        "standby_settle_s": round(settle_s, 1),
        "standbys_settled": settled,
        "settle_rule": f"both workers below {opts.idle_cpu_share:.0%} of a core over 5 s",
        "victim_peak_rss_mib": round(victim_rss / 1024, 1) if victim_rss else None,
        "survivor_peak_rss_mib": round((survivor.peak_rss_kib or 0) / 1024, 1),
        "state_check": check,
        "logs": [str(w.log_file) for w in workers],
    }
    say(
        f"failover: processing again {result['failover_s']:.1f} s after the kill "
        f"(all its partitions: {result['all_victim_partitions_s']:.1f} s)"
    )
    return result


async def _settle(workers: list[WorkerProcess], opts: RecoveryOptions, alive) -> tuple[float, bool]:
    """Until every worker uses less than ``idle_cpu_share`` of a core over 5 s (standbys read)."""
    started = time.monotonic()
    while time.monotonic() - started < opts.settle_timeout_s:
        before = [read_cpu_seconds(w.pid or -1) or 0.0 for w in workers]
        await asyncio.sleep(5.0)
        alive()
        used = [(read_cpu_seconds(w.pid or -1) or 0.0) - b for w, b in zip(workers, before, strict=True)]
        if all(u < opts.idle_cpu_share * 5.0 for u in used):
            return time.monotonic() - started, True
    return time.monotonic() - started, False


def phase_line(label: str, phase: dict[str, Any]) -> str:
    check = phase["state_check"]
    return (
        f"{label}: processing {phase['to_processing_s']:.1f} s after start (Worker ready logged at "
        f"{phase['worker_ready_logged_s']} s), peak RSS {phase['peak_rss_mib_after_recovery']} MiB, "
        f"pre-filled state {'recovered' if check['ok'] else 'NOT recovered'}"
    )
