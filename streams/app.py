"""The runtime a capability registers on: the Faust app, typed access to its topics and
tables, output encoding and the dead-letter policy (:class:`Pipeline`).

It knows no capability: :mod:`leadflow.compose` (the composition root) builds a pipeline with
:func:`build_pipeline`, hands it to each capability's ``register`` and calls
:func:`finish_pipeline`. Nothing is read from the environment; everything arrives as arguments.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from aiokafka.partitioner import DefaultPartitioner
from mode.supervisors import CrashingSupervisor

from streams import faust_bulk_restore, faust_flush, faust_recovery
from streams import write_behind as held_writes
from streams.codec import Codec, RemoteSchemas, SchemaRegistry
from streams.connections import faust_broker_credentials, kafka_client_kwargs, redis_async, schema_registry_client
from streams.consume import Consumer, Decoder, Handler, Meta, Topics, make_consumer
from streams.deadletter import dead_letter_message, deliver
from streams.metrics import Metrics
from streams.ratelimit import LogSummary
from streams.settings import Settings
from streams.topics import KAFKA_DEFAULT_MAX_MESSAGE_BYTES, OUTPUT_TOPIC_FIELD, TopicNames

log = logging.getLogger(__name__)

EmittedListener = Callable[[Meta], Awaitable[None]]

# Which output topic each Avro subject goes to.
SUBJECT_TOPIC_FIELD = OUTPUT_TOPIC_FIELD


_PARTITIONER = DefaultPartitioner()


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a keyed send goes to: aiokafka's default partitioner (Kafka's murmur2, as
    Java clients), which Faust's producer uses."""
    ids = _partition_ids(partitions)
    return cast(int, _PARTITIONER(key, ids, ids))


@functools.lru_cache(maxsize=8)
def _partition_ids(partitions: int) -> list[int]:  # once per count, not per event
    return list(range(partitions))


@dataclass(frozen=True)
class Subscription:
    """A consumer, the TopicNames fields it reads, and those it may hand events to in-process."""

    consumer: Consumer
    fields: list[str]
    hands_off_to: tuple[str, ...] = ()

    @property
    def topics(self) -> set[str]:
        return {*self.fields, *self.hands_off_to}


