"""The composition root: the one place that knows every capability.

It loads each configuration file once (scoring model, routing, SLA), checks what spans two of
them, builds the runtime (:func:`streams.app.build_pipeline`) and hands each capability what it
needs. Capabilities never load a file of their own and never import one another's agent.

Tests pass their own settings, codec, metrics registry, clock, configs or capability list.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from agents.capture import agent as capture
from agents.capture.exceptions import REASON_CODES as CAPTURE_REASON_CODES
from agents.disposition import agent as disposition
from agents.disposition.rules import ISSUE_CODES, TOUCH_ONLY_STATUSES
from agents.domain.events import CRM_STATUSES, DISPOSITIONS, EVENT_KINDS, STAGES
from agents.routing import agent as routing
from agents.routing.config import RoutingConfig, load_routing_config
from agents.routing.priority import priority_policy
from agents.scoring import agent as scoring
from agents.scoring.exceptions import ModelError, ShadowModelError
from agents.scoring.model import ScoringModel, load_model
from agents.sla import agent as sla
from agents.sla.config import SlaConfig, load_sla_config, permanent_conflicts
from agents.sla.exceptions import SlaConfigError
from leadflow.api import server as lead_api
from streams.app import Pipeline, build_pipeline, finish_pipeline
from streams.codec import DECODE_REASON_CODES, Codec
from streams.deadletter import RUNTIME_REASON_CODES
from streams.metric_labels import Vocabulary, mql_label_pairs
from streams.metric_schema import DUPLICATE_STAGES
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import KAFKA_DEFAULT_MAX_MESSAGE_BYTES

Capability = Callable[[Pipeline], None]

# Every dead-letter reason code (docs/contracts.md, "Dead-letter reason codes"; a test holds
# them equal): the codec's, capture's rules' and the runtime's own.
DEAD_LETTER_REASONS = tuple(dict.fromkeys((*DECODE_REASON_CODES, *CAPTURE_REASON_CODES, *RUNTIME_REASON_CODES)))
# The metrics' closed label sets that the capabilities define.
METRIC_VOCABULARY = Vocabulary(
    event_kinds=EVENT_KINDS,
    stages=STAGES,
    crm_statuses=CRM_STATUSES,
    dispositions=DISPOSITIONS,
    dead_letter_reasons=DEAD_LETTER_REASONS,
)


@dataclass(frozen=True)
class Configs:
    """Every configuration file, loaded and validated once."""

    scoring: ScoringModel
    routing: RoutingConfig
    sla: SlaConfig
    shadow: ScoringModel | None = None  # the candidate scored in shadow (LEADFLOW_SHADOW_MODEL_PATH)


def load_configs(settings: Settings, *, scoring_model: ScoringModel | None = None) -> Configs:
    """Read and validate the three files; a bad one raises with the file and key named, before
    anything connects. The recycling policy (sla.yaml) and the permanent dispositions (the
    scoring model) must not overlap."""
    live = scoring_model or load_model(settings.scoring_model_path)
    configs = Configs(
        scoring=live,
        routing=load_routing_config(settings.routing_config_path),
        sla=load_sla_config(settings.sla_config_path),
        shadow=load_shadow_model(settings.shadow_model_path, live=live) if settings.shadow_model_path else None,
    )
    for model in (configs.scoring, configs.shadow):
        conflicts = permanent_conflicts(configs.sla.dispositions, model.permanent_dispositions) if model else []
        if conflicts:
            raise SlaConfigError(conflicts, str(settings.sla_config_path))
    return configs


def load_shadow_model(path: Path, *, live: ScoringModel | None = None) -> ScoringModel:
    """The candidate model, validated exactly as the live one; an error names the setting.
    ``live`` (when given) must carry another version, or the decisions could not tell them apart."""
    setting = f"shadow model {path} (LEADFLOW_SHADOW_MODEL_PATH)"
    try:
        model = load_model(path)
    except ModelError as exc:
        raise ShadowModelError(exc.problems, setting) from None
    if live is not None and model.version == live.version:
        raise ShadowModelError(
            [f"version: {model.version!r} is the live model's version; give the candidate its own"], setting
        )
    return model


def capabilities(configs: Configs) -> tuple[Capability, ...]:
    """The pipeline's capabilities, in registration order, each given its configuration."""
    return (
        capture.register,
        # Priority is routing's alone: scoring applies routing's policy to the MQL's facts.
        partial(
            scoring.register,
            model=configs.scoring,
            dispositions=configs.sla.dispositions,
            priority=priority_policy(configs.routing),
            shadow=configs.shadow,
        ),
        partial(routing.register, config=configs.routing),
        partial(sla.register, config=configs.sla),
        partial(disposition.register, model=configs.scoring),
    )


def create_app(
    settings: Settings,
    *,
    codec: Codec | None = None,
    metrics: Metrics | None = None,
    configs: Configs | None = None,
    scoring_model: ScoringModel | None = None,
    clock: Callable[[], float] = time.time,
    redis_factory: Callable[[], Any] | None = None,
    only: Iterable[Capability] | None = None,
    message_limit: int = KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
) -> Pipeline:
    """The worker's pipeline. ``only``: register just these capabilities (a benchmark of one)."""
    configs = configs or load_configs(settings, scoring_model=scoring_model)
    pipeline = build_pipeline(
        settings,
        metrics=metrics or Metrics.create(METRIC_VOCABULARY),
        codec=codec,
        clock=clock,
        redis_factory=redis_factory,
        message_limit=message_limit,
    )
    pipeline.metrics.start_at_zero(**configured_label_values(configs))
    for register in only if only is not None else capabilities(configs):
        register(pipeline)
    if settings.api_port and "lead_to_state" in pipeline.tables:  # the read side over the capabilities' tables
        lead_api.register(pipeline, model=configs.scoring)
    return finish_pipeline(pipeline)


def configured_label_values(configs: Configs) -> dict[str, tuple]:
    """Every label value the configuration knows (dispositions, data-quality issue codes,
    attribution channels, MQL score bands), so each series starts at 0 on this worker and the
    dashboards' increase() and ratios see the first occurrence (``Metrics.start_at_zero``)."""
    model, policy = configs.scoring, configs.sla.dispositions
    thresholds, sources = model.thresholds, attribution_sources(model)
    dispositions = [*DISPOSITIONS, *sorted(model.permanent_dispositions), *policy.recycle, *policy.recapture]
    return {
        # Touch-only statuses stop SLA clocks but are never counted as dispositions;
        # erasure_requested publishes lead_erased, never a disposition.
        "statuses": tuple(s for s in CRM_STATUSES if s not in TOUCH_ONLY_STATUSES and s != "erasure_requested"),
        "dispositions": tuple(dict.fromkeys(dispositions)),
        "issue_codes": tuple(ISSUE_CODES),
        "sources": sources,
        "mql_bands": mql_label_pairs(thresholds.mql, thresholds.fast_track),
        "duplicate_stages": DUPLICATE_STAGES,
        # Only with a shadow model: its decisions carry either model's channel.
        "shadow_sources": tuple(dict.fromkeys([*sources, *attribution_sources(configs.shadow)]))
        if configs.shadow
        else (),
    }


def attribution_sources(model: ScoringModel) -> tuple[str, ...]:
    """Every first-touch source a model can label a lead with."""
    attribution = model.attribution
    return tuple(dict.fromkeys([*attribution.channels, attribution.unrecognized_channel, attribution.missing_channel]))
