"""`leadflow simulate | replay`: what puts records on the input topics (besides `leadflow publish`,
which takes their short names from here); click commands listed by the main group
(``leadflow.cli.main``); this module does not import ``leadflow.cli``."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import click

from leadflow.cli_context import settings_from as _settings
from leadflow.cli_feedback import friendly_errors, persona_mix, progress_display, quiet_clients
from streams.connections import kafka_client_kwargs
from streams.settings import Settings

# The short names of the input topics (TopicNames fields): `leadflow publish KIND`, `leadflow replay
# ROLE`, the file names of `leadflow simulate --jsonl`.
INPUT_KINDS = {"form": "form_submits", "web": "web_activity", "crm": "crm_status"}

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

    quiet_clients()
    if count is None and duration is None and jsonl_dir is None and rate is None:
        raise click.UsageError("give --events N or --duration S (or --rate R to run until Ctrl-C)")
    seed = seed if seed is not None else random.randrange(1_000_000)
    sim = TrafficSimulator(
        seed,
        start_ms=int(time.time() * 1000),
        mix=persona_mix(mix),
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
    with progress_display() as progress:
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
    quiet_clients()
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
        with progress_display() as progress:
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
