"""The demo's run: the stack, the run's own settings and roster, its worker, and cleaning up."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from leadflow.demo.compressed_time import write_compressed_configs
from leadflow.demo.options import DemoOptions
from leadflow.demo.traffic import Demo
from leadflow.demo.views import LiveView, PlainView
from leadflow.simulator.harness import StackSession, WorkerProcess, forget_redis_keys, settings_env, wait_for_group
from streams.connections import kafka_client_kwargs
from streams.settings import Settings

log = logging.getLogger(__name__)


def demo_settings(base: Settings, run_id: str, run_dir: Path, configs: dict[str, Path]) -> Settings:
    data = base.model_dump()
    data.update(
        topic_prefix=run_id,
        app_id=run_id,
        redis_key_prefix=run_id,
        data_dir=run_dir / "data",
        sweep_bucket_s=1,
        sweep_interval_s=0.5,
        **configs,
    )
    return Settings(**data)


def load_roster(settings: Settings, run_dir: Path) -> str:
    """Load config's roster into this run's Redis prefix, through the routing capability's own
    ``roster load`` command; a readable note of what happened (never raises)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if not Path(settings.roster_path).exists():
        return f"no roster file at {settings.roster_path}: routing uses its fallback owner"
    code = (
        "import sys\nfrom leadflow.roster_cli import roster\n"
        "roster.main(['load', sys.argv[1]], prog_name='leadflow roster', standalone_mode=True)"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(settings.roster_path)],
            env=settings_env(settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"roster not loaded ({exc}); routing uses its fallback owner"
    (run_dir / "roster-load.log").write_text(done.stdout + done.stderr)
    if done.returncode == 0:
        return f"roster {Path(settings.roster_path).name} loaded"
    if "No module named 'leadflow.roster_cli'" in done.stderr:
        return "routing capability not installed: no roster loaded"
    last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["?"]
    return f"roster not loaded ({last[0]}); see {run_dir / 'roster-load.log'}"


def run_demo(base: Settings, opts: DemoOptions, *, console=None, say=print) -> dict[str, Any]:
    """Run the demo until ``opts.duration`` or Ctrl-C; returns the final summary."""
    from rich.console import Console

    console = console or Console()
    opts.plain = opts.plain or not console.is_terminal
    run_id = time.strftime("demo-%H%M%S")
    run_dir = Path(base.stack_dir) / "demo" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    configs = write_compressed_configs(base, run_dir, opts.speed)
    settings = demo_settings(base, run_id, run_dir, configs)
    summary: dict[str, Any] = {"run_id": run_id}
    with StackSession(settings, manage=opts.manage_stack, keep=opts.keep_stack) as stack:
        say(stack.describe())
        worker = WorkerProcess(settings, run_dir, module=opts.worker_module, extra_env=opts.worker_env)
        demo = None
        try:
            say(load_roster(settings, run_dir))
            for setting, path in configs.items():
                say(f"{setting.replace('_path', '').replace('_', ' ')}: SLAs ÷{opts.speed:g} → {path}")
            worker.start()
            say(f"worker pid {worker.pid} starting (log {worker.log_file})")
            with console.status("waiting for the worker to join its consumer group ..."):
                waited = asyncio.run(
                    wait_for_group(kafka_client_kwargs(settings), settings.app_id, timeout=120, worker=worker)
                )
            say(f"worker ready after {waited:.1f}s")
            demo = Demo(settings, opts, run_id=run_id, run_dir=run_dir, console=console)
            demo.worker, demo.state.worker_pid = worker, worker.pid
            say(
                f"seed {demo.seed}: publishing {opts.rate:g} events/s"
                + (f" for {opts.duration:g}s" if opts.duration else " - Ctrl-C to stop")
            )
            asyncio.run(demo.run(LiveView(demo) if not opts.plain else PlainView(demo)))
        finally:
            # Ctrl-C again while cleaning up must not leave the worker or the stack behind.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                say("stopping the worker ...")
                worker.stop(timeout=20)
                if not opts.keep_topics:
                    try:
                        asyncio.run(delete_run_topics(settings))
                    except Exception as exc:  # noqa: BLE001 - the broker may be gone already
                        log.warning("could not delete the demo's topics: %s", exc)
                shutil.rmtree(settings.data_dir, ignore_errors=True)
                forget_redis_keys(settings)
                if stack.started and not opts.keep_stack:
                    say(f"stopping {' + '.join(stack.started)} ...")
            finally:
                signal.signal(signal.SIGINT, previous)
        if demo is not None:
            summary.update(
                demo.state.summary(),
                seed=demo.seed,
                notes=demo.state.notes,
                worker_peak_rss_mib=round((worker.peak_rss_kib or 0) / 1024, 1),
            )
    summary["topics_kept"] = opts.keep_topics
    summary["worker_left_running"] = worker.alive()
    return summary


async def delete_run_topics(settings: Settings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings), request_timeout_ms=10000)
    await admin.start()
    try:
        prefix = settings.topic_prefix
        mine = [t for t in await admin.list_topics() if t.startswith(prefix + ".") or t.startswith(prefix + "-")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
