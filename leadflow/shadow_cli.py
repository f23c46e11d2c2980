"""`leadflow shadow report`: where the candidate (shadow) model and the live one disagreed.

Reads ``<prefix>.out.shadow-decisions`` (``shadow_decision`` records, Avro or JSON, decoded by
the project's codec) from the first offset at ``--from`` to the end offsets taken at start, with
one consumer built from ``streams.connections.kafka_client_kwargs`` (no consumer group, nothing
committed), keeps the decisions made in ``[--from, --to)`` (``decided_at``) once each (by
event id: a redelivered input re-sends the same record), and prints would-be MQLs gained and
lost by first-touch source and score band, with totals and the window read.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click

from leadflow.cli_context import kafka_settings_from, settings_from
from streams.metric_labels import SCORE_BANDS

SUBJECT = "shadow_decision"


@dataclass
class ShadowSummary:
    """Decisions counted by (direction, source, band); versions seen; the window read."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    versions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (live, candidate)
    first_ms: int | None = None
    last_ms: int | None = None
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> records not counted

    def total(self, direction: str) -> int:
        return sum(n for (d, _, _), n in self.counts.items() if d == direction)

    def rows(self) -> list[tuple[str, str, int, int]]:
        """(source, band, gained, lost), sources alphabetical, bands low to high."""
        keys = {(source, band) for _, source, band in self.counts}
        order = {band: i for i, band in enumerate(SCORE_BANDS)}
        return [
            (source, band, self.counts["gained", source, band], self.counts["lost", source, band])
            for source, band in sorted(keys, key=lambda k: (k[0], order.get(k[1], len(order)), k[1]))
        ]


def _ms(value: Any) -> int:
    """A timestamp-millis field as decoded (int epoch ms, or an aware datetime)."""
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value)


def summarize(
    records: Iterable[Mapping[str, Any]], *, from_ms: int | None = None, to_ms: int | None = None
) -> ShadowSummary:
    """Count the decisions made in ``[from_ms, to_ms)``, each event id once (pure)."""
    summary, seen = ShadowSummary(), set()
    for record in records:
        decided = _ms(record["decided_at"])
        if (from_ms is not None and decided < from_ms) or (to_ms is not None and decided >= to_ms):
            summary.skipped["outside the window"] += 1
            continue
        if record["event_id"] in seen:
            summary.skipped["redelivered"] += 1
            continue
        seen.add(record["event_id"])
        summary.counts[str(record["direction"]), record["first_touch_source"], record["score_band"]] += 1
        summary.versions[record["live_model_version"], record["candidate_model_version"]] += 1
        summary.first_ms = decided if summary.first_ms is None else min(summary.first_ms, decided)
        summary.last_ms = decided if summary.last_ms is None else max(summary.last_ms, decided)
    return summary


def _iso(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def render(summary: ShadowSummary, *, from_ms: int | None, to_ms: int | None, topic: str) -> Any:
    """The report as rich renderables (a table and its caption lines)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Shadow decisions on {topic}", show_footer=True)
    gained, lost = summary.total("gained"), summary.total("lost")
    table.add_column("first-touch source", footer="total")
    table.add_column("score band")
    table.add_column("gained", justify="right", footer=str(gained))
    table.add_column("lost", justify="right", footer=str(lost))
    table.add_column("net", justify="right", footer=f"{gained - lost:+d}")
    for source, band, g, lo in summary.rows():
        table.add_row(source, band, str(g), str(lo), f"{g - lo:+d}")
    versions = ", ".join(f"{live} -> {candidate} ({n})" for (live, candidate), n in sorted(summary.versions.items()))
    lines = [
        f"window asked: {_iso(from_ms)} .. {_iso(to_ms)}; decisions from {_iso(summary.first_ms)} "
        f"to {_iso(summary.last_ms)}",
        f"models (live -> candidate): {versions or '-'}",
        "gained: the candidate would have made the MQL; lost: only the live model made it",
    ]
    if summary.skipped:
        lines.append("not counted: " + ", ".join(f"{n} {why}" for why, n in sorted(summary.skipped.items())))
    return Group(table, *(Text(line) for line in lines))


async def read_decisions(kafka: Mapping[str, Any], topic: str, codec: Any, *, from_ms: int | None) -> list[dict]:
    """Every record from the first offset at ``from_ms`` (or the beginning) to the end offsets
    now. Undecodable records are skipped (counted by the caller as missing)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.codec import DecodeError

    consumer = AIOKafkaConsumer(**kafka, enable_auto_commit=False, group_id=None)
    await consumer.start()
    records: list[dict] = []
    try:
        found = consumer.partitions_for_topic(topic) or await _partitions_after_refresh(consumer, topic)
        if not found:
            raise click.ClickException(f"topic {topic!r} does not exist (`leadflow topics create`)")
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, from_ms)) if from_ms is not None else {}
        for tp in partitions:
            start = starts.get(tp)
            consumer.seek(tp, start.offset if start is not None else (ends[tp] if from_ms is not None else 0))
        remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset < ends[tp] and message.value is not None:
                        try:
                            records.append(codec.decode(message.value, SUBJECT)[1])
                        except DecodeError:
                            logging.getLogger(__name__).warning("undecodable record at %s:%d", tp, message.offset)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return records


async def _partitions_after_refresh(consumer: Any, topic: str) -> set[int] | None:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - first sight of the topic
    return consumer.partitions_for_topic(topic)


def _parse_time(value: str | None, option: str) -> int | None:
    from streams.codec.json import iso_to_epoch_ms

    if value is None:
        return None
    try:
        return iso_to_epoch_ms(value)
    except (ValueError, OverflowError):
        raise click.BadParameter(
            "expected an ISO 8601 time with a zone, e.g. 2026-03-01T00:00:00Z", param_hint=option
        ) from None


@click.group()
def shadow() -> None:
    """The shadow model (LEADFLOW_SHADOW_MODEL_PATH): a candidate scored alongside the live one."""


@shadow.command("report")
@click.option("--from", "from_time", help="Decisions made at or after this ISO 8601 time (default: all).")
@click.option("--to", "to_time", help="Decisions made before this ISO 8601 time (default: now).")
@click.pass_context
def report(ctx: click.Context, from_time: str | None, to_time: str | None) -> None:
    """Would-be MQLs gained and lost by the candidate, by first-touch source and score band."""
    from rich.console import Console

    from streams.app import build_codec
    from streams.connections import kafka_client_kwargs
    from streams.topic_names import TopicNames

    from_ms, to_ms = _parse_time(from_time, "--from"), _parse_time(to_time, "--to")
    if from_ms is not None and to_ms is not None and to_ms <= from_ms:
        raise click.BadParameter("must be later than --from", param_hint="--to")
    settings = settings_from(ctx)
    kafka_settings_from(ctx)
    topic = TopicNames.from_settings(settings).shadow_decisions
    codec = build_codec(settings, register=False)
    records = asyncio.run(read_decisions(kafka_client_kwargs(settings), topic, codec, from_ms=from_ms))
    summary = summarize(records, from_ms=from_ms, to_ms=to_ms)
    Console().print(render(summary, from_ms=from_ms, to_ms=to_ms, topic=topic))
