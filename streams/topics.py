"""Topic names and creation. Every topic is keyed by lead id (or visitor id), so all events of
one lead share a partition; all are created up front with the configured partition count,
because Faust requires a table's source and changelog topics to be co-partitioned and the
broker's auto-create is switched off."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, fields

from streams.connections import kafka_client_kwargs
from streams.settings import Settings

log = logging.getLogger(__name__)


# Which output topic (TopicNames field) each output subject goes to; one subject per topic.
OUTPUT_TOPIC_FIELD = {
    "lead_scored": "lead_scored",
    "lead_qualified": "mqls",
    "lead_assigned": "assignments",
    "sla_breached": "sla_breaches",
    "lead_dispositioned": "dispositions",
    "data_quality_issue": "data_quality",
    "dead_letter": "dead_letters",
}
# Which input topic each input subject is read from.
INPUT_TOPIC_FIELD = {
    "form_submitted": "form_submits",
    "web_activity": "web_activity",
    "crm_status": "crm_status",
}


@dataclass(frozen=True, slots=True)
class TopicNames:
    # Inputs, published by other systems (Avro or JSON).
    form_submits: str
    web_activity: str
    crm_status: str
    # Internal, canonical events re-keyed by lead id / visitor id (orjson).
    lead_events: str
    visitor_events: str
    sla_commands: str
    # Outputs, Avro, keyed by lead id.
    lead_scored: str
    mqls: str
    assignments: str
    sla_breaches: str
    dispositions: str
    data_quality: str
    dead_letters: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "TopicNames":
        p = settings.topic_prefix
        return cls(
            form_submits=f"{p}.in.form-submits",
            web_activity=f"{p}.in.web-activity",
            crm_status=f"{p}.in.crm-status",
            lead_events=f"{p}.internal.lead-events",
            visitor_events=f"{p}.internal.visitor-events",
            sla_commands=f"{p}.internal.sla-commands",
            lead_scored=f"{p}.out.lead-scored",
            mqls=f"{p}.out.mqls",
            assignments=f"{p}.out.assignments",
            sla_breaches=f"{p}.out.sla-breaches",
            dispositions=f"{p}.out.dispositions",
            data_quality=f"{p}.out.data-quality",
            dead_letters=f"{p}.dlq",
        )

    def output_subject(self, topic: str) -> str | None:
        """The subject written to an output topic (how a JSON output is read back), or None."""
        for subject, name in OUTPUT_TOPIC_FIELD.items():
            if getattr(self, name) == topic:
                return subject
        return None

    def value_subjects(self) -> dict[str, str]:
        """leadflow subject -> Schema Registry subject of its topic (TopicNameStrategy: "<topic>-value")."""
        fields = {**INPUT_TOPIC_FIELD, **OUTPUT_TOPIC_FIELD}
        return {subject: f"{getattr(self, name)}-value" for subject, name in fields.items()}

    def inputs(self) -> tuple[str, ...]:
        return (self.form_submits, self.web_activity, self.crm_status)

    def all(self) -> tuple[str, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


async def ensure_topics(settings: Settings, names: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """Create missing topics with the configured partitions/replication; returns those created.

    An existing topic with a different partition count is an error (state would be split
    across partitions that tables cannot follow), reported with the topic's name.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    wanted = list(names) if names is not None else list(TopicNames.from_settings(settings).all())
    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(t, settings.topic_partitions, settings.topic_replication) for t in missing]
            )
        present = [t for t in wanted if t in existing]
        if present:
            described = await admin.describe_topics(present)
            for topic in described:
                n = len(topic.get("partitions", []))
                if n != settings.topic_partitions:
                    raise RuntimeError(
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
