"""The figures of a run: latency percentiles, pipeline / pass-through ratios against the goal,
pipeline / Quix Streams peer, issue 14's goals, PLAINTEXT vs SASL_SSL, where it ran, and the
summary table's rows and the floor lines `leadflow bench` prints."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from leadflow.bench.goals import Goal, evaluate_goals
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


def add_quix_ratio(results: dict[str, Any]) -> None:
    """Pipeline / Quix Streams peer, per wall second (``pipeline_over_quix``) and per CPU-second
    (process start included on both sides); None when the peer did not run."""
    quix, pl = results.get("quix_peer") or {}, results["pipeline"]
    per_s, per_cpu = quix.get("events_per_s"), quix.get("events_per_worker_cpu_s")
    pl_cpu = pl.get("events_per_worker_cpu_s")
    results["pipeline_over_quix"] = round(pl["events_per_s"] / per_s, 4) if per_s else None
    results["pipeline_over_quix_per_cpu_s"] = round(pl_cpu / per_cpu, 4) if per_cpu and pl_cpu else None


# Issue 14's goals for one worker on this machine. A latency goal's figure exists when a
# ``--goal-rates`` phase ran at its rate (``goal_figures``).
PIPELINE_GOALS = (
    Goal("pipeline_events_per_s", "pipeline throughput", 2500.0, "events/s", ">="),
    Goal("pipeline_over_faust_pct", "pipeline / Faust minimal agent", 40.0, "%", ">="),
    Goal("worker_cpu_us_per_event", "worker CPU per input event", 400.0, "µs"),
    Goal("p99_event_to_assignment_ms_at_1000", "p99 event→assignment at 1,000 events/s", 100.0, "ms"),
    Goal("p99_event_to_assignment_ms_at_200", "p99 event→assignment at 200 events/s", 50.0, "ms"),
)


def goal_figures(results: dict[str, Any]) -> dict[str, float | None]:
    """The figures ``PIPELINE_GOALS`` name, from a run's results (None: not measured)."""
    pl = results["pipeline"]
    faust = ((results.get("faust_passthrough") or {}).get("faust") or {}).get("events_per_s")
    cpu_s = pl.get("worker_cpu_s")
    figures: dict[str, float | None] = {
        "pipeline_events_per_s": pl["events_per_s"],
        "pipeline_over_faust_pct": round(100 * pl["events_per_s"] / faust, 1) if faust else None,
        # Worker CPU-seconds of the throughput phase only (the latency phases idle in between).
        "worker_cpu_us_per_event": round(cpu_s * 1e6 / pl["events"], 1) if cpu_s else None,
    }
    for phase in results.get("goal_latency") or []:
        key = f"p99_event_to_assignment_ms_at_{phase['rate_events_per_s']:g}"
        figures[key] = _p99_with_missing(phase["event_to_assignment"], phase["missing_outputs"]["assignment"], phase)
    return figures


def _p99_with_missing(block: dict[str, Any], missing: int, phase: dict[str, Any]) -> float | None:
    """The p99 of the outputs seen, unless more than 1 % never came: those took longer than the
    phase waited after its last event, so the true p99 is at least that wait (a lower bound,
    never a flattering figure of the outputs that happened to come)."""
    seen = block.get("count") or 0
    if seen + missing == 0:
        return None
    if missing / (seen + missing) > 0.01:
        return max(block.get("p99_ms") or 0.0, 1000.0 * phase.get("output_wait_s", 0.0))
    return block.get("p99_ms")


def add_goals(results: dict[str, Any]) -> None:
    results["goal_figures"] = goal_figures(results)
    results["goals"] = evaluate_goals(PIPELINE_GOALS, results["goal_figures"])


def goal_latency_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) per ``--goal-rates`` phase: the load it got, its percentiles and the
    outputs it was still missing when it ended (their delays are not in the percentiles)."""
    rows = []
    for phase in results.get("goal_latency") or []:
        missing = phase["missing_outputs"]
        load = f"at {phase['rate_events_per_s']:,.0f} events/s (achieved {phase['achieved_rate']:,.0f})"
        for key, what in (("event_to_scored", "lead_scored"), ("event_to_assignment", "assignment")):
            rows.append((f"event→{what} {load}", f"{_ms(phase[key])}, {missing[what]:,} missing"))
    return rows


def _ms(block: dict | None) -> str:
    if not block or not block.get("count"):
        return "n/a (no outputs)"
    return f"{block['p50_ms']:.0f} / {block['p95_ms']:.0f} / {block['p99_ms']:.0f} ms (n={block['count']})"


def floor_lines(results: dict[str, Any]) -> list[str]:
    """The lines under the summary table: the Faust floors and the Quix Streams peer, events/s
    and per CPU-second, and the pipeline's ratio to the peer."""
    lines = []
    for block in (results.get("faust_passthrough") or {}).values():
        label = "Faust minimal agent" + (" + table write" if block["stateful"] else "")
        lines.append(
            f"{label:<36} {block['events_per_s']:>9,.0f} events/s  {block['events_per_worker_cpu_s'] or 0:>9,.0f} per CPU-s"
        )
    quix = results.get("quix_peer") or {}
    if quix.get("skipped"):
        lines.append(f"{'Quix Streams peer':<36} skipped: {quix['skipped']}")
    elif quix:
        ratio, per_cpu = results.get("pipeline_over_quix"), results.get("pipeline_over_quix_per_cpu_s")
        lines.append(
            f"{'Quix Streams peer (capture + scoring)':<36} {quix['events_per_s'] or 0:>9,.0f} events/s  "
            f"{quix['events_per_worker_cpu_s'] or 0:>9,.0f} per CPU-s  "
            f"pipeline / Quix: {f'{ratio:.1%}' if ratio else 'n/a'} ({f'{per_cpu:.1%}' if per_cpu else 'n/a'} per CPU-s)"
        )
    return lines


def security_comparison(plain: dict[str, Any], secure: dict[str, Any]) -> dict[str, Any]:
    """PLAINTEXT vs SASL_SSL, same events, same broker, same run."""

    def figures(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "passthrough_events_per_s": r["passthrough"]["events_per_s_median"],
            "pipeline_events_per_s": r["pipeline"].get("events_per_s"),
            "pipeline_events_per_worker_cpu_s": r["pipeline"].get("events_per_worker_cpu_s"),
            "quix_peer_events_per_s": (r.get("quix_peer") or {}).get("events_per_s"),
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
        ("event→lead_scored p50/p95/p99", "", _ms(lat.get("event_to_scored"))),
        ("event→MQL p50/p95/p99", "", _ms(lat.get("event_to_mql"))),
        ("event→assignment p50/p95/p99", "", _ms(lat.get("event_to_assignment"))),
        ("latency load", "", f"{lat.get('rate_events_per_s', 0):,.0f} events/s for {lat.get('events', 0):,} events"),
        ("worker peak RSS", "", f"{pl.get('worker_peak_rss_mib_overall', pl.get('worker_peak_rss_mib'))} MiB"),
        (
            "machine busy during run",
            f"{pt['runs'][0]['load']['machine_busy_pct']}%",
            f"{pl['load']['machine_busy_pct']}% (others {pl['load']['other_processes_cpu_s']} CPU-s)",
        ),
    ]
