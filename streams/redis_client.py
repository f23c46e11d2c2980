"""Redis connection with retries: the worker waits (and says so) instead of losing work."""

from __future__ import annotations

import logging

import redis
from tenacity import before_sleep_log, retry, retry_if_exception_type, stop_after_delay, wait_exponential

log = logging.getLogger(__name__)


def connect(url: str) -> redis.Redis:
    # Created on demand, never at import.
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10)


def wait_for_redis(url: str, metrics=None, *, max_wait_s: float = 300.0) -> redis.Redis:
    """Block until Redis answers PING, with exponential backoff; metric + log while waiting."""
    client = connect(url)

    @retry(
        retry=retry_if_exception_type(redis.exceptions.ConnectionError),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(max_wait_s),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    def ping() -> None:
        try:
            client.ping()
        except redis.exceptions.ConnectionError:
            if metrics is not None:
                metrics.redis_waiting.set(1)
                metrics.redis_retries.inc()
            raise

    ping()
    if metrics is not None:
        metrics.redis_waiting.set(0)
    return client
