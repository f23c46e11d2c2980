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

    def produce(
        self, topic: str, values: Iterable[bytes], *, key: bytes | None = None, max_request_size: int = 10 * 1024 * 1024
    ) -> list[Any]:
        """Send and flush; returns each record's delivery result: RecordMetadata, or the
        exception the producer or the broker refused it with."""

        async def go() -> list[Any]:
            producer = AIOKafkaProducer(**self.client, acks="all", max_request_size=max_request_size)
            await producer.start()
            try:
                futures = [await producer.send(topic, value=value, key=key) for value in values]
                await producer.flush()
                return [f.exception() or f.result() for f in futures]
            finally:
                await producer.stop()

        return asyncio.run(go())

    def _admin(self, operation: Callable[[Any], Any]) -> Any:
        from aiokafka.admin import AIOKafkaAdminClient

        async def go() -> Any:
            admin = AIOKafkaAdminClient(**self.client)
            await admin.start()
            try:
                return await operation(admin)
            finally:
                await admin.close()

        return asyncio.run(go())

    def set_topic_config(self, topic: str, configs: dict[str, str]) -> None:
        """Replace the topic's overrides with ``configs`` ({} = back to the broker's defaults)."""
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        responses = self._admin(
            lambda admin: admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
        )
        for response in responses:
            for error_code, error_message, *_ in response.resources:
                assert not error_code, f"alter configs of {topic}: {error_code} {error_message}"

    def topic_config(self, topic: str, name: str) -> str | None:
        """The topic's effective value of config ``name``, as the broker reports it."""
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        responses = self._admin(
            lambda admin: admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, configs={name: None})]
            )
        )
        entries = [entry for response in responses for resource in response.resources for entry in resource[4]]
        return next((entry[1] for entry in entries if entry[0] == name), None)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """partition -> the consumer group's committed offset (next to read) on ``topic``."""
        offsets = self._admin(lambda admin: admin.list_consumer_group_offsets(group))
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}

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
                topic,
                **self.client,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                group_id=None,
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
                            out.append(
                                {
                                    "key": r.key,
                                    "value": value,
                                    "subject": subject,
                                    "partition": r.partition,
                                    "offset": r.offset,
                                    "timestamp": r.timestamp,
                                }
                            )
                    if until(out):
                        break
                return out
            finally:
                await consumer.stop()

        return asyncio.run(go())

    def latest_values(self, topic: str) -> dict[bytes, bytes | None]:
        """key -> its latest value (None: a tombstone), read from the beginning to the end
        offsets as of the call: what a compacted topic converges to once the cleaner ran."""

        async def go() -> dict[bytes, bytes | None]:
            consumer = AIOKafkaConsumer(
                topic, **self.client, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
            )
            await consumer.start()
            try:
                while not consumer.assignment():
                    await consumer.getmany(timeout_ms=100)
                await consumer.seek_to_beginning()  # records fetched while waiting are read again
                ends = await consumer.end_offsets(list(consumer.assignment()))
                latest: dict[bytes, bytes | None] = {}
                while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                    for records in (await consumer.getmany(timeout_ms=200)).values():
                        for r in records:
                            latest[r.key] = r.value
                return latest
            finally:
                await consumer.stop()

        return asyncio.run(go())
