"""The repository's own configuration (config/*.yaml) for the tests, each read on its
first use and then kept: no test module loads configuration at import
(tests/unit/test_no_config_at_import.py). Tests take these through the session fixtures of
tests/unit/conftest.py; the builders the tests share (tests/unit/agents/*/helpers.py) call them
for their defaults, inside the test that calls the builder."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from agents.domain.lead_facts import PriorityPolicy
from agents.routing.config import RoutingConfig, load_routing_config
from agents.routing.priority import priority_policy
from agents.scoring import ScoringModel, load_model

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"


@cache
def default_routing_config() -> RoutingConfig:
    """config/routing.yaml, as the worker loads it."""
    return load_routing_config(CONFIG_DIR / "routing.yaml")


@cache
def default_scoring_model() -> ScoringModel:
    """config/scoring-model.yaml, as the worker loads it."""
    return load_model(CONFIG_DIR / "scoring-model.yaml")


@cache
def default_priority() -> PriorityPolicy:
    """Routing's priority policy, handed to scoring as the composition root does (leadflow.compose)."""
    return priority_policy(default_routing_config())


@cache
def default_raw(name: str) -> Any:
    """A file of config/ as plain YAML (``yaml.safe_load``): shared, so deep-copy it before changing it."""
    return yaml.safe_load((CONFIG_DIR / name).read_text())
