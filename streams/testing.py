"""A pipeline for unit tests: what :class:`streams.app.Pipeline` offers a capability, without
Kafka, Faust workers or Redis.

- tables are dicts, channels are lists of what was sent (:class:`ListChannel`);
- ``consume`` records the consumer; :meth:`FakePipeline.deliver` hands it a message through the
  very consume path the runtime uses (:class:`streams.consume.Consumer`: decode once, dead
  letters for rejections and processing errors), and :meth:`FakePipeline.pump` delivers what
  the capabilities sent on a channel to the consumers of that topic;
- the clock is manual (:class:`ManualClock`), timers run when a test fires them;
- ``emit`` validates the record against its schema (the codec encodes it), records
  ``(subject, key, record)`` and puts the encoded record on its output channel;
- ``redis()`` returns the test double the test passed.

    pipeline = FakePipeline(metrics=Metrics(CollectorRegistry(), vocabulary))
    scoring.register(pipeline, model=..., dispositions=..., priority=...)
    await pipeline.deliver("lead_events", wire.encode_lead_event(event), key=b"ld_1")
    assert [e.subject for e in pipeline.emitted] == ["lead_scored", "lead_qualified"]
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from streams.app import SUBJECT_TOPIC_FIELD, partition_for
from streams.codec import Codec, SchemaRegistry
from streams.consume import Consumer, Decoder, Handler, Meta, Topics, make_consumer
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topic_names import TopicNames

T0_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the manual clock's default start


class ManualClock:
    """``clock()`` in seconds, moved only by the test."""

    def __init__(self, start_s: float = T0_S) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@dataclass(frozen=True)
class Sent:
    key: bytes | None
    value: bytes | None
    partition: int | None


class ListChannel:
    """A channel that keeps what was sent, in order."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.sent: list[Sent] = []

    async def send(self, *, key: bytes | None = None, value: bytes | None = None, partition: int | None = None) -> None:
        self.sent.append(Sent(key, value, partition))


@dataclass(frozen=True)
class Emitted:
    subject: str
    key: str
    record: dict[str, Any]


@dataclass(frozen=True)
class DeadLettered:
    meta: Meta
    reason_code: str
    reason: str


