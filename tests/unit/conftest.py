"""Shared unit-test fixtures."""

from __future__ import annotations

import logging
import sys
import threading

import pytest


@pytest.fixture
def restore_logging():
    """The CLI entry point and ``configure_logging`` change process-wide logging state (root
    handlers bound to the current stderr, excepthooks): put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hooks = sys.excepthook, threading.excepthook
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
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
