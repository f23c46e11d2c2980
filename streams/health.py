"""Liveness and readiness of a worker, served next to /metrics.

* ``GET /livez``: the event loop is responsive. A task in the worker's loop stamps a monotonic
  heartbeat every second; the HTTP server runs in its own thread and answers 200 while the
  last beat is younger than ``live_after_s`` (10 s), else 503. A loop blocked by a CPU-bound
  call or a stuck C extension fails liveness, and the orchestrator restarts the process.
* ``GET /readyz``: the worker does its job. 200 when all of

  - ``consumer_group``: a consumer-group rebalance has completed for this worker - Faust's
    ``app.rebalancing`` flag, set when partitions are revoked (every join starts with that)
    and cleared by ``app.on_rebalance_end()``, which Faust's table ``Recovery`` calls only
    after the new assignment's changelogs are read and the stream partitions are resumed
    ("Worker ready" in its log). An empty assignment (more workers than partitions) still
    counts: the worker is in the group, waiting as a hot spare;
  - ``table_recovery``: ``app.tables.recovery.completed`` is set and ``app.in_recovery`` is
    false (changelog replay finished);
  - ``redis``: the last PING (made every 2 s by the same loop, not per request) succeeded and
    is younger than ``redis_max_age_s``;
  - ``kafka``: some broker is reachable (streams.kafka_outage: not every broker's last
    connection attempt failed); during an outage it says for how long and how many attempts;
  - ``event_loop``: the heartbeat is fresh (otherwise the other facts are stale);

  else 503. Both answer a small JSON body naming each check.

  Why these flags and not Faust's signals: ``app.on_rebalance_complete`` is sent by
  ``Recovery.on_recovery_completed`` *before* the generation check and before the stream
  partitions are resumed (and can be followed by "Recovery rebalancing again");
  ``app.on_partitions_assigned`` fires before recovery; ``recovery.completed`` is set by the
  first recovery and never cleared. ``app.rebalancing`` is the one state that is true from the
  first revocation of a rebalance until its recovery has finished and the streams run again,
  and it needs no callback that could be missed.

The state (:class:`Health`) is written by the loop and read by HTTP threads under a lock;
the clock is injected so the logic is tested without a worker.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.simple_server import make_server as _wsgi_make_server

if TYPE_CHECKING:  # Python 3.11+ (the annotations are not evaluated)
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import orjson
from mode import Service

log = logging.getLogger(__name__)

OK = "ok"


@dataclass(frozen=True)
class ConsumerState:
    """What Faust says about this worker's group membership and tables (see module doc)."""

    rebalances: int = 0  # rebalances started since the process began
    rebalancing: bool = False  # one is in progress (revoked, not yet recovered and resumed)
    in_recovery: bool = False  # reading changelogs now
    recovery_completed: bool = False  # a recovery has completed at least once
    partitions: int = 0  # topic partitions assigned now
    generation: int = 0  # consumer group generation of the last assignment

    @property
    def group_check(self) -> str:
        if self.rebalances == 0:
            return "not joined yet"
        if self.rebalancing:
            return f"rebalancing (generation {self.generation})"
        return OK

    @property
    def recovery_check(self) -> str:
        if self.in_recovery:
            return "reading changelogs"
        if not self.recovery_completed:
            return "not finished"
        return OK


def consumer_state(app: Any) -> ConsumerState:
    """Read the state off a Faust app; call from the app's event loop."""
    rebalances = int(getattr(app, "rebalancing_count", 0) or 0)
    partitions = 0
    if rebalances:  # before the first join there is no assignment to read (nor to create)
        try:
            partitions = len(app.consumer.assignment())
        except Exception:  # noqa: BLE001 - consumer not started or stopping: no figure
            partitions = 0
    try:
        completed = app.tables.recovery.completed.is_set()
    except Exception:  # noqa: BLE001 - no table manager yet
        completed = False
    return ConsumerState(
        rebalances=rebalances,
        rebalancing=bool(getattr(app, "rebalancing", False)),
        in_recovery=bool(getattr(app, "in_recovery", False)),
        recovery_completed=completed,
        partitions=partitions,
        generation=int(getattr(app, "consumer_generation_id", 0) or 0),
    )


