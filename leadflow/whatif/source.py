"""Reading the retained input history for ``leadflow whatif``, without touching live state.

One consumer (``streams.connections.kafka_client_kwargs``) with no group: partitions are
assigned, never subscribed, and no offset is ever committed. Each input topic is read from
``offsets_for_times(--from)`` to its end offset taken at the start (erasure requests after
``--to`` must still be seen); the erasures output topic is read from its beginning (its
``lead_erased`` records name leads erased before the window too). Records are decoded with the
project's codec (Avro or JSON); an undecodable record is counted, as the worker would
dead-letter it. Nothing is written anywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agents.domain.events import backfill_requested
from leadflow.topic_reader import groupless_consumer, read_range, topic_partitions
from leadflow.whatif.replay import InputRecord
from streams.codec import Codec, DecodeError
from streams.settings import Settings
from streams.topic_names import INPUT_TOPIC_FIELD, TopicNames


class HistoryUnavailable(RuntimeError):
    """The input topics cannot be read (missing topic); the message is one line."""


@dataclass
class History:
    inputs: list[InputRecord] = field(default_factory=list)
    erased: set[str] = field(default_factory=set)  # lead ids of lead_erased records
    undecodable: int = 0
    # Earliest retained record per input topic when --from predates retention (history cut).
    truncated_at_ms: dict[str, int] = field(default_factory=dict)
    read_seconds: float = 0.0


async def read_history(settings: Settings, codec: Codec, *, from_ms: int, poll_records: int = 5000) -> History:
    started = time.monotonic()
    names = TopicNames.from_settings(settings)
    subject_of = {getattr(names, topic_field): subject for subject, topic_field in INPUT_TOPIC_FIELD.items()}
    history = History()
    async with groupless_consumer(settings) as consumer:
        inputs = [tp for topic in subject_of for tp in await topic_partitions(consumer, topic, HistoryUnavailable)]
        erasures = await topic_partitions(consumer, names.erasures, HistoryUnavailable)
        begins = await consumer.beginning_offsets(inputs + erasures)
        ends = await consumer.end_offsets(inputs + erasures)
        found = await consumer.offsets_for_times({tp: from_ms for tp in inputs})
        starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in inputs}
        starts.update({tp: begins[tp] for tp in erasures})
        cut = {tp for tp in inputs if begins[tp] > 0 and starts[tp] == begins[tp]}  # older records deleted

        def take(tp: Any, record: Any) -> None:
            if tp in cut and record.offset == begins[tp] and record.timestamp > from_ms:
                known = history.truncated_at_ms.get(tp.topic)
                history.truncated_at_ms[tp.topic] = min(known or record.timestamp, record.timestamp)
            if tp.topic == names.erasures:
                _take_erasure(history, codec, record)
            else:
                _take_input(history, codec, subject_of[tp.topic], record, settings.max_message_bytes)

        await read_range(consumer, starts, ends, take, poll_records=poll_records)
    history.read_seconds = time.monotonic() - started
    return history


def _take_input(history: History, codec: Codec, subject: str, record: Any, max_bytes: int) -> None:
    if record.value is None:
        return
    try:
        value, encoding = codec.decode_input(subject, record.value, max_bytes=max_bytes)
    except DecodeError:
        history.undecodable += 1
        return
    history.inputs.append(
        InputRecord(
            subject=subject,
            record=value,
            encoding=encoding,
            raw=record.value,
            received_at_ms=record.timestamp,
            backfill=backfill_requested(record.headers),
        )
    )


def _take_erasure(history: History, codec: Codec, record: Any) -> None:
    if record.value is None:
        return
    try:
        _, value = codec.decode(record.value, "lead_erased")
    except DecodeError:
        return  # not a lead_erased record: nothing it could name
    lead_id = value.get("lead_id")
    if isinstance(lead_id, str):
        history.erased.add(lead_id)