@dataclass
class Pipeline:
    """Everything an agent module needs; handed to each capability's ``register``."""

    settings: Settings
    app: faust.App
    topic_names: TopicNames
    codec: Codec
    metrics: Metrics
    clock: Callable[[], float]
    channels: dict[str, faust.TopicT] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    # In registration order; the agents are built by finish_pipeline.
    subscriptions: list[Subscription] = field(default_factory=list)
    redis_factory: Callable[[], Any] | None = None
    # The smallest max.message.bytes of the topics this worker writes (streams.topics.message_limit):
    # the producer's max_request_size, and what a dead letter is sized to fit.
    message_limit: int = KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    _redis: Any = None
    _agents_built: bool = False
    # (source topic, target field) -> (target topic, the consumers hand_off delivers to)
    _hand_offs: dict[tuple[str, str], tuple[str, tuple[Consumer, ...]]] = field(default_factory=dict)
    # TopicNames field -> what follow_emitted registered on it
    _followers: dict[str, list[EmittedListener]] = field(default_factory=dict)
    # One warning per reason, then a tally every 10 s (a fuzz run once logged 48,000 lines);
    # leadflow_dead_letters_total{reason} counts every one.
    dead_letter_log: LogSummary = field(
        default_factory=lambda: LogSummary(log, "dead-lettered {total:,} events in the last {interval}")
    )

    def redis(self) -> Any:
        """The shared ``redis.asyncio.Redis`` client, created on first use (never at import).

        Tests may pass ``redis_factory``; production connects to ``settings.redis_url``. Typed
        Any: redis-py types its asyncio commands ``Awaitable[Any] | Any``, so callers gain nothing.
        """
        if self._redis is None:
            if self.redis_factory is not None:
                self._redis = self.redis_factory()
            else:
                self._redis = redis_async(self.settings)
        return self._redis

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def channel(self, name: str) -> faust.TopicT:
        """Faust topic object for a TopicNames field (raw bytes in and out)."""
        if name not in self.channels:
            self.channels[name] = self.app.topic(
                getattr(self.topic_names, name),
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                partitions=self.settings.topic_partitions,
            )
        return self.channels[name]

    def table(self, name: str, help_text: str, *, write_behind: bool = False) -> Any:
        """A changelog-backed table of bytes -> bytes (values are orjson, see agents.domain.wire).

        ``write_behind``: a table whose value per key stands alone (no index of other keys in
        it) holds its writes until the next offset commit, one changelog record per key per
        commit (:mod:`streams.write_behind`; ``LEADFLOW_STATE_WRITE_BEHIND_KEYS``, 0 = off)."""
        if name not in self.tables:
            table: Any = self.app.Table(
                name,
                default=None,
                partitions=self.settings.topic_partitions,
                key_type=bytes,  # bytes -> Faust's "raw" codec for keys and values
                value_type=bytes,
                help=help_text,
            )
            if write_behind and self.settings.state_write_behind_keys:
                table = held_writes.WriteBehindTable(table, max_keys=self.settings.state_write_behind_keys)
                held_writes.register(self.app, table)
            self.tables[name] = table
        return self.tables[name]

    async def emit(self, subject: str, key: str, record: dict[str, Any]) -> None:
        """Avro-encode an output record and send it, keyed by lead id; then hand it to the
        listeners :meth:`follow_emitted` registered on its topic, when this worker owns the
        partition Kafka puts it on."""
        target = SUBJECT_TOPIC_FIELD[subject]
        payload = self.codec.encode_output(subject, record, self.settings.output_format)
        key_bytes = key.encode()
        channel = self.channel(target)
        sent = await channel.send(key=key_bytes, value=payload)
        # send() returns a FutureMessage, an asyncio.Future, typed as an Awaitable.
        faust_flush.track_output(
            cast("asyncio.Future[Any]", sent)
        )  # the state write's changelog record waits for its ack
        listeners = self._followers.get(target)
        if listeners:
            event = faust.current_event()
            partition = self.partition_of(key_bytes)
            # Only where the record's partition is the current event's: that partition's tables
            # (and its changelog records) are this agent's to write (all topics are co-partitioned).
            if event is not None and event.message.partition == partition:
                meta = Meta(
                    topic=getattr(self.topic_names, target),
                    partition=partition,
                    offset=event.message.offset,
                    key=key_bytes,
                    value=payload,
                    timestamp_ms=self.now_ms(),
                )
                for listener in listeners:
                    await listener(meta)

    def follow_emitted(self, target: str, listener: EmittedListener) -> None:
        """Hand every record this worker emits on the TopicNames field ``target`` to
        ``listener(meta)`` in-process too, right after it is sent (the bytes sent, and a Meta
        naming the topic and partition; the offset is the current input's).

        Why: a consumer of one of the worker's own outputs (routing reads the MQLs scoring
        emits) can act on it without the record's round trip through Kafka (issue 14). The
        record still goes to Kafka, and the consumer still reads it there: that is the
        guarantee, the in-process call only the fast path, so the listener must dedupe the
        copy it reads back, must not raise, and must not wait long (it runs inside the
        emitting agent)."""
        self._followers.setdefault(target, []).append(listener)

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
        """Register consumer ``name`` on ``topics`` (a TopicNames field with ``decode``, or a
        mapping field -> decoder): each message is decoded once and its typed value handed to
        ``handle(value, meta)``; rejections and processing errors are dead-lettered
        (:mod:`streams.consume`). ``capability`` is named in logs and dead letters. The Faust
        agents are built once every capability has registered (:meth:`build_agents`).
        ``hands_off_to``: TopicNames fields this consumer may deliver to in-process
        (:meth:`hand_off`); their consumers then share its agent."""
        consumer, fields = make_consumer(
            self.topic_names, topics, name=name, capability=capability, handle=handle, decode=decode, rejects=rejects
        )
        if self._agents_built:
            raise RuntimeError(f"consume({name!r}) after the pipeline's agents were built (finish_pipeline)")
        self.subscriptions.append(Subscription(consumer, fields, hands_off_to))
        return consumer

    def build_agents(self) -> list[str]:
        """One Faust agent per group of consumers that share a topic (:func:`agent_groups`):
        a message is fetched, buffered and iterated once, and handed to each consumer of its
        topic in registration order. Returns the agents' names."""
        self._agents_built = True
        return [self._agent_for(group) for group in agent_groups(self.subscriptions)]

    def _agent_for(self, group: list[Subscription]) -> str:
        fields = list(dict.fromkeys(f for sub in group for f in sub.fields))
        by_topic: dict[str, tuple[Consumer, ...]] = {}
        for field_name in fields:
            topic = getattr(self.topic_names, field_name)
            by_topic[topic] = tuple(sub.consumer for sub in group if field_name in sub.fields)
        for sub in group:
            for target in sub.hands_off_to:
                target_topic = getattr(self.topic_names, target)
                for read in sub.fields:
                    self._hand_offs[(getattr(self.topic_names, read), target)] = (
                        target_topic,
                        by_topic.get(target_topic, ()),
                    )
        name = "+".join(sub.consumer.name for sub in group)
        if len(fields) == 1:
            source = self.channel(fields[0])
        else:
            source = self.app.topic(
                *by_topic,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
            )
        dead_letter = self.dead_letter

        # concurrency=1: Faust may commit an offset past a message still in flight otherwise
        # (docs/faust-pitfalls.md item 2, faust-streaming #606), and a lead's events must be
        # handled in order.
        @self.app.agent(source, name=name, concurrency=1)
        async def agent(stream: faust.StreamT[bytes]) -> None:
            async for event in stream.events():
                meta = Meta.of(event.message)
                for consumer in by_topic[meta.topic]:
                    await consumer.process(meta, dead_letter)

        return name

    async def hand_off(self, target: str, key: bytes, value: bytes, meta: Meta) -> bool:
        """Deliver ``value`` to the consumers of the TopicNames field ``target`` in-process, as
        if it had been sent there keyed by ``key`` and read back; False (nothing done) when it
        must be sent instead. In-process only where Kafka would put it: the partition the
        producer's partitioner gives ``key`` is the message's own (every topic has the same
        partition count, checked at start, so the partition's tables are this agent's).

        Why: an input already keyed by lead id need not make a round trip through the lead
        events topic (one send, one fetch and one agent iteration less per event, issue 14).
        The consumers see the same bytes and a Meta naming ``target``; redelivery of the input
        re-delivers the same value (deterministic event ids), which they already dedupe."""
        target_topic, consumers = self._hand_offs.get((meta.topic, target), ("", ()))
        if not consumers or self.partition_of(key) != meta.partition:
            return False
        local = Meta(
            topic=target_topic,
            partition=meta.partition,
            offset=meta.offset,
            key=key,
            value=value,
            timestamp_ms=meta.timestamp_ms,
            headers=meta.headers,
        )
        for consumer in consumers:
            await consumer.process(local, self.dead_letter)
        self.metrics.hand_offs.inc()
        return True

    def partition_of(self, key: bytes) -> int:
        return partition_for(key, self.settings.topic_partitions)

    def timer(self, interval_s: float, *, name: str) -> Callable[[Callable[[], Awaitable[None]]], Any]:
        """Decorator: run ``fn()`` every ``interval_s`` on every worker. A timer must not write
        tables (docs/faust-pitfalls.md item 5): it sends a command the owning agent applies."""
        decorator: Callable[[Callable[[], Awaitable[None]]], Any] = self.app.timer(interval_s, name=name)
        return decorator

    def owned_partitions(self, topic: str) -> set[int]:
        """Partitions of the TopicNames field ``topic`` this worker owns (active, not standby)."""
        name = getattr(self.topic_names, topic)
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == name}

    async def dead_letter(self, meta: Meta, reason_code: str, reason: str) -> None:
        """Park a record on the dead-letter topic (delivery confirmed, retried until the broker
        accepts it), counted by reason and logged at a bounded rate."""
        self.metrics.dead_letters.labels(reason=reason_code).inc()
        self.dead_letter_log.event(
            reason_code,
            "dead-lettered %s[%d]@%d: %s: %s (further %s dead letters summarised every %gs)",
            meta.topic,
            meta.partition,
            meta.offset,
            reason_code,
            reason,
            reason_code,
            self.dead_letter_log.interval_s,
        )
        key, payload = dead_letter_message(
            meta,
            reason_code,
            reason,
            failed_at_ms=self.now_ms(),
            room=self.message_limit - self.settings.dead_letter_margin_bytes,
            encode=lambda r: self.codec.encode_output("dead_letter", r, self.settings.output_format),
        )
        channel = self.channel("dead_letters")

        def on_failure(exc: BaseException) -> None:
            self.metrics.dead_letter_delivery_failures.inc()
            # The exception text is the broker's/client's (no payload); the partition waits.
            log.warning(
                "dead letter for %s[%d]@%d not delivered (%s: %s); retrying, partition blocked",
                meta.topic,
                meta.partition,
                meta.offset,
                type(exc).__name__,
                exc,
            )

        await deliver(
            lambda: channel.send(key=key, value=payload),
            on_failure=on_failure,
            initial_s=self.settings.dead_letter_retry_initial_s,
            max_s=self.settings.dead_letter_retry_max_s,
            ack_timeout_s=self.settings.dead_letter_ack_timeout_s,
        )


