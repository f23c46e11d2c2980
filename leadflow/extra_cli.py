"""`leadflow demo | simulate | replay | bench`: click commands listed by the main group
(``leadflow.cli.main``); this module does not import ``leadflow.cli``."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import click

from leadflow.cli_context import settings_from as _settings
from streams.connections import kafka_client_kwargs
from streams.settings import Settings, SettingsError

# The short names of the input topics (TopicNames fields): `leadflow publish KIND`, `leadflow replay
# ROLE`, the file names of `leadflow simulate --jsonl`.
INPUT_KINDS = {"form": "form_submits", "web": "web_activity", "crm": "crm_status"}


def friendly_errors(fn):
    """Known failures become one readable line (what failed, what to try), not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from aiokafka.errors import KafkaConnectionError, KafkaError

        from leadflow.devstack import DevStackError
        from leadflow.simulator.harness import HarnessError

        try:
            return fn(*args, **kwargs)
        except (HarnessError, DevStackError, SettingsError) as exc:
            raise click.ClickException(str(exc)) from None
        except KafkaConnectionError as exc:
            settings = click.get_current_context().obj
            where = settings.kafka_bootstrap if settings is not None else "the configured broker"
            raise click.ClickException(
                f"cannot reach Kafka at {where} ({exc}). Start the local stack with `leadflow dev up` "
                "or set LEADFLOW_KAFKA_BOOTSTRAP."
            ) from None
        except KafkaError as exc:
            raise click.ClickException(f"Kafka error: {exc!r}") from None

    return wrapper


