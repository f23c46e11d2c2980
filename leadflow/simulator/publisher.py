"""Publishing simulated events to leadflow's input topics with aiokafka.

    async with Publisher(kafka_client_kwargs(settings), TopicNames.from_settings(settings), codec) as pub:
        stats = await pub.run(sim, rate=200, limit=10_000)     # paced: 200 events/s
        stats = await pub.run(sim, rate=None, limit=100_000)   # as fast as possible

Events are stamped as they are sent (``occurred_at`` = the broker timestamp = now), which is
what a live publisher does and what latency is measured from. Sends are pipelined: ``run``
does not wait for each acknowledgement, only for all of them at the end (and every few
thousand, so a broker problem surfaces quickly).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leadflow.simulator.sessions import SimEvent

log = logging.getLogger(__name__)

TOPIC_FIELDS = {"form_submitted": "form_submits", "web_activity": "web_activity", "crm_status": "crm_status"}
_ACK_EVERY = 5000


@dataclass
class PublishStats:
    sent: int = 0
    bytes: int = 0
    bad: int = 0
    by_subject: dict[str, int] = field(default_factory=dict)
    started: float = 0.0  # monotonic
    finished: float = 0.0

    @property
    def elapsed_s(self) -> float:
        return max(1e-9, (self.finished or time.monotonic()) - self.started)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s


class Publisher:
    def __init__(
        self,
        kafka: Mapping[str, Any],
        topics: Any,
        codec: Any,
        *,
        acks: str | int = "all",
        linger_ms: int = 5,
        client_id: str = "leadflow-simulator",
    ) -> None:
        self.topics = topics  # streams.topics.TopicNames
        self.codec = codec
        self._producer_args = dict(
            **kafka,
            acks=acks,
            linger_ms=linger_ms,
            client_id=client_id,
            max_batch_size=256 * 1024,
            request_timeout_ms=20_000,
        )
        self._producer: Any = None  # an AIOKafkaProducer once started (aiokafka is untyped)
        self.stats = PublishStats()

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(**self._producer_args)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            try:
                await self._producer.stop()  # flushes what is buffered
            finally:
                self._producer = None

    def topic_for(self, subject: str) -> str:
        return getattr(self.topics, TOPIC_FIELDS[subject])

    async def send(self, event: SimEvent, *, now_ms: int | None = None) -> asyncio.Future:
        """Encode (stamped ``now_ms``, default: now) and enqueue one event; returns the ack future."""
        assert self._producer is not None, "Publisher.start() first"
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        value = event.encode(self.codec, now_ms=now_ms)
        future = await self._producer.send(
            self.topic_for(event.subject), value=value, key=event.key, timestamp_ms=now_ms
        )
        stats = self.stats
        stats.sent += 1
        stats.bytes += len(value)
        stats.bad += event.bad is not None
        stats.by_subject[event.subject] = stats.by_subject.get(event.subject, 0) + 1
        return future

    async def send_raw(
        self, topic: str, value: bytes, key: bytes | None = None, timestamp_ms: int | None = None
    ) -> asyncio.Future:
        assert self._producer is not None, "Publisher.start() first"
        return await self._producer.send(topic, value=value, key=key, timestamp_ms=timestamp_ms)

    async def flush(self) -> None:
        if self._producer is not None:
            await self._producer.flush()

    async def run(
        self,
        events: Iterable[SimEvent],
        *,
        rate: float | None = None,
        limit: int | None = None,
        stop: asyncio.Event | None = None,
        on_sent: Callable[[SimEvent, int], None] | None = None,
    ) -> PublishStats:
        """Publish ``events`` (at most ``limit``) paced at ``rate`` events/s (None = flat out),
        until exhausted or ``stop`` is set; waits for every acknowledgement. ``on_sent(event,
        stamped_ms)`` is called after each enqueue."""
        if rate is not None and rate <= 0:
            raise ValueError("rate must be > 0 (or None for as fast as possible)")
        stats = self.stats
        stats.started = stats.started or time.monotonic()
        t0, n = time.monotonic(), 0
        pending: list[asyncio.Future] = []
        try:
            for event in events:
                if (limit is not None and n >= limit) or (stop is not None and stop.is_set()):
                    break
                if rate is not None:
                    ahead = t0 + n / rate - time.monotonic()
                    if ahead > 0.002:
                        await asyncio.sleep(ahead)
                        if stop is not None and stop.is_set():
                            break
                now_ms = int(time.time() * 1000)
                pending.append(await self.send(event, now_ms=now_ms))
                if on_sent is not None:
                    on_sent(event, now_ms)
                n += 1
                if len(pending) >= _ACK_EVERY:
                    await asyncio.gather(*pending)
                    pending.clear()
            if pending:
                await asyncio.gather(*pending)
        finally:
            stats.finished = time.monotonic()
        return stats