def faust_app(settings: Settings, message_limit: int = KAFKA_DEFAULT_MAX_MESSAGE_BYTES) -> faust.App:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    faust_flush.install()  # offsets are committed only after the changelog records are handed over
    faust_recovery.install()  # no record delivered, then dropped, while stream partitions resume after recovery
    faust_bulk_restore.install()  # a cold table restore reads its changelog in bulk (with the app's BulkRestore)
    app = faust.App(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=faust_broker_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_commit_interval=settings.broker_commit_interval_s,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        producer_linger=settings.producer_linger_ms / 1000,
        producer_max_batch_size=settings.producer_max_batch_bytes,
        consumer_max_fetch_size=settings.consumer_max_fetch_bytes,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # What the topics accept (read from the broker at start): a larger record would be
        # refused by the broker after the fact; dead letters are sized to fit under it.
        producer_max_request_size=message_limit,
        # The lead API (leadflow/api) only: Faust's own views would show raw table contents
        # and the cluster layout to anyone who can reach the port, without the bearer token.
        web_enabled=bool(settings.api_port),
        web_port=settings.api_port or None,
        web_bind=settings.api_bind,
        canonical_url=settings.api_canonical_url,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        autodiscover=False,
        # Agents crash the worker instead of dying silently while it keeps running;
        # the process supervisor restarts it and state comes back from the changelog.
        agent_supervisor=CrashingSupervisor,
    )
    if settings.bulk_restore_min_records:
        restore = faust_bulk_restore.BulkRestore(
            client_kwargs=kafka_client_kwargs(settings),
            min_records=settings.bulk_restore_min_records,
            fetch_bytes=settings.consumer_max_fetch_bytes,
        )
        setattr(app, faust_bulk_restore.APP_ATTRIBUTE, restore)
    return app


