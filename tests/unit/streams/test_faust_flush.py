"""The offset commit's producer flush waits for every queued changelog record (streams/faust_flush.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from faust.transport.producer import ProducerBuffer

from streams import faust_flush


class _Slow:
    """Stands in for the topic a changelog record is published to: slower than Faust's 0.1 s."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s, self.published = delay_s, []

    async def publish_message(self, fut, wait=False):
        await asyncio.sleep(self.delay_s)
        self.published.append(fut.n)


class _Fut:
    def __init__(self, channel, n):
        self.n, self.message = n, type("M", (), {"channel": channel})()


def _buffer() -> ProducerBuffer:
    buffer = ProducerBuffer()
    buffer.app = type("App", (), {"conf": type("Conf", (), {"producer_threaded": False})()})()
    return buffer


@asynccontextmanager
async def _running_buffer() -> AsyncIterator[ProducerBuffer]:
    """A started buffer, stopped on the way out."""
    buffer = _buffer()
    await buffer.start()
    try:
        yield buffer
    finally:
        await buffer.stop()


async def _flush_with(records: int, delay_s: float) -> tuple[int, int]:
    async with _running_buffer() as buffer:
        channel = _Slow(delay_s)
        for n in range(records):
            buffer.pending.put_nowait(_Fut(channel, n))
        await asyncio.sleep(0)  # the background task takes the first record
        await buffer.flush()
        return len(channel.published), buffer.size


def test_flush_returns_only_when_every_record_was_handed_over():
    faust_flush.install()
    published, left = asyncio.run(_flush_with(records=3, delay_s=0.25))
    assert (published, left) == (3, 0)


def test_flush_counts_the_record_between_queue_and_client():
    faust_flush.install()
    # One record: the queue is empty as soon as the task took it, yet it is not handed over.
    published, left = asyncio.run(_flush_with(records=1, delay_s=0.3))
    assert (published, left) == (1, 0)


def test_flush_waits_for_the_records_queued_before_it_not_for_an_empty_queue():
    """Under steady load the queue is never empty: a flush that waited for that would hold the
    offset commit (and Faust's fetcher, which commits inline) for seconds."""
    faust_flush.install()

    async def scenario():
        async with _running_buffer() as buffer:
            channel = _Slow(0.05)
            for n in range(3):
                buffer.pending.put_nowait(_Fut(channel, n))
            await asyncio.sleep(0)

            async def keep_writing():
                n = 3
                while True:
                    buffer.pending.put_nowait(_Fut(channel, n))
                    n += 1
                    await asyncio.sleep(0.02)  # faster than the records are handed over

            writer = asyncio.create_task(keep_writing())
            try:
                await asyncio.wait_for(buffer.flush(), timeout=2)
                published, left = list(channel.published), buffer.size
            finally:
                writer.cancel()
            await buffer.flush()  # the rest, before stopping (a stopping buffer refuses to flush)
            return published, left

    published, left = asyncio.run(scenario())
    assert published[:3] == [0, 1, 2]  # the records queued before the flush were handed over
    assert left > 0  # and it returned with later records still queued


def test_install_is_idempotent():
    faust_flush.install()
    patched = ProducerBuffer.flush
    faust_flush.install()
    assert ProducerBuffer.flush is patched


def test_a_stopped_buffer_with_records_refuses_to_flush():
    faust_flush.install()

    async def scenario():
        buffer = _buffer()  # never started: not running
        buffer.pending.put_nowait(_Fut(_Slow(0), 0))
        await buffer.flush()

    with pytest.raises(RuntimeError, match="not Running"):
        asyncio.run(scenario())


def test_a_changelog_record_waits_for_the_outputs_sent_before_it():
    """State never durable before its outputs: the record is handed over only after their ack."""
    faust_flush.install()

    async def scenario():
        async with _running_buffer() as buffer:
            output = asyncio.get_running_loop().create_future()
            faust_flush.track_output(output)
            channel = _Slow(0)
            buffer.put(_Fut(channel, 1))
            await asyncio.sleep(0.2)
            before_ack = list(channel.published)
            output.set_result("acked")
            await buffer.flush()
            return before_ack, channel.published

    before_ack, after = asyncio.run(scenario())
    assert (before_ack, after) == ([], [1])


def test_a_changelog_record_does_not_wait_for_outputs_sent_after_it():
    """Only the outputs sent before a record was queued hold it back: under steady load there are
    always newer unacknowledged outputs, and waiting for those too stalls the changelog."""
    faust_flush.install()

    async def scenario():
        async with _running_buffer() as buffer:
            channel = _Slow(0)
            buffer.put(_Fut(channel, 1))
            later_output = asyncio.get_running_loop().create_future()
            faust_flush.track_output(later_output)  # sent after the record was queued, never acked here
            await asyncio.wait_for(buffer.flush(), timeout=2.0)
            later_output.cancel()
            return channel.published

    assert asyncio.run(scenario()) == [1]
