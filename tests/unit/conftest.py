"""Shared unit-test fixtures: process-wide state put back, a fake pipeline, and the repository's
own configuration (session-scoped: read once, on first use, never at import)."""

from __future__ import annotations

import logging
import sys
import threading

import pytest

# The configuration fixtures import tests.repo_config when used: a test of one layer (streams)
# does not depend on the layers above it (agents) unless it asks for their configuration.


@pytest.fixture(scope="session")
def routing_config():
    """config/routing.yaml, loaded."""
    from tests.repo_config import default_routing_config

    return default_routing_config()


@pytest.fixture(scope="session")
def scoring_model():
    """config/scoring-model.yaml, loaded."""
    from tests.repo_config import default_scoring_model

    return default_scoring_model()


@pytest.fixture(scope="session")
def routing_priority():
    """Routing's priority policy, handed to scoring as the composition root does (leadflow.compose)."""
    from tests.repo_config import default_priority

    return default_priority()


@pytest.fixture(scope="session")
def codec():
    """The codec over the registered schemas (schemas/registry.yaml)."""
    from streams.codec import Codec, SchemaRegistry

    return Codec(SchemaRegistry.load())


@pytest.fixture
def restore_logging():
    """The CLI entry point and ``configure_logging`` change process-wide logging state (root
    handlers bound to the current stderr, excepthooks): put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hooks = sys.excepthook, threading.excepthook
    # Named loggers the commands quiet (leadflow.cli_feedback.quiet_clients) or configure_logging sets.
    named = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, was in named.items():
        logging.getLogger(name).setLevel(was)
    for name in set(logging.root.manager.loggerDict) - set(named):  # created meanwhile: back to inherit
        logging.getLogger(name).setLevel(logging.NOTSET)
    sys.excepthook, threading.excepthook = hooks
    logging.captureWarnings(False)


@pytest.fixture
def fake_pipeline():
    """``make(**kwargs)``: a FakePipeline (streams.testing) with this application's metric
    vocabulary, default settings and a manual clock; kwargs as FakePipeline's (redis=, clock=...).
    Imported here, not at the top: only the tests that use it depend on the whole application."""
    from prometheus_client import CollectorRegistry

    from leadflow.compose import METRIC_VOCABULARY
    from streams.metrics import Metrics
    from streams.settings import Settings
    from streams.testing import FakePipeline, ManualClock

    def make(**kwargs) -> FakePipeline:
        kwargs.setdefault("metrics", Metrics(CollectorRegistry(), METRIC_VOCABULARY))
        kwargs.setdefault("settings", Settings())
        kwargs.setdefault("clock", ManualClock())
        return FakePipeline(**kwargs)

    return make