def build_pipeline(
    settings: Settings,
    *,
    metrics: Metrics,
    codec: Codec | None = None,
    clock: Callable[[], float] = time.time,
    redis_factory: Callable[[], Any] | None = None,
    message_limit: int = KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
) -> Pipeline:
    """The runtime a capability registers on (no capability yet): Faust app, topics, codec,
    metrics (built on the application's vocabulary by the composition root), clock.
    ``message_limit``: the topics' max.message.bytes as the worker read it
    (default: Kafka's own default, the safe choice when the broker was not asked)."""
    return Pipeline(
        settings=settings,
        app=faust_app(settings, message_limit),
        topic_names=TopicNames.from_settings(settings),
        codec=codec or build_codec(settings, register=True),
        metrics=metrics,
        clock=clock,
        redis_factory=redis_factory,
        message_limit=message_limit,
    )


def finish_pipeline(pipeline: Pipeline) -> Pipeline:
    """The agents (one per group of consumers sharing a topic) and the runtime's own timers,
    once every capability is registered."""
    pipeline.build_agents()
    register_lag_gauge(pipeline)
    register_log_summaries(pipeline)
    return pipeline


def agent_groups(subscriptions: list[Subscription]) -> list[list[Subscription]]:
    """Subscriptions grouped so that no topic is read by two agents: consumers whose topics
    (read, or handed off to) overlap, transitively, share one agent, in registration order.

    Why: each agent on a topic costs Faust a queue, an iteration and an ack per message; three
    capabilities on the lead events topic tripled that work (issue 14). One agent per topic
    also orders the capabilities on a message, and makes a hand-off safe: the consumers it
    calls never run concurrently with themselves on the same lead. What it does not change: a
    consumer that waits (Redis down) holds its topic's partition, as it did before once
    Faust's shared fetch filled the waiting agent's buffer."""
    groups: list[tuple[set[str], list[Subscription]]] = []
    for sub in subscriptions:
        topics, members = sub.topics, [sub]
        for group in [g for g in groups if g[0] & topics]:
            groups.remove(group)
            topics |= group[0]
            members = group[1] + members
        groups.append((topics, members))
    order = {id(sub): i for i, sub in enumerate(subscriptions)}
    ordered = [sorted(members, key=lambda sub: order[id(sub)]) for _, members in groups]
    return sorted(ordered, key=lambda members: order[id(members[0])])


