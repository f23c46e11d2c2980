"""Kafka outages in a worker: reconnect with exponential backoff, one log line per interval,
and the state behind the ``kafka`` readiness check.

Why a patch: aiokafka 0.14 (under faust-streaming 0.15) has no reconnect backoff. With the broker
gone, its metadata synchronizer reconnects whenever it is asked, and the fetcher, the producer's
sender and the group coordinator ask again as soon as an attempt fails: a worker measured 5.9% of
a core and ~100 log lines/s ("Unable connect to node ...") during a 60 s outage, up to 95% of a
core elsewhere. Faust passes no reconnect setting to aiokafka, whose ``retry_backoff_ms`` (fixed
100 ms) spaces only some of those loops.

:func:`install` wraps two functions of aiokafka's client, for the whole process:

* ``aiokafka.client.create_conn``: records each connection attempt's outcome per broker address;
* ``AIOKafkaClient._get_conn``: before opening a connection to an address whose last attempt
  failed, waits until its backoff has passed (before the client's connection lock, so the other
  brokers of a cluster are not held up). After n failures in a row the next attempt waits
  ``min(cap, base * 2**(n-1))`` +-20%; one attempt per address per window, whoever asks.

Every reconnecting loop goes through ``_get_conn``, so all are paced by the same backoff.
"Unreachable" means: connecting to some broker fails and no client of the process holds an open
connection to any broker (one dead broker of three, or a bootstrap alias, is not an outage).
While unreachable, aiokafka's warnings and errors are held back by :class:`KafkaOutageLogFilter`
(the first of each kind still shows) and :meth:`KafkaOutage.tick` logs one line per interval
with the count; :func:`exit_when_stop_waits_on_kafka` keeps a stop signal from waiting for a
broker that is not there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Address = tuple[str, int]
JITTER = 0.2  # +-20%: workers that lost the same broker do not reconnect in step
STOPPED_WITHOUT_KAFKA = 128 + 15  # exit status, as if SIGTERM had ended the process


@dataclass
class _Failing:
    failures: int
    since: float
    next_at: float


class KafkaOutage:
    """Per-address backoff and the outage it adds up to. One event loop uses it (not thread-safe).

    ``live_connections`` says whether any client still holds an open connection to some broker:
    while one does, failures to another broker are not an outage (a bootstrap alias or one dead
    broker of three)."""

    def __init__(
        self,
        *,
        base_s: float,
        cap_s: float,
        log_interval_s: float,
        describe: Callable[[BaseException], str] = lambda exc: str(exc) or type(exc).__name__,
        live_connections: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < base_s <= cap_s:
            raise ValueError(f"reconnect backoff needs 0 < base <= cap, got base {base_s}s, cap {cap_s}s")
        if log_interval_s <= 0:
            raise ValueError("log_interval_s must be positive")
        self.base_s, self.cap_s, self.log_interval_s = base_s, cap_s, log_interval_s
        self.describe, self.live_connections, self.clock, self.rand = describe, live_connections, clock, rand
        self._failing: dict[Address, _Failing] = {}
        self._last_error = ""
        self._announced = False  # the outage's first line is out; its last one is not yet
        self._held = 0  # client log records held back in this outage
        self._held_kinds: set[tuple[str, object]] = set()
        self._logged_at = 0.0

    # --- backoff ------------------------------------------------------------------------

    def delay_s(self, failures: int) -> float:
        """Wait before the next attempt after ``failures`` failures in a row (no jitter)."""
        return 0.0 if failures <= 0 else min(self.cap_s, self.base_s * 2 ** min(failures - 1, 60))

    def begin_attempt(self, address: Address) -> float:
        """Seconds to wait before connecting to ``address``; 0 = go now (and the window is
        taken: others asking meanwhile wait for this attempt's outcome or the next window)."""
        failing = self._failing.get(address)
        if failing is None:
            return 0.0
        now = self.clock()
        if now < failing.next_at:
            return failing.next_at - now
        failing.next_at = now + self._jittered(failing.failures)
        return 0.0

    def failed(self, address: Address, error: BaseException) -> None:
        now = self.clock()
        failing = self._failing.setdefault(address, _Failing(0, now, now))
        failing.failures += 1
        failing.next_at = now + self._jittered(failing.failures)
        self._last_error = self.describe(error)
        if not self._announced and self.unreachable_for is not None:
            self._announced, self._held, self._logged_at = True, 0, now
            self._held_kinds.clear()
            log.warning(
                "Kafka unreachable: cannot connect to %s:%d (%s); reconnecting with backoff from %gs to "
                "%gs, one line every %gs until it is back",
                *address,
                self._last_error,
                self.base_s,
                self.cap_s,
                self.log_interval_s,
            )

    def succeeded(self, address: Address) -> None:
        attempts, since = self.attempts, min((f.since for f in self._failing.values()), default=None)
        self._failing.pop(address, None)
        if self._announced and self.unreachable_for is None:
            assert since is not None  # announced: some address was failing
            self._announced = False
            log.info(
                "Kafka reachable again after %.0fs, %d reconnect attempts (%d client log lines held back)",
                self.clock() - since,
                attempts,
                self._held,
            )

    def _jittered(self, failures: int) -> float:
        return self.delay_s(failures) * (1 + JITTER * (2 * self.rand() - 1))

    # --- state, log ---------------------------------------------------------------------

    @property
    def attempts(self) -> int:
        """Failed connection attempts since the brokers still failing last answered."""
        return sum(f.failures for f in self._failing.values())

    @property
    def unreachable_for(self) -> float | None:
        """Seconds since Kafka became unreachable, None while it is reachable."""
        if not self._failing or self.live_connections():
            return None
        return max(0.0, self.clock() - min(f.since for f in self._failing.values()))

    def status(self) -> str:
        """ "ok", or one line for /readyz."""
        down_for = self.unreachable_for
        if down_for is None:
            return "ok"
        return f"unreachable for {down_for:.0f}s, {self.attempts} reconnect attempts ({self._last_error})"

    def tick(self) -> str | None:
        """Log the outage line if an interval has passed since the last one; returns it."""
        now = self.clock()
        if not self._announced or now - self._logged_at < self.log_interval_s:
            return None
        down_for = self.unreachable_for
        if down_for is None:
            return None
        self._logged_at = now
        next_in = min(max(0.0, f.next_at - now) for f in self._failing.values())
        line = (
            f"Kafka unreachable for {down_for:.0f}s, {self.attempts} reconnect attempts, next in "
            f"{next_in:.0f}s ({self._last_error}; {self._held} client log lines held back)"
        )
        log.warning("%s", line)
        return line

    def admit(self, record: logging.LogRecord) -> bool:
        """For the log filter: during an outage, aiokafka's warnings and errors are shown once
        per kind (logger and message template) and counted after that."""
        if not self._announced or record.levelno < logging.WARNING or not record.name.startswith("aiokafka"):
            return True
        kind = (record.name, record.msg)
        if kind not in self._held_kinds:
            self._held_kinds.add(kind)
            return True
        self._held += 1
        return False


class KafkaOutageLogFilter(logging.Filter):
    """Handler filter (see streams.logs): defers to the installed :class:`KafkaOutage`, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        outage = _state["outage"]
        return outage is None or outage.admit(record)


_state: dict[str, Any] = {"outage": None, "originals": None}
# every aiokafka client that asked for a connection (aiokafka is untyped: Any)
_clients: weakref.WeakSet[Any] = weakref.WeakSet()


def current() -> KafkaOutage | None:
    outage: KafkaOutage | None = _state["outage"]
    return outage


def install(settings: Any) -> KafkaOutage:
    """Patch aiokafka's client (once per process) and make a new :class:`KafkaOutage` current."""
    from streams.connections import describe_kafka_error

    outage = KafkaOutage(
        base_s=settings.kafka_reconnect_backoff_s,
        cap_s=settings.kafka_reconnect_backoff_max_s,
        log_interval_s=settings.kafka_outage_log_interval_s,
        describe=lambda exc: describe_kafka_error(exc, settings),
        live_connections=_any_live_connection,
    )
    if _state["originals"] is None:
        _patch_aiokafka()
    _state["outage"] = outage
    return outage


def _any_live_connection() -> bool:
    """An open connection to any broker, in any client of this process."""
    return any(conn.connected() for client in list(_clients) for conn in list(client._conns.values()))


def uninstall() -> None:
    """Restore aiokafka's own functions (tests)."""
    import aiokafka.client as client_module

    if _state["originals"] is not None:
        client_module.create_conn, client_module.AIOKafkaClient._get_conn = _state["originals"]
    _state["originals"] = _state["outage"] = None


def _patch_aiokafka() -> None:
    import aiokafka.client as client_module
    from aiokafka.errors import KafkaError

    client_class = client_module.AIOKafkaClient
    missing = [
        name
        for name, where in (("create_conn", client_module), ("_get_conn", client_class))
        if not callable(getattr(where, name, None))
    ]
    if missing:
        raise RuntimeError(
            f"aiokafka {getattr(client_module, '__version__', '?')} has no {', '.join(missing)}: "
            "streams/kafka_outage.py needs updating for this version"
        )
    original_create_conn, original_get_conn = client_module.create_conn, client_class._get_conn

    async def create_conn(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        outage = current()
        try:
            conn = await original_create_conn(host, port, *args, **kwargs)
        except (OSError, asyncio.TimeoutError, KafkaError) as exc:
            if outage is not None:
                outage.failed((host, port), exc)
            raise
        if outage is not None:
            outage.succeeded((host, port))
        return conn

    async def _get_conn(self: Any, node_id: int, **kwargs: Any) -> Any:
        outage = current()
        _clients.add(self)
        conn = self._conns.get((node_id, kwargs.get("group", client_module.ConnectionGroup.DEFAULT)))
        broker = self.cluster.broker_metadata(node_id) if outage is not None else None
        if outage is not None and broker is not None and (conn is None or not conn.connected()):
            # Short naps: a success through another caller frees the address within a second.
            while (wait := outage.begin_attempt((broker.host, broker.port))) > 0:
                await asyncio.sleep(min(wait, 1.0))
        return await original_get_conn(self, node_id, **kwargs)

    client_module.create_conn, client_class._get_conn = create_conn, _get_conn
    _state["originals"] = (original_create_conn, original_get_conn)


def exit_when_stop_waits_on_kafka(
    outage: KafkaOutage, timeout_s: float, *, poll_s: float = 0.2, exit_process: Callable[[int], Any] = os._exit
) -> threading.Thread:
    """Call when a stop signal arrives. Faust's stop commits offsets and flushes the producer,
    and both wait for the broker with no time limit: with Kafka unreachable the worker ignored
    SIGTERM until it was killed. This daemon thread ends the process once the stop has taken
    ``timeout_s`` and Kafka is unreachable: what was not committed is processed again after a
    restart (outputs carry deterministic ids), exactly as after ``kill -9``, only sooner.
    With Kafka reachable it does nothing: the stop stays graceful."""
    started = time.monotonic()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if time.monotonic() - started < timeout_s:
                continue
            try:
                down_for = outage.unreachable_for
            except RuntimeError:  # the loop changed a dict under us: ask again next time
                continue
            if down_for is not None:
                log.warning(
                    "stopping: Kafka unreachable for %.0fs, not waiting for it any longer (%.0fs into the "
                    "stop); uncommitted input is processed again after a restart",
                    down_for,
                    time.monotonic() - started,
                )
                for handler in logging.getLogger().handlers:
                    handler.flush()
                exit_process(STOPPED_WITHOUT_KAFKA)
                return

    thread = threading.Thread(target=watch, name="kafka-outage-stop", daemon=True)
    thread.start()
    return thread
