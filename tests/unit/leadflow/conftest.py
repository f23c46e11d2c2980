"""Fixtures of the application's tests (leadflow/: the CLI, the dev stack, the demo tools)."""

from __future__ import annotations

import pytest

from streams.settings import load_settings
from streams.topics import TopicNames


@pytest.fixture
def acme_topics() -> TopicNames:
    """The topic names under the prefix ``acme``, as the CLI derives them from the settings."""
    return TopicNames.from_settings(load_settings(topic_prefix="acme"))