def build_codec(settings: Settings, *, register: bool) -> Codec:
    """The codec for these settings: ids from ``schemas/registry.yaml``, or - with
    LEADFLOW_SCHEMA_REGISTRY_URL - from that registry. ``register``: put leadflow's schemas
    there now (a worker at start, before it consumes); readers such as ``tail`` only fetch ids.

    Raises RegistryUnavailable / SchemaIncompatible with a one-line message.
    """
    registry = SchemaRegistry.load()
    client = schema_registry_client(settings)
    if client is None:
        return Codec(registry)
    codec = Codec(registry, RemoteSchemas(client, TopicNames.from_settings(settings).value_subjects()))
    if register:
        codec.register_schemas()
    return codec


def register_log_summaries(pipeline: Pipeline) -> None:
    """Flush rate-limited log summaries on time, even when no further event arrives."""
    summary = pipeline.dead_letter_log

    @pipeline.timer(summary.interval_s, name="flush_log_summaries")
    async def flush_log_summaries() -> None:
        summary.flush()


def register_lag_gauge(pipeline: Pipeline, interval_s: float = 5.0) -> None:
    """``leadflow_consumer_lag{topic,partition}``: highwater minus committed offset for the
    partitions this worker consumes (changelogs excluded; recovery has its own progress)."""
    app = pipeline.app

    @pipeline.timer(interval_s, name="measure_consumer_lag")
    async def measure_consumer_lag() -> None:
        consumer = app.consumer
        lags: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            if tp.topic.endswith("-changelog") or "__assignor" in tp.topic:
                continue
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # not fetched yet: no figure rather than a wrong one
                continue
            # faust keeps no public accessor (ConsumerT does not declare it; its Consumer has it)
            committed = consumer._committed_offset.get(tp)  # type: ignore[attr-defined]
            if highwater is not None and highwater >= 0:
                lags[(tp.topic, tp.partition)] = max(0, highwater - (committed or 0))
        pipeline.metrics.set_consumer_lag(lags)
