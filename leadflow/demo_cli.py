"""`leadflow demo`: a click command listed by the main group (``leadflow.cli.main``); this module
does not import ``leadflow.cli``."""

from __future__ import annotations

import click

from leadflow.cli_context import settings_from as _settings
from leadflow.cli_feedback import friendly_errors, persona_mix, quiet_clients


@click.command(short_help="Stack + worker + simulated traffic, shown live.")
@click.option(
    "--rate", type=click.FloatRange(min=0.1), default=20.0, show_default=True, help="Input events per second."
)
@click.option("--seed", type=int, help="Traffic seed (default: random, printed so a run can be repeated).")
@click.option(
    "--speed",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Business time runs this many times faster: SLAs, escalations and reps' delays are divided by it "
    "(60: a 10-minute P1 SLA lasts 10 s).",
)
@click.option("--duration", type=click.FloatRange(min=1), help="Stop after this many seconds (default: Ctrl-C).")
@click.option("--mix", help="Persona weights, e.g. 'enterprise_buyer=3,bot=1' (others 0). Default: a realistic mix.")
@click.option(
    "--bad-share",
    type=click.FloatRange(0, 0.5),
    default=0.003,
    show_default=True,
    help="Share of deliberately bad events (they go to the dead-letter topic).",
)
@click.option(
    "--rep-timing",
    type=click.Choice(["demo", "realistic"]),
    default="demo",
    show_default=True,
    help="Simulated reps after the first touch: 'demo' decides, makes SQLs and converts within the "
    "business hour (every outcome in the first minute at 60x); 'realistic' takes hours to days.",
)
@click.option("--no-stack", is_flag=True, help="Do not start Kafka/Redis; use the configured ones.")
@click.option("--keep-stack", is_flag=True, help="Leave Kafka/Redis running on exit (if the demo started them).")
@click.option("--keep-topics", is_flag=True, help="Keep this run's topics (demo-HHMMSS.*) for `leadflow tail`.")
@click.option(
    "--plain", is_flag=True, help="Line-by-line output instead of the live view (automatic without a terminal)."
)
@click.pass_context
@friendly_errors
def demo(
    ctx: click.Context,
    rate,
    seed,
    speed,
    duration,
    mix,
    bad_share,
    rep_timing,
    no_stack,
    keep_stack,
    keep_topics,
    plain,
) -> None:
    """Start the local stack and a worker, run the traffic simulator, and watch leads flow:
    MQLs, assignments (owner and reason), SLA breaches and dispositions, with live figures
    (events/s, event->MQL and event->assignment latency, speed-to-lead p50/p95, SLA compliance)
    and the metrics URL.

    Each run gets its own topics, app id and Redis keys (demo-HHMMSS) and compressed-time
    copies of the routing and SLA files. Ctrl-C stops everything it started; nothing is left
    running."""
    from rich.console import Console

    from leadflow.demo.options import DemoOptions
    from leadflow.demo.run import run_demo

    quiet_clients()
    settings = _settings(ctx)
    console = Console()
    opts = DemoOptions(
        rate=rate,
        seed=seed,
        speed=speed,
        duration=duration,
        mix=persona_mix(mix),
        bad_share=bad_share,
        rep_timing=rep_timing,
        manage_stack=not no_stack,
        keep_stack=keep_stack,
        keep_topics=keep_topics,
        plain=plain,
    )
    summary = run_demo(settings, opts, console=console, say=lambda m: console.print(f"[dim]·[/] {m}", highlight=False))
    console.print(_demo_summary_table(summary))
    if summary.get("worker_left_running"):
        raise click.ClickException("the worker did not stop; see its log")
    if keep_topics:
        console.print(f"topics kept: LEADFLOW_TOPIC_PREFIX={summary['run_id']} leadflow tail mqls --from-beginning")


def _demo_summary_table(s: dict):
    from rich.table import Table

    table = Table(title=f"demo {s.get('run_id')} (seed {s.get('seed')})", show_header=False, box=None)
    table.add_column(style="dim")
    table.add_column()
    if "published" not in s:
        table.add_row("result", "the demo did not get to publish (see above)")
        return table

    def ms(block: dict) -> str:
        return "-" if block["p50"] is None else f"p50 {block['p50']:.0f} ms, p95 {block['p95']:.0f} ms"

    stl = s["speed_to_lead_business_min"]
    rows = [
        ("ran", f"{s['seconds']} s: {s['published']:,} events published, {s.get('crm_events', 0):,} CRM updates"),
        (
            "pipeline",
            f"{s.get('scored', 0):,} scored, {s.get('mqls', 0)} MQLs, {s.get('assignments', 0)} assignments, "
            f"{s.get('sla_breaches', 0)} SLA breaches, {s.get('dispositions', 0)} dispositions, "
            f"{s.get('data_quality', 0)} data-quality issues, {s.get('dead_letters', 0)} dead letters",
        ),
        ("event→MQL", ms(s["event_to_mql_ms"])),
        (
            "event→assignment",
            ms(s["event_to_assignment_ms"])
            if s["event_to_assignment_ms"]["p50"] is not None
            else "- (no assignments: is the routing capability running?)",
        ),
        ("speed-to-lead", "-" if stl["p50"] is None else f"p50 {stl['p50']} min, p95 {stl['p95']} min (business time)"),
        ("SLA compliance", f"{s['sla_on_time']}/{s['sla_due']} touched in time" if s["sla_due"] else "none due"),
        ("worker peak RSS", f"{s.get('worker_peak_rss_mib')} MiB"),
    ]
    for row in rows:
        table.add_row(*row)
    for note in s.get("notes") or []:
        table.add_row("note", note)
    return table
