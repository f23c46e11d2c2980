"""The one Redis retry policy (streams.redis_client): every "Redis is away" error is waited out
with the settings' backoff and counted; any other error is raised at once; at start-up a wrong
password fails at once with one line."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.exceptions as redis_errors
from prometheus_client import CollectorRegistry

from leadflow.compose import METRIC_VOCABULARY
from streams import redis_client
from streams.connections import RedisUnavailable
from streams.metrics import Metrics
from streams.redis_client import RETRYABLE_ERRORS, RedisRetry, wait_for_redis
from streams.settings import Settings

AWAY = [
    redis_errors.ConnectionError("down"),
    redis_errors.BusyLoadingError("LOADING Redis is loading the dataset in memory"),
    redis_errors.TimeoutError("timeout"),
    redis_errors.TryAgainError("TRYAGAIN"),
    redis_errors.ClusterDownError("CLUSTERDOWN"),
    redis_errors.MasterDownError("MASTERDOWN"),
    redis_errors.ReadOnlyError("READONLY You can't write against a read only replica."),
    redis_errors.OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'."),
    ConnectionResetError("reset"),
    asyncio.TimeoutError(),
]


def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), METRIC_VOCABULARY)


def failing(errors: list[BaseException], result: str = "ok"):
    calls = []

    async def operation() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return operation, calls


def test_every_kind_of_redis_being_away_is_waited_out_and_counted(redis_retry_settings, caplog):
    m = metrics()
    retry = RedisRetry(redis_retry_settings, m, who="routing", held="MQLs are held")
    operation, calls = failing(list(AWAY))
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(retry(operation)) == "ok"
    assert len(calls) == len(AWAY) + 1
    assert m.registry.get_sample_value("leadflow_redis_retries_total") == len(AWAY)
    assert m.registry.get_sample_value("leadflow_redis_waiting") == 0.0
    assert "routing is waiting for Redis" in caplog.text and "MQLs are held" in caplog.text
    assert "Redis is reachable again" in caplog.text


@pytest.mark.parametrize("error", [redis_errors.ResponseError("WRONGTYPE"), ValueError("bug")])
def test_an_error_that_is_not_an_outage_is_raised_at_once(redis_retry_settings, error):
    m = metrics()
    operation, calls = failing([error])
    with pytest.raises(type(error)):
        asyncio.run(RedisRetry(redis_retry_settings, m, who="t")(operation))
    assert len(calls) == 1 and not m.registry.get_sample_value("leadflow_redis_retries_total")


def test_the_backoff_comes_from_the_settings():
    wait = redis_client.backoff(Settings(redis_retry_initial_s=0.5, redis_retry_max_s=3))
    assert (wait.multiplier, wait.max) == (0.5, 3)
    assert all(isinstance(e, RETRYABLE_ERRORS) for e in AWAY)


class FakeSyncRedis:
    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = errors

    def ping(self) -> bool:
        if self.errors:
            raise self.errors.pop(0)
        return True


def test_start_up_waits_for_a_loading_redis_but_not_for_a_wrong_password(redis_retry_settings, monkeypatch):
    m = metrics()
    monkeypatch.setattr(
        redis_client,
        "redis_sync",
        lambda settings: FakeSyncRedis(
            [redis_errors.BusyLoadingError("LOADING"), redis_errors.ConnectionError("refused")]
        ),
    )
    assert wait_for_redis(redis_retry_settings, m, max_wait_s=5).ping() is True
    assert m.registry.get_sample_value("leadflow_redis_retries_total") == 2

    wrong = FakeSyncRedis([redis_errors.AuthenticationError("WRONGPASS invalid username-password pair")] * 3)
    monkeypatch.setattr(redis_client, "redis_sync", lambda settings: wrong)
    with pytest.raises(RedisUnavailable, match="authentication failed"):
        wait_for_redis(redis_retry_settings, max_wait_s=5)
    assert len(wrong.errors) == 2  # tried once
