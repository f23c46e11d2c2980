"""Topic names, derived from the topic prefix alone (no settings, no Kafka).

Below ``streams.settings`` (whose validator checks the longest name against Kafka's limit) and
``streams.topics`` (creation, configuration), which both import it; ``streams.topics``
re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol


class HasTopicPrefix(Protocol):
    """What ``TopicNames.from_settings`` reads of the settings."""

    @property
    def topic_prefix(self) -> str: ...


# Which output topic (TopicNames field) each output subject goes to; one subject per topic.
OUTPUT_TOPIC_FIELD = {
    "lead_scored": "lead_scored",
    "lead_qualified": "mqls",
    "lead_assigned": "assignments",
    "sla_breached": "sla_breaches",
    "lead_dispositioned": "dispositions",
    "data_quality_issue": "data_quality",
    "dead_letter": "dead_letters",
    "lead_erased": "erasures",
    "shadow_decision": "shadow_decisions",
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
    routing_retries: str
    # Outputs, Avro, keyed by lead id.
    lead_scored: str
    mqls: str
    assignments: str
    sla_breaches: str
    dispositions: str
    data_quality: str
    dead_letters: str
    erasures: str
    shadow_decisions: str  # candidate vs live model disagreements (LEADFLOW_SHADOW_MODEL_PATH)

    @classmethod
    def from_settings(cls, settings: HasTopicPrefix) -> TopicNames:
        return cls.for_prefix(settings.topic_prefix)

    @classmethod
    def for_prefix(cls, p: str) -> TopicNames:
        return cls(
            form_submits=f"{p}.in.form-submits",
            web_activity=f"{p}.in.web-activity",
            crm_status=f"{p}.in.crm-status",
            lead_events=f"{p}.internal.lead-events",
            visitor_events=f"{p}.internal.visitor-events",
            sla_commands=f"{p}.internal.sla-commands",
            routing_retries=f"{p}.internal.routing-retries",
            lead_scored=f"{p}.out.lead-scored",
            mqls=f"{p}.out.mqls",
            assignments=f"{p}.out.assignments",
            sla_breaches=f"{p}.out.sla-breaches",
            dispositions=f"{p}.out.dispositions",
            data_quality=f"{p}.out.data-quality",
            dead_letters=f"{p}.dlq",
            erasures=f"{p}.out.erasures",
            shadow_decisions=f"{p}.out.shadow-decisions",
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
