"""`leadflow bench`: a click command listed by the main group (``leadflow.cli.main``); this module
does not import ``leadflow.cli``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from leadflow.bench.options import DEFAULT_GOAL_RATES, parse_rates
from leadflow.cli_context import settings_from as _settings
from leadflow.cli_feedback import friendly_errors, progress_display, quiet_clients


def _goal_rates(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
    try:
        return parse_rates(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.command(short_help="Pipeline vs raw pass-through: events/s, latency.")
@click.option(
    "--events",
    type=click.IntRange(min=1000),
    default=50_000,
    show_default=True,
    help="Messages for each measurement (the same bytes in both).",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--passthrough-runs", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--latency-seconds", type=click.FloatRange(min=1), default=15.0, show_default=True)
@click.option(
    "--latency-rate",
    type=click.FloatRange(min=1),
    help="Events/s for the latency phase (default: half the measured throughput).",
)
@click.option(
    "--goal-rates",
    default=",".join(f"{rate:g}" for rate in DEFAULT_GOAL_RATES),
    show_default=True,
    callback=_goal_rates,
    help="One more live latency phase per rate (events/s, comma-separated, lowest first), each "
    "--latency-seconds long, for the goals at fixed loads; '' for none.",
)
@click.option("--no-faust-floor", is_flag=True, help="Skip the minimal-Faust-agent measurements.")
@click.option(
    "--no-quix-peer",
    is_flag=True,
    help="Skip the Quix Streams peer (leadflow's capture + scoring rules on Quix; needs the bench extra).",
)
@click.option(
    "--profile", type=click.Choice(["pyinstrument", "cprofile"]), help="Profile the worker; report next to the results."
)
@click.option(
    "--faust", "faust_json", help="Prototype: extra faust.App settings as JSON, e.g. '{\"producer_linger_ms\": 10}'."
)
@click.option(
    "--patch",
    "patches",
    multiple=True,
    help="Prototype: a named code patch (see leadflow.bench.patches.PATCHES); repeatable.",
)
@click.option(
    "--output",
    "results_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the JSON results (default .leadflow/bench).",
)
@click.option("--no-stack", is_flag=True, help="Do not start Kafka/Redis; use the configured ones.")
@click.option("--keep-stack", is_flag=True, help="Leave Kafka/Redis running if bench started them.")
@click.option("--keep-topics", is_flag=True)
@click.option(
    "--sasl-ssl",
    "compare_sasl_ssl",
    is_flag=True,
    help="Also run everything through the local stack's SASL_SSL listener (SCRAM + TLS): "
    "PLAINTEXT vs SASL_SSL in one run.",
)
@click.pass_context
@friendly_errors
def bench(
    ctx: click.Context,
    events,
    seed,
    passthrough_runs,
    latency_seconds,
    latency_rate,
    goal_rates,
    no_faust_floor,
    no_quix_peer,
    profile,
    faust_json,
    patches,
    results_dir,
    no_stack,
    keep_stack,
    keep_topics,
    compare_sasl_ssl,
) -> None:
    """Measure, on the same broker with the same messages: (a) raw aiokafka consume->produce
    pass-through, the ceiling for any Python pipeline here; (a2) the smallest Faust agent,
    Faust's own ceiling; (a3) leadflow's capture + scoring rules on Quix Streams (the bench
    extra), the same work without Faust; (b) the full leadflow pipeline on simulator traffic (events/s, worker
    peak RSS) and, live at half that rate, p50/p95/p99 event->lead_scored / MQL / assignment
    latency, then the same at each --goal-rates load. Reports the ratio (b)/(a) against the 25%
    goal and each of issue 14's goals, met or not; writes JSON and prints the tables."""
    from rich.console import Console
    from rich.table import Table

    from leadflow.bench.goals import goal_rows
    from leadflow.bench.options import BenchOptions
    from leadflow.bench.patches import PATCHES
    from leadflow.bench.results import PIPELINE_GOALS, floor_lines, goal_latency_rows, summary_rows
    from leadflow.bench.run import run_bench

    unknown = [p for p in patches if p not in PATCHES]
    if unknown:
        raise click.BadParameter(f"unknown patch {unknown[0]!r}; known: {', '.join(PATCHES)}", param_hint="--patch")
    try:
        faust_overrides = json.loads(faust_json) if faust_json else {}
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--faust") from None
    quiet_clients()
    settings = _settings(ctx)
    console = Console()
    opts = BenchOptions(
        events=events,
        seed=seed,
        passthrough_runs=passthrough_runs,
        latency_seconds=latency_seconds,
        latency_rate=latency_rate,
        goal_rates=goal_rates,
        profile=profile,
        faust_overrides=faust_overrides,
        patches=list(patches),
        keep_topics=keep_topics,
        faust_floor=not no_faust_floor,
        quix_peer=not no_quix_peer,
        compare_sasl_ssl=compare_sasl_ssl,
    )
    if results_dir is not None:
        opts.results_dir = results_dir
    with progress_display(console) as progress:
        tasks: dict[str, int] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total, rate="")
            progress.update(tasks[phase], completed=done, total=total)

        results = run_bench(
            settings,
            opts,
            manage_stack=not no_stack,
            keep_stack=keep_stack,
            progress=on_progress,
            say=lambda m: progress.console.print(f"[dim]·[/] {m}", highlight=False),
        )
    table = Table(title="leadflow bench", show_lines=False)
    for column in ("measure", "raw aiokafka pass-through", "leadflow pipeline"):
        table.add_column(column)
    for row in summary_rows(results):
        table.add_row(*row)
    console.print(table)
    for line in floor_lines(results):
        console.print(line, highlight=False)
    goals = Table(title="issue 14 goals (one worker, this machine)")
    for column in ("goal", "limit", "measured", "met"):
        goals.add_column(column)
    for goal_row in goal_rows(PIPELINE_GOALS, results["goals"]):
        goals.add_row(*goal_row, style="red" if goal_row[3] == "NOT MET" else None)
    for label, value in goal_latency_rows(results):
        goals.add_row(label, "", value, "")
    console.print(goals)
    if results.get("profile"):
        console.print(f"worker profile: {results['profile']}")
    if results.get("security_comparison"):
        cmp = results["security_comparison"]
        for key, label in (
            ("passthrough_events_per_s", "raw pass-through events/s"),
            ("quix_peer_events_per_s", "Quix Streams peer events/s"),
            ("pipeline_events_per_s", "pipeline events/s"),
        ):
            a, b, r = cmp["plaintext"][key], cmp["sasl_ssl"][key], cmp["sasl_ssl_over_plaintext"][key]
            console.print(
                f"{label:<28} PLAINTEXT {a or 0:>9,.0f}   SASL_SSL {b or 0:>9,.0f}   ({(r or 0):.0%} of PLAINTEXT)"
            )
    verdict = "meets" if results["meets_goal"] else "is below"
    console.print(
        f"pipeline / pass-through = [b]{results['ratio']:.1%}[/]: {verdict} the {results['goal_ratio']:.0%} goal. "
        f"Results: {results['results_file']}"
    )
