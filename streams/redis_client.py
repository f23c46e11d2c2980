"""Redis outages: the one retry policy of every Redis call - the worker waits (and says so)
instead of losing work.

- :data:`RETRYABLE_ERRORS` is the one answer to "Redis is away, wait": the server is down or
  unreachable (``ConnectionError``, ``TimeoutError``, ``OSError``), loading its dataset after a
  restart (``BusyLoadingError``, a ``ConnectionError``), failing over (``TryAgainError``,
  ``ClusterDownError``/``MasterDownError``, ``ReadOnlyError`` from a demoted primary) or full
  (``OutOfMemoryError``: maxmemory, until keys expire or an operator acts). Any other error
  (``WRONGTYPE``, a script error) is the data's or the code's, and is raised at once.
- One backoff: exponential from ``LEADFLOW_REDIS_RETRY_INITIAL_S`` doubling up to
  ``LEADFLOW_REDIS_RETRY_MAX_S``.
- :class:`RedisRetry` runs one call at a time (an agent's Redis step) until it succeeds: the
  partition waits, so nothing is dead-lettered or dropped; ``leadflow_redis_waiting`` is 1 and
  ``leadflow_redis_retries_total`` counts the attempts; a warning is logged at the first failure,
  then every 30 s, and once when Redis answers again.
- :func:`wait_for_redis` (worker start) uses the same errors and backoff with a deadline; there a
  wrong password or an untrusted certificate fails at once with one line, because waiting cannot
  fix a configuration and nothing is held yet (at run time the same errors are waited out: the
  records stay unprocessed until an operator fixes the secret).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.exceptions as redis_errors
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_exponential,
)

from streams.connections import RedisUnavailable, describe_redis_error, redact_url, redis_sync
from streams.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,  # includes BusyLoadingError (Redis loading its AOF/RDB after a restart)
    redis_errors.TimeoutError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,  # includes MasterDownError
    redis_errors.ReadOnlyError,  # a replica after failover
    redis_errors.OutOfMemoryError,
    OSError,
    asyncio.TimeoutError,
)

_WARN_EVERY_S = 30.0


def is_misconfigured(exc: BaseException) -> bool:
    """A wrong password or a certificate that is not trusted: no amount of waiting fixes it."""
    if isinstance(exc, redis_errors.AuthenticationError):
        return True
    return isinstance(exc.__context__, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(exc)


def backoff(settings: Settings) -> wait_exponential:
    return wait_exponential(multiplier=settings.redis_retry_initial_s, max=settings.redis_retry_max_s)


class RedisRetry:
    """``await retry(client.hget, key, field)`` (arguments bound per call): the call again,
    after a backoff, for as long as Redis is away (:data:`RETRYABLE_ERRORS`). ``who`` and ``held`` name the waiting
    capability and what it holds in the warning."""

    def __init__(self, settings: Settings, metrics: Any, *, who: str, held: str = "records are held") -> None:
        self.settings = settings
        self.metrics = metrics
        self.who = who
        self.held = held
        self.since: float | None = None
        self.warned_at = 0.0

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.metrics.redis_retries.inc()
        self.metrics.redis_waiting.set(1)
        now = time.monotonic()
        if self.since is None:
            self.since = now
        if now - self.warned_at >= _WARN_EVERY_S:
            self.warned_at = now
            log.warning(
                "%s is waiting for Redis at %s (%s: %s); attempt %d, next try in %.1fs - %s, none is dropped",
                self.who,
                redact_url(self.settings.redis_url),
                type(exc).__name__,
                exc,
                state.attempt_number,
                state.next_action.sleep if state.next_action else 0.0,
                self.held,
            )

    async def __call__(self, operation: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE_ERRORS),
            wait=backoff(self.settings),
            stop=stop_never,
            before_sleep=self._before_sleep,
            reraise=True,
        ):
            with attempt:
                result = await operation(*args, **kwargs)
        if self.since is not None:
            log.warning("Redis is reachable again after %.1fs; %s resumes", time.monotonic() - self.since, self.who)
            self.since, self.warned_at = None, 0.0
            self.metrics.redis_waiting.set(0)
        return result


def wait_for_redis(settings: Settings, metrics: Any = None, *, max_wait_s: float = 300.0) -> redis.Redis:
    """Block until Redis answers PING (same errors and backoff as :class:`RedisRetry`, at most
    ``max_wait_s``); metric + log while waiting.

    Authentication and TLS failures are not retried (waiting cannot fix them): they raise
    RedisUnavailable with one line naming the (redacted) URL and the cause.
    """
    client = redis_sync(settings)

    def before_sleep(state: RetryCallState) -> None:
        if metrics is not None:
            metrics.redis_waiting.set(1)
            metrics.redis_retries.inc()
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "waiting for Redis at %s (%s: %s); next try in %.1fs",
            redact_url(settings.redis_url),
            type(exc).__name__,
            exc,
            state.next_action.sleep if state.next_action else 0.0,
        )

    @retry(
        retry=retry_if_exception(lambda exc: isinstance(exc, RETRYABLE_ERRORS) and not is_misconfigured(exc)),
        wait=backoff(settings),
        stop=stop_after_delay(max_wait_s),
        before_sleep=before_sleep,
        reraise=True,
    )
    def ping() -> None:
        client.ping()

    try:
        ping()
    except (redis_errors.RedisError, OSError) as exc:
        raise RedisUnavailable(describe_redis_error(exc, settings)) from None
    if metrics is not None:
        metrics.redis_waiting.set(0)
    return client