class Health:
    """Thread-safe health state: written by the worker's loop, read by HTTP threads."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        live_after_s: float = 10.0,
        redis_max_age_s: float = 10.0,
    ) -> None:
        self.clock = clock
        self.live_after_s = live_after_s
        self.redis_max_age_s = redis_max_age_s
        self._lock = threading.Lock()
        self._started_at = clock()
        self._beat_at: float | None = None
        self._consumer = ConsumerState()
        self._redis_at: float | None = None
        self._redis_error: str | None = "not checked yet"
        self._kafka = OK  # reachable until a connection attempt fails (streams.kafka_outage)

    # --- written by the loop --------------------------------------------------------------

    def beat(self, consumer: ConsumerState | None = None) -> None:
        with self._lock:
            self._beat_at = self.clock()
            if consumer is not None:
                self._consumer = consumer

    def kafka_checked(self, status: str) -> None:
        """``ok``, or why Kafka is unreachable (streams.kafka_outage.KafkaOutage.status)."""
        with self._lock:
            self._kafka = status

    def redis_checked(self, error: str | None) -> None:
        """Result of one PING: None = answered."""
        with self._lock:
            self._redis_at = self.clock()
            self._redis_error = error

    # --- read by HTTP threads -------------------------------------------------------------

    def _loop_check(self, now: float) -> str:
        if self._beat_at is None:
            return f"no heartbeat yet (started {now - self._started_at:.1f}s ago)"
        age = now - self._beat_at
        return OK if age <= self.live_after_s else f"no heartbeat for {age:.1f}s (event loop blocked?)"

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            now = self.clock()
            if self._beat_at is None and now - self._started_at <= self.live_after_s:
                # Starting: the loop has not run the heartbeat yet; not a reason to restart.
                return True, {"live": True, "event_loop": "starting"}
            check = self._loop_check(now)
        return check == OK, {"live": check == OK, "event_loop": check}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            now = self.clock()
            consumer = self._consumer
            if self._redis_at is None:
                redis = self._redis_error or "not checked yet"
            elif now - self._redis_at > self.redis_max_age_s:
                redis = f"no PING result for {now - self._redis_at:.1f}s"
            else:
                redis = self._redis_error or OK
            checks = {
                "event_loop": self._loop_check(now),
                "consumer_group": consumer.group_check,
                "table_recovery": consumer.recovery_check,
                "redis": redis,
                "kafka": self._kafka,
            }
        failing = [name for name, value in checks.items() if value != OK]
        body = {
            "ready": not failing,
            "failing": failing,
            "checks": checks,
            "partitions": consumer.partitions,
            "generation": consumer.generation,
        }
        return not failing, body


# --- HTTP ---------------------------------------------------------------------------------------


def routes(metrics_app: WSGIApplication, health: Health | None) -> WSGIApplication:
    """WSGI app: /metrics -> ``metrics_app``; /livez, /readyz -> ``health``; anything else 404."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if health is not None and path in ("/livez", "/readyz"):
            ok, body = health.liveness() if path == "/livez" else health.readiness()
            return _json(start_response, "200 OK" if ok else "503 Service Unavailable", body)
        paths = ["/metrics", "/livez", "/readyz"] if health is not None else ["/metrics"]
        return _json(start_response, "404 Not Found", {"error": "not found", "paths": paths})

    return app


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    payload = orjson.dumps(body) + b"\n"
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), ("Cache-Control", "no-store")],
    )
    return [payload]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never keeps the process alive


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Probes every few seconds would flood the log."""


def make_server(host: str, port: int, app: WSGIApplication) -> WSGIServer:
    """A threading WSGI server on ``host:port`` (IPv6 hosts such as ``::`` work too)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    server_class = type("HealthServer", (_Server,), {"address_family": family})
    return _wsgi_make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)


# --- the worker side: heartbeat, Redis PING and what the capabilities watch there -------------


@dataclass(frozen=True)
class RedisProbe:
    """A capability's own Redis check, sent in the same round trip as each health PING.

    ``queue(pipe)`` adds one command to the pipeline; ``seen(result)`` gets that command's result
    whenever Redis answered (the composition root wires e.g. routing's roster presence here, so
    this module knows no capability)."""

    queue: Callable[[Any], Any]
    seen: Callable[[Any], None]


class HealthService(Service):
    """Feeds :class:`Health` from inside the worker's event loop.

    Handed to ``faust.Worker(app, service)`` so it starts *before* the app: Faust's own timers
    and services wait for table recovery, and a long recovery must not look like a dead loop.
    Also keeps ``leadflow_worker_ready`` current, and runs the ``redis_probes`` with each PING.
    """

    def __init__(
        self,
        app: Any,
        health: Health,
        settings: Any,
        metrics: Any,
        *,
        beat_interval_s: float = 1.0,
        redis_interval_s: float = 2.0,
        kafka_outage: Any = None,
        redis_probes: Iterable[RedisProbe] = (),
        on_first_ready: Callable[[], object] | None = None,
        **kwargs: Any,
    ) -> None:
        self.on_first_ready = on_first_ready  # called once, the first time the worker is ready
        self.kafka_outage = kafka_outage  # streams.kafka_outage.KafkaOutage: the kafka check, its log line
        self.app, self.health, self.settings, self.metrics = app, health, settings, metrics
        self.beat_interval_s = beat_interval_s
        self.redis_interval_s = redis_interval_s
        self.redis_probes = tuple(redis_probes)
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        self.add_future(self._heartbeat())
        self.add_future(self._watch_redis())

    async def _heartbeat(self) -> None:
        was_ready = False
        while not self.should_stop:
            if self.kafka_outage is not None:
                self.kafka_outage.tick()
                self.health.kafka_checked(self.kafka_outage.status())
            self.health.beat(consumer_state(self.app))
            ready, body = self.health.readiness()
            self.metrics.worker_ready.set(1 if ready else 0)
            if ready != was_ready:  # one line per change, e.g. per rebalance
                if ready:
                    log.info("worker ready")
                    if self.on_first_ready is not None:
                        first, self.on_first_ready = self.on_first_ready, None
                        first()
                else:
                    log.warning(
                        "worker not ready: %s", "; ".join(f"{name}: {body['checks'][name]}" for name in body["failing"])
                    )
                was_ready = ready
            await self.sleep(self.beat_interval_s)

    async def _watch_redis(self) -> None:
        from streams.connections import describe_redis_error, redis_async

        client = redis_async(self.settings, socket_connect_timeout=2, socket_timeout=2)
        try:
            while not self.should_stop:
                try:
                    async with client.pipeline(transaction=False) as pipe:
                        pipe.ping()
                        for probe in self.redis_probes:
                            probe.queue(pipe)
                        _, *results = await asyncio.wait_for(pipe.execute(), timeout=3)
                except Exception as exc:  # noqa: BLE001 - any failure is "not reachable", named
                    self.health.redis_checked(describe_redis_error(exc, self.settings))
                else:
                    self.health.redis_checked(None)
                    for probe, result in zip(self.redis_probes, results):
                        probe.seen(result)
                await self.sleep(self.redis_interval_s)
        finally:
            await client.aclose()
