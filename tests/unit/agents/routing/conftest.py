"""Fixtures of the routing tests: the repository's routing.yaml and roster.yaml as plain data
(the loaded routing config is tests/unit/conftest.py's ``routing_config``)."""

from __future__ import annotations

import pytest

from agents.domain.yamlio import read_yaml
from agents.routing.exceptions import RosterError
from tests.repo_config import CONFIG_DIR, default_raw


@pytest.fixture(scope="session")
def routing_raw():
    """config/routing.yaml as plain YAML: shared, so deep-copy it before changing it."""
    return default_raw("routing.yaml")


@pytest.fixture
def default_roster_raw():
    """config/roster.yaml, read as ``leadflow roster load`` reads it."""
    return read_yaml(CONFIG_DIR / "roster.yaml", RosterError)
