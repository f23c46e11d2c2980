"""A seek to the committed offsets rewinds the partitions nothing was committed on yet
(streams/faust_recovery.py, part 2), against the session broker.

Faust drops fetched records whenever the flow stops under them and relies on that seek to read
them again; aiokafka's own ``seek_to_committed`` leaves a never-committed partition past them.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from streams.faust_recovery import seek_all_to_committed

pytestmark = pytest.mark.integration

RECORDS = 5


async def _topic_with_records(bootstrap: str, partitions: int) -> str:
    """A new topic of ``partitions`` partitions, RECORDS records in each (offsets 0..RECORDS-1)."""
    topic = f"seek-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition in range(partitions):
            for _ in range(RECORDS):
                await producer.send(topic, b"x", partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
    return topic


def _consumer(topic: str, bootstrap: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


def _offsets(batch: dict) -> dict[int, list[int]]:
    return {tp.partition: [r.offset for r in records] for tp, records in batch.items()}


async def _read_all(consumer: AIOKafkaConsumer, want: int) -> dict[int, list[int]]:
    seen: dict[int, list[int]] = {}
    for _ in range(40):
        for partition, offsets in _offsets(await consumer.getmany(timeout_ms=250)).items():
            seen.setdefault(partition, []).extend(offsets)
        if sum(map(len, seen.values())) >= want:
            break
    return seen


def test_seek_rewinds_never_committed_partitions_and_keeps_committed_ones(stack, stack_settings):
    bootstrap = stack_settings.kafka_bootstrap

    async def scenario() -> tuple[dict, dict, dict]:
        topic = await _topic_with_records(bootstrap, partitions=2)
        consumer = _consumer(topic, bootstrap)
        await consumer.start()
        try:
            first = await _read_all(consumer, 2 * RECORDS)  # both partitions read to the end
            await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "")})  # partition 1: never

            await consumer.seek_to_committed()  # aiokafka alone
            after_plain = _offsets(await consumer.getmany(timeout_ms=1000))

            await seek_all_to_committed(consumer)
            after_patch = await _read_all(consumer, (RECORDS - 2) + RECORDS)
            return first, after_plain, after_patch
        finally:
            await consumer.stop()

    first, after_plain, after_patch = asyncio.run(scenario())
    assert first == {0: list(range(RECORDS)), 1: list(range(RECORDS))}, first
    # aiokafka rewinds the committed partition only (if this fails, aiokafka now rewinds the
    # never-committed one itself, and the patch can go).
    assert after_plain == {0: list(range(2, RECORDS))}, after_plain
    # The patch: the committed partition from its offset, the never-committed one from its beginning.
    assert after_patch == {0: list(range(2, RECORDS)), 1: list(range(RECORDS))}, after_patch


def test_seek_leaves_partitions_the_predicate_excludes(stack, stack_settings):
    bootstrap = stack_settings.kafka_bootstrap

    async def scenario() -> dict:
        topic = await _topic_with_records(bootstrap, partitions=1)
        consumer = _consumer(topic, bootstrap)
        await consumer.start()
        try:
            await _read_all(consumer, RECORDS)
            await seek_all_to_committed(consumer, lambda tp: False)  # as for changelog partitions
            return _offsets(await consumer.getmany(timeout_ms=1000))
        finally:
            await consumer.stop()

    assert asyncio.run(scenario()) == {}
