"""What one `leadflow bench` run is asked to do (``BenchOptions``), the goal it is held to, and
the settings its worker runs with (its own topic prefix, app id, data dir)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.settings import REPO_ROOT, Settings

GOAL_RATIO = 0.25
DEFAULT_GOAL_RATES = (200.0, 1000.0)
DEFAULT_RESULTS_DIR = REPO_ROOT / ".leadflow" / "bench"


@dataclass
class BenchOptions:
    events: int = 50_000
    seed: int = 7
    passthrough_runs: int = 3
    latency_seconds: float = 15.0
    latency_rate: float | None = None  # events/s; None = latency_fraction x pipeline throughput
    latency_fraction: float = 0.5
    # One more live phase per rate (events/s), after the one above, lowest first: issue 14's
    # latency goals are held at fixed loads (see ``leadflow.bench.results.PIPELINE_GOALS``).
    goal_rates: tuple[float, ...] = DEFAULT_GOAL_RATES
    output_wait_s: float = 30.0  # a live phase waits at most this long for outputs once publishing stops
    faust_floor: bool = True  # also measure the smallest Faust agents (Faust's own ceiling)
    quix_peer: bool = True  # also run capture + scoring on Quix Streams (skipped if not installed)
    profile: str | None = None  # None | "pyinstrument" | "cprofile"
    worker_env: dict[str, str] = field(default_factory=dict)  # extra LEADFLOW_* for the worker
    # Prototyping (see leadflow.bench.worker): extra faust.App settings and named code patches.
    faust_overrides: dict[str, Any] = field(default_factory=dict)
    patches: list[str] = field(default_factory=list)
    keep_topics: bool = False
    results_dir: Path = DEFAULT_RESULTS_DIR
    drain_timeout_s: float = 600.0
    # Also run every measurement through the stack's SASL_SSL listener (SCRAM-SHA-512 + TLS),
    # in the same run, to put a number on what production security costs.
    compare_sasl_ssl: bool = False


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def no_progress(phase: str, done: int, total: int) -> None:
    return None


def parse_rates(text: str) -> tuple[float, ...]:
    """Comma-separated events/s, e.g. "200,1000" (each > 0); "" is none. ValueError otherwise."""
    if not text.strip():
        return ()
    rates = []
    for part in (p.strip() for p in text.split(",")):
        try:
            rate = float(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a number of events/s") from None
        if not 0 < rate < float("inf"):
            raise ValueError(f"{part!r}: a rate must be a positive number of events/s")
        rates.append(rate)
    return tuple(rates)


def bench_settings(base: Settings, run_id: str, **overrides: Any) -> Settings:
    """The worker's own topic prefix, app id, data dir; metrics and lead API off (nothing calls them)."""
    data = base.model_dump()
    data.update(
        topic_prefix=run_id,
        app_id=run_id,
        redis_key_prefix=run_id,
        metrics_port=0,
        api_port=0,
        data_dir=Path(base.stack_dir) / "bench" / run_id / "data",
    )
    data.update(overrides)
    return Settings(**data)