class FakePipeline:
    """Duck-typed :class:`streams.app.Pipeline` (see the module docstring)."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        settings: Settings | None = None,
        codec: Codec | None = None,
        clock: Callable[[], float] | None = None,
        redis: Any = None,
        partitions: tuple[int, ...] = (0,),
        hand_offs: bool = False,
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        self.metrics = metrics
        self.codec = codec if codec is not None else Codec(SchemaRegistry.load())
        self.clock = clock if clock is not None else ManualClock()
        self.topic_names = TopicNames.from_settings(self.settings)
        self.partitions = set(partitions)  # what owned_partitions() answers for every topic
        self.hand_offs = hand_offs
        self.handed_off: list[tuple[str, bytes]] = []
        self.followers: dict[str, list[Callable[[Meta], Awaitable[None]]]] = {}
        self.channels: dict[str, ListChannel] = {}
        self.tables: dict[str, dict[bytes, bytes]] = {}
        self.consumers: dict[str, tuple[Consumer, list[str]]] = {}
        self.timers: dict[str, Callable[[], Awaitable[None]]] = {}
        self.emitted: list[Emitted] = []
        self.dead_letters: list[DeadLettered] = []
        self._redis = redis
        self._offsets: dict[tuple[str, int], itertools.count[int]] = defaultdict(itertools.count)
        self._pumped: dict[str, int] = defaultdict(int)  # channel field -> messages already delivered

    # --- what a capability uses ---------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def redis(self) -> Any:
        if self._redis is None:
            raise RuntimeError("this FakePipeline has no Redis double (FakePipeline(redis=...))")
        return self._redis

    def channel(self, name: str) -> ListChannel:
        if name not in self.channels:
            self.channels[name] = ListChannel(getattr(self.topic_names, name))
        return self.channels[name]

    def table(self, name: str, help_text: str, *, write_behind: bool = False) -> dict[bytes, bytes]:
        return self.tables.setdefault(name, {})

    async def emit(self, subject: str, key: str, record: dict[str, Any]) -> None:
        payload = self.codec.encode_output(subject, record, self.settings.output_format)  # schema check
        self.emitted.append(Emitted(subject, key, record))
        target = SUBJECT_TOPIC_FIELD[subject]
        self.channel(target).sent.append(Sent(key.encode(), payload, None))
        partition = partition_for(key.encode(), self.settings.topic_partitions)
        if self.hand_offs and partition in self.partitions:
            meta = Meta(
                topic=getattr(self.topic_names, target),
                partition=partition,
                offset=-1,
                key=key.encode(),
                value=payload,
                timestamp_ms=self.now_ms(),
            )
            for listener in self.followers.get(target, ()):
                await listener(meta)

    def follow_emitted(self, target: str, listener: Callable[[Meta], Awaitable[None]]) -> None:
        """As :meth:`streams.app.Pipeline.follow_emitted`; the listeners are called only when
        built with ``hand_offs=True`` and the record's partition is one of ``partitions``."""
        self.followers.setdefault(target, []).append(listener)

    async def dead_letter(self, meta: Meta, reason_code: str, reason: str) -> None:
        self.metrics.dead_letters.labels(reason=reason_code).inc()
        self.dead_letters.append(DeadLettered(meta, reason_code, reason))

    def consume(
        self,
        topics: Topics,
        *,
        name: str,
        capability: str,
        handle: Handler,
        decode: Decoder | None = None,
        rejects: tuple[type[Exception], ...] = (),
        hands_off_to: tuple[str, ...] = (),
    ) -> Consumer:
        consumer, fields = make_consumer(
            self.topic_names, topics, name=name, capability=capability, handle=handle, decode=decode, rejects=rejects
        )
        self.consumers[name] = (consumer, fields)
        return consumer

    async def hand_off(self, target: str, key: bytes, value: bytes, meta: Meta) -> bool:
        """As :meth:`streams.app.Pipeline.hand_off` when built with ``hand_offs=True`` (the
        consumers of ``target`` get it now, where the partitioner puts ``key``); otherwise
        False, and the capability sends it on the channel (what most tests pump)."""
        if not self.hand_offs or partition_for(key, self.settings.topic_partitions) != meta.partition:
            return False
        self.handed_off.append((target, key))
        await self.deliver(target, value, key=key, partition=meta.partition, timestamp_ms=meta.timestamp_ms)
        return True

    def timer(self, interval_s: float, *, name: str) -> Callable[[Callable[[], Awaitable[None]]], Any]:
        def register(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
            self.timers[name] = fn
            return fn

        return register

    def owned_partitions(self, topic: str) -> set[int]:
        return set(self.partitions)

    # --- what a test uses -----------------------------------------------------------------------

    def subjects(self) -> list[str]:
        return [e.subject for e in self.emitted]

    async def deliver(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int = 0,
        timestamp_ms: int | None = None,
        headers: Any = None,
        to: str | None = None,
    ) -> Meta:
        """One message on the TopicNames field ``topic``, handed to every consumer of it (or only
        to the consumer named ``to``) as Faust would: one after the other, each through the
        runtime's consume path."""
        name = getattr(self.topic_names, topic)
        meta = Meta(
            topic=name,
            partition=partition,
            offset=next(self._offsets[(name, partition)]),
            key=key,
            value=value,
            timestamp_ms=self.now_ms() if timestamp_ms is None else timestamp_ms,
            headers=headers,
        )
        targets = [c for n, (c, fields) in self.consumers.items() if topic in fields and to in (None, n)]
        if not targets:
            raise LookupError(f"no consumer of {topic!r}" + (f" named {to!r}" if to else ""))
        for consumer in targets:
            await consumer.process(meta, self.dead_letter)
        return meta

    async def deliver_record(self, topic: str, subject: str, record: dict[str, Any], **kwargs: Any) -> Meta:
        """An output record (encoded as the runtime would) delivered on ``topic``."""
        payload = self.codec.encode_output(subject, record, self.settings.output_format)
        return await self.deliver(topic, payload, **kwargs)

    async def pump(self, *topics: str, rounds: int = 10) -> int:
        """Deliver what was sent on these channels since the last pump to their consumers, until
        nothing new was sent (at most ``rounds`` passes); returns how many were delivered."""
        delivered = 0
        for _ in range(rounds):
            moved = 0
            for topic in topics:
                sent = self.channel(topic).sent
                while self._pumped[topic] < len(sent):
                    message = sent[self._pumped[topic]]
                    self._pumped[topic] += 1
                    await self.deliver(topic, message.value, key=message.key, partition=message.partition or 0)
                    moved += 1
            delivered += moved
            if not moved:
                return delivered
        raise AssertionError(f"still sending after {rounds} rounds of pump{topics}")

    async def fire(self, timer: str) -> None:
        await self.timers[timer]()
