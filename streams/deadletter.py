"""Dead letters: the original bytes, where they came from and a readable reason."""

from __future__ import annotations

from typing import Any

from agents.domain.identity import deterministic_id


def dead_letter_record(
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
    reason_code: str,
    reason: str,
    failed_at_ms: int,
) -> dict[str, Any]:
    return {
        # Same source record -> same dead-letter id, so redelivery is recognisable downstream.
        "event_id": deterministic_id(topic, partition, offset, prefix="dl_"),
        "failed_at": failed_at_ms,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "source_timestamp": timestamp_ms,
        "source_key": key,
        "original": value or b"",
        "reason_code": reason_code,
        "reason": reason,
    }
