"""The one consume path: what every agent does with each message, written once.

A capability hands the runtime a decoder per topic and one handler
(:meth:`streams.app.Pipeline.consume`); the runtime iterates the stream and, per message,
decodes once into a typed value, hands it to the handler, and applies the dead-letter policy:

- a decoder (or handler) that *rejects* the message - :class:`~streams.codec.DecodeError`,
  :class:`WrongKind`, or an exception type the capability lists in ``rejects``, each carrying
  ``reason_code`` and ``detail`` - sends it to the dead-letter topic with that reason;
- a Kafka client error (a send that failed: the broker, not the record) is raised: the agent
  crashes the worker (``CrashingSupervisor``), which restarts and processes the record again -
  dead-lettering a valid record because the broker hiccupped would lose it;
- any other exception is a bug that must not stop the partition: it is logged with topic,
  partition and offset and the record is dead-lettered as ``processing_error``, naming the
  capability;
- a decoder returning None means "not for this consumer": the message is skipped.

Every dead letter is counted (``leadflow_dead_letters_total{reason}``) by the pipeline's
``dead_letter``. The same :class:`Consumer` runs on Kafka and in
:class:`streams.testing.FakePipeline`, so unit tests exercise this very code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from streams.codec import Codec, DecodeError
from streams.deadletter import PROCESSING_ERROR, UNKNOWN_KIND

log = logging.getLogger(__name__)

# Not the record's fault: raised, so the record is retried after a restart instead of parked.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (KafkaError, ProducerSendError)

Decoder = Callable[[bytes | None], Any]  # raw value -> typed value, or None to skip
Topics = str | Mapping[str, Decoder]  # a TopicNames field, or TopicNames field -> its decoder


@dataclass(frozen=True, slots=True)
class Meta:
    """Where a message came from (and its raw bytes, for a dead letter)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    timestamp_ms: int | None = None  # the broker's timestamp
    headers: Any = None

    @classmethod
    def of(cls, message: Any) -> Meta:
        """From a Faust message."""
        ts = message.timestamp
        return cls(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key if isinstance(message.key, bytes) else None,
            value=message.value if isinstance(message.value, bytes) else None,
            timestamp_ms=int(ts * 1000) if ts else None,
            headers=message.headers,
        )


Handler = Callable[[Any, Meta], Awaitable[None]]
DeadLetter = Callable[[Meta, str, str], Awaitable[None]]


class WrongKind(Exception):
    """A record of another type than the topic carries (dead-lettered as ``unknown_kind``)."""

    reason_code = UNKNOWN_KIND

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


def record_reader(codec: Codec, subject: str, topic: str) -> Decoder:
    """A decoder of leadflow's own output records (Avro, or JSON with ``output_format=json``):
    the ``subject`` record, or :class:`WrongKind` when the message holds another one."""

    def decode(raw: bytes | None) -> dict[str, Any]:
        got, record = codec.decode(raw, subject)  # type: ignore[arg-type]
        if got != subject:
            raise WrongKind(f"expected {subject} on the {topic} topic, got {got!r}")
        return record

    return decode


@dataclass(frozen=True)
class Consumer:
    """One agent's consume path: ``decoders`` by topic *name*, one ``handle``."""

    name: str
    capability: str  # named in logs and in processing_error dead letters
    decoders: Mapping[str, Decoder]
    handle: Handler
    rejects: tuple[type[Exception], ...]

    async def process(self, meta: Meta, dead_letter: DeadLetter) -> None:
        try:
            value = self.decoders[meta.topic](meta.value)
            if value is not None:
                await self.handle(value, meta)
        except self.rejects as exc:
            await dead_letter(meta, exc.reason_code, exc.detail)  # type: ignore[attr-defined]
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # a bug must not stop the partition: park the record
            log.exception("%s failed at %s[%d]@%d", self.capability, meta.topic, meta.partition, meta.offset)
            await dead_letter(meta, PROCESSING_ERROR, f"{type(exc).__name__} in {self.capability}")


def make_consumer(
    topic_names: Any,
    topics: Topics,
    *,
    name: str,
    capability: str,
    handle: Handler,
    decode: Decoder | None = None,
    rejects: tuple[type[Exception], ...] = (),
) -> tuple[Consumer, list[str]]:
    """(consumer, the TopicNames fields it reads). ``topics``: one field with ``decode``, or a
    mapping field -> decoder."""
    if isinstance(topics, str):
        if decode is None:
            raise TypeError(f"consume({topics!r}) needs decode=")
        topics = {topics: decode}
    elif decode is not None:
        raise TypeError("decode= goes with a single topic; give a mapping topic -> decoder instead")
    decoders = {getattr(topic_names, field): decoder for field, decoder in topics.items()}
    consumer = Consumer(name, capability, decoders, handle, (DecodeError, WrongKind, *rejects))
    return consumer, list(topics)
