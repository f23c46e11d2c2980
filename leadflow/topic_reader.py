"""Reading topics offline, as the tools above the pipeline do (`calibrate`, `whatif`): one
consumer with no group (partitions assigned, never subscribed, no offset ever committed), built
with the workers' own security settings, from given start offsets to the end offsets taken at
the start. Nothing is written anywhere; no live consumer group is disturbed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from streams.connections import kafka_client_kwargs
from streams.settings import Settings

# (partition, record) for each record below the partition's end offset.
Take = Callable[[Any, Any], None]


@asynccontextmanager
async def groupless_consumer(settings: Settings) -> AsyncIterator[Any]:
    """A started AIOKafkaConsumer with no group; stopped on exit."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        **kafka_client_kwargs(settings),
        group_id=None,  # no group: nothing is committed, no live consumer is disturbed
        enable_auto_commit=False,
        max_partition_fetch_bytes=settings.max_message_bytes * 4,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def topic_partitions(consumer: Any, topic: str, missing: Callable[[str], Exception]) -> list[Any]:
    """The topic's partitions, sorted; ``missing(message)`` is raised when it does not exist."""
    from aiokafka import TopicPartition

    found = consumer.partitions_for_topic(topic)
    if not found:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - first sight of the topic
        found = consumer.partitions_for_topic(topic)
    if not found:
        raise missing(f"topic {topic!r} does not exist (`leadflow topics create`)")
    return [TopicPartition(topic, p) for p in sorted(found)]


async def read_range(
    consumer: Any, starts: dict[Any, int], ends: dict[Any, int], take: Take, *, poll_records: int = 5000
) -> None:
    """Hand ``take`` every record from ``starts[tp]`` up to (not including) ``ends[tp]``."""
    todo = {tp for tp, start in starts.items() if start < ends[tp]}
    consumer.assign(list(starts))
    for tp, start in starts.items():
        consumer.seek(tp, start)
    while todo:
        batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=poll_records)
        for tp, records in batch.items():
            for record in records:
                if record.offset >= ends[tp]:
                    break
                take(tp, record)
        for tp in list(todo):
            if await consumer.position(tp) >= ends[tp]:
                todo.discard(tp)
