"""The figures of a run: latency percentiles, pipeline / pass-through ratios against the goal,
PLAINTEXT vs SASL_SSL, where it ran, and the rows of the summary table `leadflow bench` prints."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from leadflow.bench.options import GOAL_RATIO, BenchOptions
from leadflow.simulator.harness import percentile
from streams.settings import Settings


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    return {
        "count": len(values),
        "p50_ms": _r(percentile(values, 50)),
        "p95_ms": _r(percentile(values, 95)),
        "p99_ms": _r(percentile(values, 99)),
        "max_ms": _r(max(values) if values else None),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def add_goal_ratios(results: dict[str, Any]) -> None:
    """Pipeline / pass-through, per wall second (``ratio``) and per CPU-second, against the goal."""
    pt = results["passthrough"]["events_per_s_median"]
    results["ratio"] = round(results["pipeline"]["events_per_s"] / pt, 4) if pt else None
    pt_cpu = results["passthrough"]["events_per_cpu_s_median"]
    pl_cpu = results["pipeline"].get("events_per_worker_cpu_s")
    results["ratio_per_cpu_s"] = round(pl_cpu / pt_cpu, 4) if pt_cpu and pl_cpu else None
    results["goal_ratio"] = GOAL_RATIO
    results["meets_goal"] = bool(results["ratio"] and results["ratio"] >= GOAL_RATIO)


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


def environment(settings: Settings, opts: BenchOptions, started: float) -> dict[str, Any]:
    """Where and how the run ran (``started``: its ``time.time()`` at the start)."""
    return {
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
