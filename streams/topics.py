"""Topic names and creation. Every topic is keyed by lead id (or visitor id), so all events of
one lead share a partition; all are created up front with the configured partition count,
because Faust requires a table's source and changelog topics to be co-partitioned and the
broker's auto-create is switched off."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.connections import kafka_client_kwargs
from streams.settings import Settings

# Re-exported here (importers use streams.topics); their home is below settings, in streams.topic_names.
from streams.topic_names import INPUT_TOPIC_FIELD as INPUT_TOPIC_FIELD
from streams.topic_names import OUTPUT_TOPIC_FIELD as OUTPUT_TOPIC_FIELD
from streams.topic_names import TopicNames as TopicNames

log = logging.getLogger(__name__)

# Kafka's default message.max.bytes / max.message.bytes (1 MiB + 12 bytes of batch framing).
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1048588


# Every Faust table of the pipeline (streams.app.Pipeline.table); a unit test keeps this in step
# with create_app. Their changelogs are created here, with leadflow's configuration, before
# Faust would create them with broker defaults.
TABLE_NAMES = (
    "lead_to_state",
    "visitor_to_activity",
    "review_bucket_to_leads",
    "lead_to_sla_clock",
    "lead_to_assignment",
    "lead_to_account_facts",
    "lead_to_shadow_state",  # only with LEADFLOW_SHADOW_MODEL_PATH set
)
_HOUR_MS = 3_600_000


def changelog_topics(settings: Settings) -> tuple[str, ...]:
    """Faust's changelog topic names (``<app id>-<table>-changelog``) of TABLE_NAMES."""
    return tuple(f"{settings.app_id}-{table}-changelog" for table in TABLE_NAMES)


def topic_config(settings: Settings, topic: str) -> dict[str, str]:
    """Configuration a topic is created with (docs/privacy.md: who holds what, how long).

    Changelogs: compacted; an erased lead's old values are compacted away at most
    ``changelog_max_compaction_lag_hours`` after its tombstone (KIP-354 also rolls the active
    segment), the tombstone is kept ``changelog_tombstone_retention_hours`` so a recovering
    worker still reads it. Internal topics and the dead-letter topic (emails, names, original
    bytes): deleted after ``internal_retention_hours``. Inputs and outputs: ``io_retention_hours``.
    """
    if topic.endswith("-changelog"):
        return {
            "cleanup.policy": "compact",
            "max.compaction.lag.ms": str(settings.changelog_max_compaction_lag_hours * _HOUR_MS),
            "delete.retention.ms": str(settings.changelog_tombstone_retention_hours * _HOUR_MS),
        }
    names = TopicNames.from_settings(settings)
    if topic in (names.lead_events, names.visitor_events, names.sla_commands, names.dead_letters):
        return {"cleanup.policy": "delete", "retention.ms": str(settings.internal_retention_hours * _HOUR_MS)}
    hours = settings.io_retention_hours
    return {"cleanup.policy": "delete", "retention.ms": str(-1 if hours < 0 else hours * _HOUR_MS)}


class TopicError(RuntimeError):
    """leadflow's topics cannot be made ready with these settings; the message is one line."""


# Another worker may create a topic between our list and our create: that is success.
_TOPIC_ALREADY_EXISTS = 36


def creation_errors(response: Any) -> list[str]:
    """One line per topic a CreateTopics response refused (``'t': InvalidReplicationFactorError
    (Replication factor: 3 larger than available brokers: 1.)``); an existing topic is none."""
    from aiokafka.errors import for_code

    problems = []
    for entry in response.topic_errors:  # (topic, error_code[, error_message]) by version
        topic, code = entry[0], entry[1]
        if code in (0, _TOPIC_ALREADY_EXISTS):
            continue
        detail = " ".join(str(entry[2]).split())[:200] if len(entry) > 2 and entry[2] else ""
        problems.append(f"{topic!r}: {for_code(code).__name__}" + (f" ({detail})" if detail else ""))
    return problems


async def ensure_topics(settings: Settings, names: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """Create missing topics with the configured partitions/replication; returns those created.

    An existing topic with a different partition count is an error (state would be split
    across partitions that tables cannot follow), reported with the topic's name.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    wanted = (
        list(names) if names is not None else [*TopicNames.from_settings(settings).all(), *changelog_topics(settings)]
    )
    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        t,
                        settings.topic_partitions,
                        settings.topic_replication,
                        topic_configs=topic_config(settings, t),
                    )
                    for t in missing
                ]
            )
            failed = creation_errors(response)
            if failed:  # a worker without its topics would start and consume nothing
                more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
                raise TopicError(
                    f"cannot create Kafka topic {failed[0]}{more}; check LEADFLOW_TOPIC_PARTITIONS="
                    f"{settings.topic_partitions}, LEADFLOW_TOPIC_REPLICATION="
                    f"{settings.topic_replication} and the broker's limits"
                )
        present = [t for t in wanted if t in existing]
        if present:
            described = await admin.describe_topics(present)
            for topic in described:
                n = len(topic.get("partitions", []))
                if n != settings.topic_partitions:
                    raise TopicError(
                        f"topic {topic['topic']!r} has {n} partitions but "
                        f"LEADFLOW_TOPIC_PARTITIONS={settings.topic_partitions}; "
                        "recreate it or change the setting"
                    )
        # Metadata propagation: wait until every topic is visible before consumers subscribe.
        for _ in range(50):
            if set(wanted) <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
        if missing:
            log.info("created %d topics: %s", len(missing), ", ".join(missing))
        return missing
    finally:
        await admin.close()


async def message_limit(settings: Settings, names: list[str] | tuple[str, ...] | None = None) -> int:
    """The smallest effective ``max.message.bytes`` of ``names`` (default: the dead-letter and
    output topics, where records grow with their input), as the broker reports it: the topic's
    own override or the broker's ``message.max.bytes``. The producer and the dead-letter sizing
    take it from here, so they cannot disagree with the broker.
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from streams.deadletter import MIN_DEAD_LETTER_BYTES

    if names is None:
        topic_names = TopicNames.from_settings(settings)
        names = [getattr(topic_names, field) for field in OUTPUT_TOPIC_FIELD.values()]
    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings), request_timeout_ms=15000)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs={"max.message.bytes": None}) for name in names]
        )
    finally:
        await admin.close()
    limits: dict[str, int] = {}
    for response in responses:
        for error_code, error_message, _type, name, entries, *_ in response.resources:
            if error_code:
                raise RuntimeError(
                    f"cannot read max.message.bytes of topic {name!r}: "
                    f"error {error_code} {error_message or ''}".rstrip()
                )
            for entry in entries:
                if entry[0] == "max.message.bytes":
                    limits[name] = int(entry[1])
    missing = sorted(set(names) - limits.keys())
    if missing:
        raise RuntimeError(f"the broker reported no max.message.bytes for topics {', '.join(missing)}")
    topic, limit = min(limits.items(), key=lambda item: item[1])
    room = limit - settings.dead_letter_margin_bytes
    if room < MIN_DEAD_LETTER_BYTES:
        raise RuntimeError(
            f"topic {topic!r} has max.message.bytes={limit}: minus LEADFLOW_DEAD_LETTER_MARGIN_BYTES="
            f"{settings.dead_letter_margin_bytes} that leaves {room} bytes, less than the "
            f"{MIN_DEAD_LETTER_BYTES} a dead letter needs; raise the topic's limit or lower the margin"
        )
    return limit
