#!/usr/bin/env python3
"""`make chaos`: the same seeded workload under injected faults, each run compared with an
uninterrupted baseline run of the same inputs.

Scenarios (each a fresh topic prefix, app id and Redis key prefix on one Kafka + Redis that
this script starts on its own ports): baseline; control (the baseline again); worker kill -9 five times (restarted at once);
broker stopped 10 s; Redis down 30 s; two workers with standby replicas, one killed -9; broker
stopped 60 s with the worker's CPU measured. Per scenario: MQLs lost/extra, assignments
missing/duplicated, final stage and score divergence, duplicate SLA breaches, time to recover,
orphan processes. Exit code 1 when any scenario lost or diverged. Method and latest results:
docs/reliability.md (this script rewrites its results block).

    .venv/bin/python scripts/chaos.py [--events 12000] [--only kill9,redis] [--redis-outage 10]

Holds Kafka and Redis for its whole run: on a shared machine run it under the team's lock
(`flock /tmp/leadflow-kafka.lock ...`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from leadflow.chaos.compare import compare  # noqa: E402
from leadflow.chaos.report import line, markdown_table, results_block, summary_line, update_doc  # noqa: E402
from leadflow.chaos.runner import ChaosOptions, ScenarioRun, scenarios  # noqa: E402
from leadflow.chaos.workload import build_workload  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=12_000, help="input events per run (default 12000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="business time runs this much faster: workload, SLAs and reps (as leadflow demo)",
    )
    p.add_argument(
        "--arrival-every",
        type=float,
        default=3.0,
        help="business seconds between new visitors (sets the event rate; 3.0 at x60: ~90 events/s)",
    )
    p.add_argument("--bad-share", type=float, default=0.003, help="share of deliberately bad events")
    p.add_argument("--only", help="comma-separated scenarios besides the baseline (default: all)")
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--broker-outage", type=float, default=10.0, help="seconds (scenario broker)")
    p.add_argument("--long-outage", type=float, default=60.0, help="seconds (scenario broker-long)")
    p.add_argument("--redis-outage", type=float, default=30.0, help="seconds (scenario redis)")
    p.add_argument(
        "--settle",
        type=float,
        default=15.0,
        help="seconds after the group drained before reading outputs (at least the reorder window + 2 sweep buckets + 5 s)",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=180.0,
        help="seconds after the last event for the group to commit every input (default 180)",
    )
    p.add_argument("--score-tolerance", type=float, default=0.01, help="points (final lead score)")
    p.add_argument("--kafka-port", type=int, default=29800, help="the controller uses the next port")
    p.add_argument("--redis-port", type=int, default=29850)
    p.add_argument("--out", type=Path, default=REPO / ".leadflow" / "chaos", help="JSON + markdown results here")
    p.add_argument(
        "--doc",
        type=Path,
        default=REPO / "docs" / "reliability.md",
        help="document whose results block is rewritten ('' = none)",
    )
    args = p.parse_args(argv)
    args.out = args.out.resolve()
    if args.events < 100:
        p.error("--events must be at least 100")
    for name in ("broker_outage", "long_outage", "redis_outage", "speed", "arrival_every", "settle", "drain_timeout"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    known = {s.name for s in scenarios(ChaosOptions())} - {"baseline"}
    args.only_set = set(args.only.split(",")) if args.only else known
    if unknown := args.only_set - known:
        p.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    return args


def code_state() -> str:
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    diff = git("diff", "--stat").splitlines()
    return f"{git('rev-parse', '--short', 'HEAD')} + {diff[-1].strip() if diff else 'no local changes'}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # aiokafka logs every reconnect attempt while a broker is away: the scenarios expect that.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    from leadflow.demo.compressed_time import write_compressed_configs
    from leadflow.devstack import DevStack
    from streams.settings import REPO_ROOT, load_settings

    opts = ChaosOptions(
        kills=args.kills,
        broker_outage_s=args.broker_outage,
        long_outage_s=args.long_outage,
        redis_outage_s=args.redis_outage,
        settle_s=args.settle,
        score_tolerance=args.score_tolerance,
        drain_timeout_s=args.drain_timeout,
    )
    workload = build_workload(
        args.seed, args.events, speed=args.speed, arrival_every_s=args.arrival_every, bad_share=args.bad_share
    )
    say = lambda message: print(message, flush=True)  # noqa: E731
    say(
        f"workload: {len(workload.events)} events over {workload.span_s:.0f} s ({workload.rate:.0f}/s), "
        f"fingerprint {workload.fingerprint()}"
    )
    started = time.time()
    meta = {
        "events": len(workload.events),
        "seed": args.seed,
        "fingerprint": workload.fingerprint(),
        "rate": workload.rate,
        "span_s": workload.span_s,
        "speed": args.speed,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "code_state": code_state(),
        "score_tolerance": args.score_tolerance,
        "options": {k: v for k, v in opts.__dict__.items()},
    }
    reports = []
    workdir = args.out / "work"  # worker logs stay here after the run; Kafka and Redis data do not
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    base = load_settings(
        stack_dir=workdir,
        kafka_port=args.kafka_port,
        kafka_controller_port=args.kafka_port + 1,
        kafka_bootstrap=f"127.0.0.1:{args.kafka_port}",
        redis_port=args.redis_port,
        redis_url=f"redis://127.0.0.1:{args.redis_port}/0",
    )
    configs = write_compressed_configs(base, workdir, args.speed)
    stack = DevStack.from_settings(base, tie_to_parent=True, jar_cache_dir=REPO_ROOT / ".leadflow" / "kafka")
    say(f"stack: {stack.up().summary()}")
    try:
        baseline_run, threshold = None, None
        for scenario in scenarios(opts):
            if scenario.name != "baseline" and scenario.name not in args.only_set:
                continue
            run = ScenarioRun(scenario, base, configs, stack, workload, opts, workdir, say)
            report = asyncio.run(run.run(threshold))
            if scenario.name == "baseline":
                baseline_run, threshold = run, run.lag_threshold()
                say(f"baseline lag threshold for 'recovered': {threshold} records")
            elif baseline_run is not None and report.error is None:
                report.divergence = compare(
                    baseline_run.outputs,
                    run.outputs,
                    score_tolerance=opts.score_tolerance,
                    breach_guard_s=opts.breach_guard_s,
                )
            reports.append(report)
            say(line(report))
            if scenario.name == "baseline" and report.failures():
                say("the baseline itself failed: nothing to compare with")
                break
    finally:
        stack.down()
    leftovers = _stack_orphans(workdir)
    for data in (*workdir.glob("kafka-data-*"), *workdir.glob("redis-data-*")):
        shutil.rmtree(data, ignore_errors=True)
    meta["wall_min"] = (time.time() - started) / 60
    meta["stack_orphans"] = leftovers
    summary = summary_line(reports, meta)
    say(summary)
    if leftovers:
        say(f"stack processes left behind: {leftovers}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps(
            {"meta": meta, "summary": summary, "scenarios": [r.to_dict() for r in reports]}, indent=2, default=str
        )
    )
    (args.out / "results.md").write_text(markdown_table(reports) + "\n\n" + summary + "\n")
    if str(args.doc) not in ("", "."):
        update_doc(args.doc, results_block(reports, meta))
    say(
        f"results: {args.out / 'results.json'}, {args.out / 'results.md'}"
        + (f", {args.doc}" if str(args.doc) not in ("", ".") else "")
    )
    return 1 if leftovers or any(r.failures() for r in reports) else 0


def _stack_orphans(workdir: Path) -> list[str]:
    """Kafka or Redis processes still running from this suite's directory."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(workdir) in cmdline:
            found.append(f"{proc.pid} {cmdline[:80]}")
    return found


if __name__ == "__main__":
    sys.exit(main())
