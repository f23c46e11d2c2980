"""Produce/consume helpers for integration tests (real Kafka via aiokafka, sync API)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.codec import Codec, SchemaRegistry

_codec: Codec | None = None


def codec() -> Codec:
    global _codec
    if _codec is None:
        _codec = Codec(SchemaRegistry.load())
    return _codec


class KafkaTools:
    """``KafkaTools(bootstrap)`` for the plain listener, or ``KafkaTools(client=kafka_client_kwargs(s))``
    for any secured one."""

    def __init__(self, bootstrap: str | None = None, *, client: dict[str, Any] | None = None) -> None:
        self.client = dict(client) if client is not None else {"bootstrap_servers": bootstrap}
        self.bootstrap = self.client["bootstrap_servers"]

    def produce(self, topic: str, values: Iterable[bytes], *, key: bytes | None = None) -> None:
        async def go() -> None:
            producer = AIOKafkaProducer(
                **self.client, acks="all", max_request_size=10 * 1024 * 1024
            )
            await producer.start()
            try:
                for value in values:
                    await producer.send(topic, value=value, key=key)
                await producer.flush()
            finally:
                await producer.stop()

        asyncio.run(go())

    def consume(
        self,
        topic: str,
        *,
        until: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 60.0,
        decode: bool = True,
    ) -> list[dict[str, Any]]:
        """Read `topic` from the beginning until `until(records)` holds or the timeout passes.

        Each record: {"key", "value" (decoded Avro dict or raw bytes), "subject", "partition",
        "offset", "timestamp"}. Returns what was read (the caller asserts on it).
        """

        async def go() -> list[dict[str, Any]]:
            consumer = AIOKafkaConsumer(
                topic, **self.client, auto_offset_reset="earliest",
                enable_auto_commit=False, group_id=None,
            )
            await consumer.start()
            out: list[dict[str, Any]] = []
            deadline = time.monotonic() + timeout
            try:
                while time.monotonic() < deadline:
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        for r in records:
                            subject, value = codec().decode(r.value) if decode else (None, r.value)
                            out.append({
                                "key": r.key, "value": value, "subject": subject,
                                "partition": r.partition, "offset": r.offset, "timestamp": r.timestamp,
                            })
                    if until(out):
                        break
                return out
            finally:
                await consumer.stop()

        return asyncio.run(go())
