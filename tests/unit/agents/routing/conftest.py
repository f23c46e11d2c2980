"""Fixtures of the routing tests: the repository's routing.yaml and roster.yaml as plain data
(the loaded routing config is tests/unit/conftest.py's ``routing_config``)."""

from __future__ import annotations

import pytest

from agents.domain.yamlio import read_yaml
from agents.routing import agent as routing
from agents.routing.exceptions import RosterError
from tests.repo_config import CONFIG_DIR, default_raw
from tests.unit.agents.routing.agent_doubles import MemoryRosterStore


@pytest.fixture(scope="session")
def routing_raw():
    """config/routing.yaml as plain YAML: shared, so deep-copy it before changing it."""
    return default_raw("routing.yaml")


@pytest.fixture
def default_roster_raw():
    """config/roster.yaml, read as ``leadflow roster load`` reads it."""
    return read_yaml(CONFIG_DIR / "roster.yaml", RosterError)


@pytest.fixture
def stores(monkeypatch):
    """The routing agent's RosterStore replaced by MemoryRosterStore; the list of those made."""
    made: list[MemoryRosterStore] = []

    def factory(client, prefix):
        made.append(MemoryRosterStore(client, prefix))
        return made[-1]

    monkeypatch.setattr(routing, "RosterStore", factory)
    return made
