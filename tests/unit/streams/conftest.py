"""Fixtures of the runtime library's tests (streams/)."""

from __future__ import annotations

import pytest

from streams.settings import Settings


@pytest.fixture
def redis_retry_settings() -> Settings:
    """Settings from the environment, with Redis retries every millisecond or two, not seconds."""
    return Settings(redis_retry_initial_s=0.001, redis_retry_max_s=0.002)
