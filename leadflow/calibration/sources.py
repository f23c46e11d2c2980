"""Where the history comes from: leadflow's topics (MQLs and CRM statuses) and a CSV export.

Kafka: the MQL topic (``lead_qualified``, framed Avro or JSON, decoded by the project's codec)
and the CRM status input topic (Avro or JSON, validated by capture's own rules, so a CRM
record identified by email gets the lead id the pipeline gave it) are read from the beginning
to the end offsets taken at start, with one consumer built from
``streams.connections.kafka_client_kwargs``. Emails are never kept: a handoff holds the lead id,
score, breakdown points and model version only.

CSV (history that predates leadflow), one row per MQL handoff; columns (header required):

=================== ======== ===========================================================
column              required meaning
=================== ======== ===========================================================
lead_id             yes      any stable id of the lead (not an email)
handed_off_at       yes      ISO 8601 time of the handoff (MQL), e.g. 2025-03-01T09:30:00Z
score               yes      the score at handoff
outcome             no       sql, converted, closed_won, closed_lost or rejected; empty = open
outcome_at          no       ISO 8601 time of the outcome (default: handed_off_at)
disposition         no       for rejected: not_icp, not_now, ... (docs/domain.md)
model_version       no       the scoring model of the score (default: csv)
points.<signal>     no       points of one signal at handoff, e.g. points.pricing_page_visit
=================== ======== ===========================================================
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.capture.rules import CaptureLimits, to_lead_event
from agents.domain.events import CRM_STATUSES, DISPOSITIONS
from leadflow.calibration.cohort import Handoff, Outcome, follow_ups
from leadflow.topic_reader import groupless_consumer, read_range, topic_partitions
from streams.codec import Codec
from streams.codec.json import iso_to_epoch_ms
from streams.settings import Settings
from streams.topic_names import TopicNames

POINTS_PREFIX = "points."
CSV_REQUIRED = ("lead_id", "handed_off_at", "score")
CSV_OUTCOMES = ("sql", "converted", "closed_won", "closed_lost", "rejected")
_FURTHEST_FIRST = ("closed_won", "converted", "sql", "closed_lost", "rejected")  # which status a row shows


class HistoryError(ValueError):
    """The history cannot be read; one line naming the file or topic and the row."""


@dataclass
class History:
    handoffs: list[Handoff] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> records not used
    read_seconds: float = 0.0

    def extend(self, other: History) -> None:
        self.handoffs.extend(other.handoffs)
        self.outcomes.extend(other.outcomes)
        self.skipped.update(other.skipped)
        self.read_seconds += other.read_seconds


# --- records -> values (pure) --------------------------------------------------------------


def handoff_from_record(record: Mapping[str, Any], source: str = "kafka") -> Handoff | None:
    """A ``lead_qualified`` record as a handoff; None for a priority upgrade (not a new MQL)."""
    if record.get("upgrade_of"):
        return None
    points: dict[str, float] = {}
    for item in record.get("breakdown") or ():
        points[item["signal"]] = points.get(item["signal"], 0.0) + float(item["points"])
    return Handoff(
        lead_id=record["lead_id"],
        mql_id=record["event_id"],
        occurred_at_ms=int(record["occurred_at"]),
        score=float(record["score"]),
        points=points,
        model_version=record.get("model_version") or "unknown",
        source=source,
    )


def outcome_from_crm(
    raw: bytes, codec: Codec, limits: CaptureLimits, *, max_bytes: int, received_at_ms: int
) -> Outcome:
    """A CRM status message as capture would read it (raises DecodeError or Rejected)."""
    record, encoding = codec.decode_input("crm_status", raw, max_bytes=max_bytes)
    event = to_lead_event(
        "crm_status", record, encoding, raw=raw, received_at_ms=received_at_ms, now_ms=received_at_ms, limits=limits
    )
    assert event.lead_id is not None  # CRM statuses always identify the lead
    return Outcome(
        lead_id=event.lead_id,
        event_id=event.event_id,
        occurred_at_ms=event.occurred_at_ms,
        status=event.data["status"],
        disposition=event.data.get("disposition"),
    )


# --- Kafka ---------------------------------------------------------------------------------


async def read_topics(settings: Settings, codec: Codec, *, poll_records: int = 5000) -> History:
    """Every MQL and CRM status on the topics now (to the end offsets taken at start)."""
    started = time.monotonic()
    names = TopicNames.from_settings(settings)
    limits = CaptureLimits.from_settings(settings)
    history = History()

    def take(tp: Any, record: Any) -> None:
        _take(history, tp.topic == names.mqls, record, codec, limits, settings.max_message_bytes)

    async with groupless_consumer(settings) as consumer:
        partitions = [
            tp
            for topic in (names.mqls, names.crm_status)
            for tp in await topic_partitions(consumer, topic, HistoryError)
        ]
        starts = await consumer.beginning_offsets(partitions)
        await read_range(consumer, starts, await consumer.end_offsets(partitions), take, poll_records=poll_records)
    history.read_seconds = time.monotonic() - started
    return history


def _take(history: History, is_mql: bool, record: Any, codec: Codec, limits: CaptureLimits, max_bytes: int) -> None:
    from agents.capture.exceptions import Rejected
    from streams.codec import DecodeError

    if record.value is None:
        history.skipped["tombstone"] += 1
        return
    try:
        if is_mql:
            _, value = codec.decode(record.value, "lead_qualified")
            handoff = handoff_from_record(value)
            if handoff is None:
                history.skipped["priority upgrade"] += 1
            else:
                history.handoffs.append(handoff)
        else:
            history.outcomes.append(
                outcome_from_crm(record.value, codec, limits, max_bytes=max_bytes, received_at_ms=record.timestamp)
            )
    except (DecodeError, Rejected, KeyError, TypeError, ValueError):
        history.skipped["undecodable MQL" if is_mql else "invalid CRM status"] += 1


def read_kafka(settings: Settings, codec: Codec) -> History:
    return asyncio.run(read_topics(settings, codec))


# --- CSV -----------------------------------------------------------------------------------


def read_csv(path: Path) -> History:
    """Handoffs and outcomes from a CSV export (columns in the module docstring)."""
    started = time.monotonic()
    history = History()
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise HistoryError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in CSV_REQUIRED if c not in columns]
        if missing:
            raise HistoryError(f"{path}: missing column(s) {', '.join(missing)}; columns: {', '.join(columns)}")
        if "email" in columns:
            raise HistoryError(f"{path}: has an email column; export an opaque lead_id instead (no emails)")
        signals = [c[len(POINTS_PREFIX) :] for c in columns if c.startswith(POINTS_PREFIX)]
        for line, row in enumerate(reader, start=2):
            try:
                _csv_row(history, row, signals)
            except (ValueError, KeyError) as exc:
                raise HistoryError(f"{path}, line {line}: {exc}") from None
    history.read_seconds = time.monotonic() - started
    return history


def _csv_row(history: History, row: Mapping[str, str], signals: Iterable[str]) -> None:
    lead = (row["lead_id"] or "").strip()
    if not lead:
        raise ValueError("lead_id is empty")
    if "@" in lead:
        raise ValueError("lead_id looks like an email; export an opaque id (no emails)")
    at = _iso(row["handed_off_at"], "handed_off_at")
    points = {s: float(row[POINTS_PREFIX + s]) for s in signals if (row.get(POINTS_PREFIX + s) or "").strip()}
    mql_id = f"csv:{lead}:{at}"
    history.handoffs.append(
        Handoff(lead, mql_id, at, float(row["score"]), points, (row.get("model_version") or "").strip() or "csv", "csv")
    )
    outcome = (row.get("outcome") or "").strip().lower()
    if not outcome:
        return
    if outcome not in CSV_OUTCOMES:
        raise ValueError(f"outcome {outcome!r}: expected one of {', '.join(CSV_OUTCOMES)} or empty")
    disposition = (row.get("disposition") or "").strip().lower() or None
    if disposition is not None and disposition not in DISPOSITIONS:
        raise ValueError(f"disposition {disposition!r}: expected one of {', '.join(DISPOSITIONS)}")
    outcome_at = _iso(row["outcome_at"], "outcome_at") if (row.get("outcome_at") or "").strip() else at
    assert outcome in CRM_STATUSES
    history.outcomes.append(Outcome(lead, f"{mql_id}:{outcome}", max(outcome_at, at), outcome, disposition))


def _iso(text: str, column: str) -> int:
    try:
        return iso_to_epoch_ms(text.strip())
    except Exception:  # noqa: BLE001 - the codec's parser raises its own errors
        raise ValueError(f"{column} {text!r} is not an ISO 8601 time") from None


def write_csv(path: Path, handoffs: Iterable[Handoff], outcomes: Iterable[Outcome]) -> int:
    """The history as the CSV ``read_csv`` reads: one row per MQL with the furthest outcome
    that followed it (e.g. to hand a simulated or exported history around). Returns rows."""
    by_lead, followed, _, _ = follow_ups(handoffs, outcomes)
    rows = sorted((h for mqls in by_lead.values() for h in mqls.values()), key=lambda h: (h.occurred_at_ms, h.mql_id))
    signals = sorted({s for h in rows for s in h.points})
    columns = ["lead_id", "handed_off_at", "score", "outcome", "outcome_at", "disposition", "model_version"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns + [POINTS_PREFIX + s for s in signals])
        for h in rows:
            got = followed.get((h.lead_id, h.mql_id), [])
            final = next((o for status in _FURTHEST_FIRST for o in got if o.status == status), None)
            writer.writerow(
                [h.lead_id, _iso_text(h.occurred_at_ms), f"{h.score:g}", final.status if final else "",
                 _iso_text(final.occurred_at_ms) if final else "", (final.disposition or "") if final else "",
                 h.model_version]
                + [f"{h.points[s]:g}" if s in h.points else "" for s in signals]
            )  # fmt: skip
    return len(rows)


def _iso_text(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