def _quiet_clients() -> None:
    # aiokafka logs retries of fresh topics' leader elections as warnings: noise here; the
    # commands print their own progress, so the stack's INFO lines would only repeat it.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    for name in ("streams.topics", "leadflow.devstack"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _mix(value: str | None) -> dict[str, float] | None:
    from leadflow.simulator.personas import parse_mix

    try:
        return parse_mix(value) if value else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _progress(console=None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


# --- demo --------------------------------------------------------------------------------------


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

    from leadflow.demo import DemoOptions, run_demo

    _quiet_clients()
    settings = _settings(ctx)
    console = Console()
    opts = DemoOptions(
        rate=rate,
        seed=seed,
        speed=speed,
        duration=duration,
        mix=_mix(mix),
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


# --- simulate ------------------------------------------------------------------------------------


@click.command(short_help="Publish realistic, seeded input traffic.")
@click.option("--rate", type=click.FloatRange(min=0.1), help="Events per second (default: as fast as possible).")
@click.option("--events", "count", type=click.IntRange(min=1), help="Stop after N events.")
@click.option("--duration", type=click.FloatRange(min=0.1), help="Stop after S seconds.")
@click.option("--seed", type=int, help="Seed (default: random, printed). The same seed gives the same events.")
@click.option("--mix", help="Persona weights, e.g. 'enterprise_buyer=3,bot=1' (others 0).")
@click.option(
    "--bad-share",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of deliberately bad events (dead letters).",
)
@click.option(
    "--inline-crm/--no-inline-crm",
    default=True,
    show_default=True,
    help="Add CRM first touches and dispositions for high-intent leads (for use without `leadflow demo`).",
)
@click.option(
    "--jsonl",
    "jsonl_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write form.jsonl / web.jsonl / crm.jsonl there instead of publishing (for `leadflow publish`).",
)
@click.pass_context
@friendly_errors
def simulate(ctx: click.Context, rate, count, duration, seed, mix, bad_share, inline_crm, jsonl_dir) -> None:
    """Publish realistic, reproducible traffic to the input topics: personas (enterprise and SMB
    buyers, students, competitors, bots, gmail researchers, existing customers) browsing,
    filling forms and opening emails; CRM reps touching and dispositioning leads."""
    from leadflow.simulator import TrafficSimulator

    _quiet_clients()
    if count is None and duration is None and jsonl_dir is None and rate is None:
        raise click.UsageError("give --events N or --duration S (or --rate R to run until Ctrl-C)")
    seed = seed if seed is not None else random.randrange(1_000_000)
    sim = TrafficSimulator(
        seed,
        start_ms=int(time.time() * 1000),
        mix=_mix(mix),
        bad_share=bad_share,
        inline_crm=inline_crm,
        lead_id_key=_settings(ctx).lead_id_key_bytes,
    )
    click.echo(f"seed {seed}", err=True)
    if jsonl_dir is not None:
        _write_jsonl(sim, jsonl_dir, count or 1000)
        return
    settings = _settings(ctx)
    from leadflow.simulator.harness import check_kafka

    check_kafka(settings)
    stats = asyncio.run(_simulate(settings, sim, rate, count, duration))
    click.echo(
        f"published {stats.sent:,} events ({stats.bytes / 1e6:.1f} MB) in {stats.elapsed_s:.1f}s = "
        f"{stats.rate:,.0f}/s: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.by_subject.items()))
        + (f"; {stats.bad} deliberately bad" if stats.bad else "")
    )


def _write_jsonl(sim, directory: Path, count: int) -> None:
    import orjson

    from streams.topic_names import INPUT_TOPIC_FIELD

    directory.mkdir(parents=True, exist_ok=True)
    kind_of = {field: kind for kind, field in INPUT_KINDS.items()}
    files = {
        subject: (directory / f"{kind_of[field]}.jsonl").open("wb") for subject, field in INPUT_TOPIC_FIELD.items()
    }
    try:
        for event in sim.take(count):
            if event.record is not None:
                files[event.subject].write(orjson.dumps(event.record) + b"\n")
    finally:
        for fh in files.values():
            fh.close()
    click.echo(
        f"wrote {count} events to {directory}/{{{','.join(INPUT_KINDS)}}}.jsonl "
        "(publish with `leadflow publish form FILE --now`)",
        err=True,
    )


async def _simulate(settings: Settings, sim, rate, count, duration):
    import signal

    from leadflow.simulator import Publisher
    from streams.app import build_codec
    from streams.topics import TopicNames, ensure_topics

    await ensure_topics(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if duration:
        loop.call_later(duration, stop.set)
    with _progress() as progress:
        task = progress.add_task("publishing", total=count, rate="")
        async with Publisher(
            kafka_client_kwargs(settings), TopicNames.from_settings(settings), build_codec(settings, register=True)
        ) as pub:

            def on_sent(event, stamped_ms):
                if pub.stats.sent % 200 == 0:
                    progress.update(task, completed=pub.stats.sent, rate=f"{pub.stats.rate:,.0f}/s")

            stats = await pub.run(sim, rate=rate, limit=count, stop=stop, on_sent=on_sent)
            progress.update(task, completed=stats.sent, rate=f"{stats.rate:,.0f}/s")
    loop.remove_signal_handler(signal.SIGINT)
    return stats


# --- replay --------------------------------------------------------------------------------------


def _topic_for(settings: Settings, role: str) -> str:
    from dataclasses import fields

    from streams.topics import TopicNames

    names = TopicNames.from_settings(settings)
    role = INPUT_KINDS.get(role, role)
    if role in {f.name for f in fields(names)}:
        return getattr(names, role)
    if "." in role:
        return role  # a full topic name
    raise click.BadParameter(
        f"unknown topic role {role!r}: use form, web, crm, a name from `leadflow topics list`, or a full topic name"
    )


def _parse_time(value: str) -> int:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time (e.g. 2026-11-22T09:30:00Z)") from None
    if at.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no time zone; add Z or +01:00")
    return int(at.astimezone(timezone.utc).timestamp() * 1000)


@click.command(short_help="Re-publish a topic from an offset or a time.")
@click.argument("topic_role")
@click.option("--from-offset", type=click.IntRange(min=0), help="Replay from this offset of every partition.")
@click.option("--from-time", help="Replay from this time (ISO-8601 with a zone), by broker timestamp.")
@click.option("--to", "to_role", help="Publish into this topic (role or full name) instead of TOPIC_ROLE itself.")
@click.option("--keep-timestamps", is_flag=True, help="Keep the original broker timestamps (default: now).")
@click.option(
    "--backfill",
    is_flag=True,
    help="Mark every record as history (header leadflow-backfill: 1): it rebuilds lead state but "
    "sends no MQL, so no assignment or SLA clock (e.g. --to a fresh deployment's topic).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@friendly_errors
def replay(ctx: click.Context, topic_role, from_offset, from_time, to_role, keep_timestamps, backfill, yes) -> None:
    """Re-publish the records of TOPIC_ROLE (form, web, crm, or any role/topic name) from an
    offset or a time into the same topic (or --to another), with their keys and headers.

    Replaying is safe: leadflow deduplicates by event id (each lead remembers its last
    LEADFLOW_DEDUP_WINDOW event ids, and JSON without an id gets one derived from its bytes),
    so records already processed change nothing; only records that were lost or dead-lettered
    before a fix take effect. Records added to the topic while replaying are not replayed.

    With --backfill the records carry the backfill header: scoring applies them to the lead's
    state (event time) but never sends an MQL for them; a later live event qualifies the lead
    if its score at that time is above the threshold."""
    if (from_offset is None) == (from_time is None):
        raise click.UsageError("give exactly one of --from-offset N or --from-time ISO")
    settings = _settings(ctx)
    source = _topic_for(settings, topic_role)
    target = _topic_for(settings, to_role) if to_role else source
    start_ms = _parse_time(from_time) if from_time else None
    _quiet_clients()
    from leadflow.simulator.harness import check_kafka

    check_kafka(settings)
    plan = asyncio.run(_replay_plan(kafka_client_kwargs(settings), source, from_offset, start_ms))
    total = sum(end - start for start, end in plan.values())
    click.echo(
        f"{source} -> {target}: {total:,} records in {len(plan)} partitions "
        f"({', '.join(f'p{tp.partition}: {s}..{e - 1}' for tp, (s, e) in sorted(plan.items()) if e > s) or 'none'})"
    )
    if total == 0:
        return
    if not yes and sys.stdin.isatty():
        click.confirm("replay them?", abort=True)
    count = asyncio.run(_replay(kafka_client_kwargs(settings), plan, target, total, keep_timestamps, backfill))
    click.echo(f"replayed {count:,} records into {target}")


async def _replay_plan(kafka: dict, topic: str, from_offset: int | None, start_ms: int | None):
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from leadflow.simulator.harness import HarnessError

    consumer = AIOKafkaConsumer(**kafka, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise HarnessError(f"topic {topic!r} does not exist on this broker (see `leadflow topics list`)")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        if start_ms is not None:
            found = await consumer.offsets_for_times({tp: start_ms for tp in tps})
            starts = {tp: (found[tp].offset if found.get(tp) else end[tp]) for tp in tps}
        else:
            starts = {tp: max(from_offset, begin[tp]) for tp in tps}
        return {tp: (min(starts[tp], end[tp]), end[tp]) for tp in tps}
    finally:
        await consumer.stop()


def backfill_headers(headers) -> list[tuple[str, bytes]]:
    """The record's headers with ``leadflow-backfill: 1`` (replacing any value it had)."""
    from agents.domain.events import BACKFILL_HEADER

    kept = [(k, v) for k, v in (headers or ()) if str(k).lower() != BACKFILL_HEADER]
    return [*kept, (BACKFILL_HEADER, b"1")]


async def _replay(kafka: dict, plan, target: str, total: int, keep_timestamps: bool, backfill: bool = False) -> int:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(
        **kafka, enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=4 * 1024 * 1024
    )
    producer = AIOKafkaProducer(**kafka, acks="all", linger_ms=10, max_request_size=12 * 1024 * 1024)
    await consumer.start()
    await producer.start()
    todo = {tp: (start, end) for tp, (start, end) in plan.items() if end > start}
    consumer.assign(list(todo))
    for tp, (start, _) in todo.items():
        consumer.seek(tp, start)
    done = 0
    try:
        with _progress() as progress:
            task = progress.add_task("replaying", total=total, rate="")
            started = time.monotonic()
            while todo:
                batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=2000)
                futures = []
                for tp, records in batch.items():
                    end = todo.get(tp, (0, 0))[1]
                    for r in records:
                        if r.offset >= end:
                            break
                        futures.append(
                            await producer.send(
                                target,
                                value=r.value,
                                key=r.key,
                                headers=backfill_headers(r.headers) if backfill else list(r.headers or ()),
                                timestamp_ms=r.timestamp if keep_timestamps else None,
                            )
                        )
                    if records and (records[-1].offset >= end - 1 or await consumer.position(tp) >= end):
                        todo.pop(tp, None)
                        consumer.pause(tp)
                await asyncio.gather(*futures)
                done += len(futures)
                progress.update(task, completed=done, rate=f"{done / max(1e-3, time.monotonic() - started):,.0f}/s")
    finally:
        await producer.stop()
        await consumer.stop()
    return done


# --- bench ---------------------------------------------------------------------------------------


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
@click.option("--no-faust-floor", is_flag=True, help="Skip the minimal-Faust-agent measurements.")
@click.option(
    "--profile", type=click.Choice(["pyinstrument", "cprofile"]), help="Profile the worker; report next to the results."
)
@click.option(
    "--faust", "faust_json", help="Prototype: extra faust.App settings as JSON, e.g. '{\"producer_linger_ms\": 10}'."
)
@click.option(
    "--patch", "patches", multiple=True, help="Prototype: a named code patch (see leadflow.bench.PATCHES); repeatable."
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
    no_faust_floor,
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
    Faust's own ceiling; (b) the full leadflow pipeline on simulator traffic (events/s, worker
    peak RSS) and, live at half that rate, p50/p95/p99 event->lead_scored / MQL / assignment
    latency. Reports the ratio (b)/(a) against the 25% goal; writes JSON and prints a table."""
    from rich.console import Console
    from rich.table import Table

    from leadflow.bench import PATCHES, BenchOptions, run_bench, summary_rows

    unknown = [p for p in patches if p not in PATCHES]
    if unknown:
        raise click.BadParameter(f"unknown patch {unknown[0]!r}; known: {', '.join(PATCHES)}", param_hint="--patch")
    try:
        faust_overrides = json.loads(faust_json) if faust_json else {}
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--faust") from None
    _quiet_clients()
    settings = _settings(ctx)
    console = Console()
    opts = BenchOptions(
        events=events,
        seed=seed,
        passthrough_runs=passthrough_runs,
        latency_seconds=latency_seconds,
        latency_rate=latency_rate,
        profile=profile,
        faust_overrides=faust_overrides,
        patches=list(patches),
        keep_topics=keep_topics,
        faust_floor=not no_faust_floor,
        compare_sasl_ssl=compare_sasl_ssl,
    )
    if results_dir is not None:
        opts.results_dir = results_dir
    with _progress(console) as progress:
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
    floor = results.get("faust_passthrough") or {}
    for block in floor.values():
        console.print(
            f"{'Faust minimal agent' + (' + table write' if block['stateful'] else ''):<36} "
            f"{block['events_per_s']:>9,.0f} events/s  {block['events_per_worker_cpu_s'] or 0:>9,.0f} per CPU-s"
        )
    if results.get("profile"):
        console.print(f"worker profile: {results['profile']}")
    if results.get("security_comparison"):
        cmp = results["security_comparison"]
        for key, label in (
            ("passthrough_events_per_s", "raw pass-through events/s"),
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
