"""Redis connection with retries: the worker waits (and says so) instead of losing work."""

from __future__ import annotations

import logging
import ssl

import redis
from tenacity import before_sleep_log, retry, retry_if_exception, stop_after_delay, wait_exponential

from streams.connections import RedisUnavailable, describe_redis_error, redis_sync
from streams.settings import Settings

log = logging.getLogger(__name__)


def _worth_retrying(exc: BaseException) -> bool:
    """A server that is down or starting may come up; a wrong password or CA will not."""
    if not isinstance(exc, redis.exceptions.ConnectionError):
        return False
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return False
    return not isinstance(exc.__context__, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" not in str(exc)


def wait_for_redis(settings: Settings, metrics=None, *, max_wait_s: float = 300.0) -> redis.Redis:
    """Block until Redis answers PING, with exponential backoff; metric + log while waiting.

    Authentication and TLS failures are not retried (waiting cannot fix them): they raise
    RedisUnavailable with one line naming the (redacted) URL and the cause.
    """
    client = redis_sync(settings)

    @retry(
        retry=retry_if_exception(_worth_retrying),
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

    try:
        ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.ResponseError, OSError) as exc:
        raise RedisUnavailable(describe_redis_error(exc, settings)) from None
    if metrics is not None:
        metrics.redis_waiting.set(0)
    return client
