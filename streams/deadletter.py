"""Dead letters: the original bytes, where they came from and a readable reason.

A dead letter must always reach the dead-letter topic: it is sized to fit the topic's
``max.message.bytes`` (an original too large is kept truncated, with its full size and
SHA-256) and its delivery is confirmed, retried with capped backoff until the broker accepts
it (``deliver``); meanwhile the input's offset is not committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, stop_never, wait_exponential

log = logging.getLogger(__name__)

# The runtime's own dead-letter reason codes (docs/contracts.md): a capability's code raised
# an unexpected exception, or a topic carried a record type its consumer does not take. The
# codec's decode codes are ``streams.codec.DECODE_REASON_CODES``.
UNKNOWN_KIND = "unknown_kind"
PROCESSING_ERROR = "processing_error"
RUNTIME_REASON_CODES = (UNKNOWN_KIND, PROCESSING_ERROR)

# Below this many bytes per record there is no room for a dead letter's fixed fields (topic
# name, reason text); such a topic limit is a configuration error, reported at start.
MIN_DEAD_LETTER_BYTES = 1024


class DeadLetterTooLarge(ValueError):
    """Even with original and source_key empty the dead letter exceeds the limit."""


def dead_letter_id(topic: str, partition: int, offset: int) -> str:
    """``dl_`` + BLAKE2b-96 of the source record's coordinates, each followed by 0x1f: the same
    source record always gets the same id (the scheme of every output id, so the ids of earlier
    versions are unchanged)."""
    digest = hashlib.blake2b(f"{topic}\x1f{partition}\x1f{offset}\x1f".encode(), digest_size=12)
    return "dl_" + digest.hexdigest()


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
        "event_id": dead_letter_id(topic, partition, offset),
        "failed_at": failed_at_ms,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "source_timestamp": timestamp_ms,
        "source_key": key,
        "original": value or b"",
        "reason_code": reason_code,
        "reason": reason,
        # Of the value as received, so a truncated original can still be matched to its source.
        "original_size": len(value or b""),
        "original_sha256": hashlib.sha256(value or b"").hexdigest(),
        "truncated": False,
    }


def fit_dead_letter(
    record: dict[str, Any],
    encode: Callable[[dict[str, Any]], bytes],
    limit_bytes: int,
) -> tuple[dict[str, Any], bytes]:
    """(record, encoded) with the encoding at most ``limit_bytes`` long.

    A record that fits is returned as is. Otherwise ``original`` is cut to its longest prefix
    that fits (then ``source_key``, if the key alone would not fit) and ``truncated`` is set.
    Sizes are measured with ``encode`` itself, so Avro and JSON (base64 bytes) are both exact.
    Raises DeadLetterTooLarge when even empty fields do not fit.
    """
    payload = encode(record)
    if len(payload) <= limit_bytes:
        return record, payload
    record = {**record, "truncated": True}
    cut = False  # ``truncated`` must not claim a cut that did not happen (in JSON the flag is
    # shorter than ``false``, so the full fields may fit with it): at least one byte goes.
    for name in ("original", "source_key"):
        data = record[name] or b""
        if not data:
            continue
        empty = len(encode({**record, name: b""}))
        if empty > limit_bytes:  # not even without this field: cut the next one too
            record[name] = b""
            cut = True
            continue
        full = len(encode(record))
        per_byte = (full - empty) / len(data)  # 1 for Avro, ~4/3 for JSON's base64
        keep = min(len(data) - (0 if cut else 1), int((limit_bytes - empty) / per_byte))
        while True:  # framing (length varints, base64 padding) may cost a few bytes more
            payload = encode({**record, name: data[:keep]})
            excess = len(payload) - limit_bytes
            if excess <= 0:
                record[name] = data[:keep]
                return record, payload
            keep = max(0, keep - max(1, int(excess / per_byte) + 1))
    raise DeadLetterTooLarge(
        f"a dead letter of {record['source_topic']} needs more than {limit_bytes} bytes even with "
        "original and source_key empty; raise the dead-letter topic's max.message.bytes"
    )


def dead_letter_key(key: bytes | None, limit_bytes: int) -> bytes:
    """The dead letter's Kafka key: the input's key (same partitioning downstream), or its
    SHA-256 when the key alone would take more than half of the record's room."""
    key = key or b""
    return key if len(key) <= limit_bytes // 2 else hashlib.sha256(key).hexdigest().encode()


class SourceRecord(Protocol):
    """Where a dead letter came from (``streams.consume.Meta``; not imported: it imports this)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp_ms(self) -> int | None: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def dead_letter_message(
    meta: SourceRecord,
    reason_code: str,
    reason: str,
    *,
    failed_at_ms: int,
    room: int,
    encode: Callable[[dict[str, Any]], bytes],
) -> tuple[bytes, bytes]:
    """(key, value) parking ``meta``'s record: key and encoded record together at most ``room`` bytes."""
    record = dead_letter_record(
        topic=meta.topic,
        partition=meta.partition,
        offset=meta.offset,
        timestamp_ms=meta.timestamp_ms,
        key=meta.key,
        value=meta.value,
        reason_code=reason_code,
        reason=reason,
        failed_at_ms=failed_at_ms,
    )
    key = dead_letter_key(meta.key, room)
    _, payload = fit_dead_letter(record, encode, room - len(key))
    return key, payload


async def deliver(
    send: Callable[[], Awaitable[Awaitable[Any]]],
    *,
    on_failure: Callable[[BaseException], None],
    initial_s: float,
    max_s: float,
    ack_timeout_s: float | None = None,
) -> Any:
    """Send and await the broker's acknowledgement, retrying for as long as it takes.

    ``send()`` returns the delivery future (Faust: ``await topic.send(...)``); its result is
    the RecordMetadata. Each failure calls ``on_failure`` and waits (``initial_s`` doubling up
    to ``max_s``). Never gives up: skipping would lose the record, because the caller's input
    offset is committed once this returns. Cancellation (worker stopping) passes through.
    """
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(Exception),
        wait=wait_exponential(multiplier=initial_s, max=max_s),
        stop=stop_never,
        reraise=True,
    ):
        with attempt:
            try:
                # A future that never resolves must not block the partition silently:
                # past ack_timeout_s it is a failure (counted), and the record is sent again.
                return await asyncio.wait_for(_acknowledged(send), ack_timeout_s)
            except Exception as exc:
                on_failure(exc)
                raise


async def _acknowledged(send: Callable[[], Awaitable[Awaitable[Any]]]) -> Any:
    return await (await send())
