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
