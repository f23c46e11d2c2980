"""Liveness / readiness logic with injected clock and state, and the HTTP routes next to /metrics."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from leadflow.compose import METRIC_VOCABULARY
from streams.health import ConsumerState, Health, consumer_state
from streams.metrics import Metrics

READY_CONSUMER = ConsumerState(
    rebalances=1, rebalancing=False, in_recovery=False, recovery_completed=True, partitions=26, generation=3
)


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health(clock) -> Health:
    return Health(clock=clock, live_after_s=10, redis_max_age_s=10)


def _ready(health: Health) -> Health:
    health.beat(READY_CONSUMER)
    health.redis_checked(None)
    return health


# --- liveness ---------------------------------------------------------------------------------


def test_live_while_starting_then_only_with_a_fresh_heartbeat(health, clock):
    assert health.liveness() == (True, {"live": True, "event_loop": "starting"})
    clock.now += 10.5  # the loop never ran the heartbeat
    ok, body = health.liveness()
    assert not ok and body["event_loop"].startswith("no heartbeat yet")
    health.beat()
    assert health.liveness()[0]
    clock.now += 10.0
    assert health.liveness()[0]
    clock.now += 0.5  # a blocked loop stops beating
    ok, body = health.liveness()
    assert not ok and body == {"live": False, "event_loop": "no heartbeat for 10.5s (event loop blocked?)"}
    health.beat()
    assert health.liveness()[0]


# --- readiness --------------------------------------------------------------------------------


def test_ready_when_every_check_passes(health):
    ok, body = _ready(health).readiness()
    assert ok and body == {
        "ready": True,
        "failing": [],
        "partitions": 26,
        "generation": 3,
        "checks": {"event_loop": "ok", "consumer_group": "ok", "table_recovery": "ok", "redis": "ok", "kafka": "ok"},
    }


def test_not_ready_before_anything_happened(health):
    ok, body = health.readiness()
    assert not ok
    assert body["failing"] == ["event_loop", "consumer_group", "table_recovery", "redis"]
    assert body["checks"]["consumer_group"] == "not joined yet"
    assert body["checks"]["redis"] == "not checked yet"


@pytest.mark.parametrize(
    "consumer, failing, text",
    [
        (ConsumerState(), ["consumer_group", "table_recovery"], "not joined yet"),
        (
            ConsumerState(rebalances=2, rebalancing=True, recovery_completed=True, generation=4),
            ["consumer_group"],
            "rebalancing (generation 4)",
        ),
        (
            ConsumerState(rebalances=1, rebalancing=True, in_recovery=True, generation=1),
            ["consumer_group", "table_recovery"],
            "reading changelogs",
        ),
        (ConsumerState(rebalances=1, rebalancing=False, recovery_completed=False), ["table_recovery"], "not finished"),
    ],
)
def test_consumer_group_and_recovery_checks(health, consumer, failing, text):
    _ready(health).beat(consumer)
    ok, body = health.readiness()
    assert not ok and body["failing"] == failing
    assert text in body["checks"].values()


def test_an_empty_assignment_after_a_completed_rebalance_is_ready(health):
    """More workers than partitions: the spare is in the group and can take over at once."""
    _ready(health).beat(ConsumerState(rebalances=1, recovery_completed=True, partitions=0, generation=2))
    ok, body = health.readiness()
    assert ok and body["partitions"] == 0


def test_redis_failure_and_stale_redis_result(health, clock):
    _ready(health)
    health.redis_checked("Redis at redis://127.0.0.1:6379/0: Connection refused")
    ok, body = health.readiness()
    assert not ok and body["failing"] == ["redis"]
    assert body["checks"]["redis"] == "Redis at redis://127.0.0.1:6379/0: Connection refused"
    health.redis_checked(None)
    assert health.readiness()[0]
    clock.now += 9
    health.beat(READY_CONSUMER)
    assert health.readiness()[0]
    clock.now += 2  # the PING loop stopped reporting
    health.beat(READY_CONSUMER)
    ok, body = health.readiness()
    assert not ok and body["checks"]["redis"] == "no PING result for 11.0s"


def test_a_blocked_loop_is_not_ready_either(health, clock):
    _ready(health)
    clock.now += 11
    ok, body = health.readiness()
    assert not ok and "event_loop" in body["failing"]


def test_consumer_state_reads_faust_flags():
    recovery = SimpleNamespace(completed=SimpleNamespace(is_set=lambda: True))
    app = SimpleNamespace(
        rebalancing_count=2,
        rebalancing=False,
        in_recovery=False,
        consumer_generation_id=7,
        tables=SimpleNamespace(recovery=recovery),
        consumer=SimpleNamespace(assignment=lambda: {("t", 0), ("t", 1)}),
    )
    assert consumer_state(app) == ConsumerState(
        rebalances=2, rebalancing=False, in_recovery=False, recovery_completed=True, partitions=2, generation=7
    )


def test_consumer_state_before_the_first_join_touches_no_consumer():
    class App:
        rebalancing_count = 0
        rebalancing = False
        in_recovery = False
        consumer_generation_id = 0
        tables = SimpleNamespace(recovery=SimpleNamespace(completed=SimpleNamespace(is_set=lambda: False)))

        @property
        def consumer(self):  # Faust would create one on access
            raise AssertionError("consumer accessed before the first rebalance")

    assert consumer_state(App()) == ConsumerState()


# --- HTTP: /metrics, /livez, /readyz, 404 -----------------------------------------------------------


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_endpoints_and_404(health, clock, caplog):
    metrics = Metrics(CollectorRegistry(), METRIC_VOCABULARY)
    port = _port()
    caplog.set_level("INFO", "streams.metrics")
    server = metrics.serve(port, health=health)  # default bind: loopback
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert f"on http://127.0.0.1:{port} (bound to 127.0.0.1)" in caplog.text
        base = f"http://127.0.0.1:{port}"
        status, text = _get(base + "/metrics")
        assert status == 200 and "leadflow_worker_ready 0.0" in text and "leadflow_roster_loaded 0.0" in text
        status, text = _get(base + "/readyz")
        assert status == 503 and json.loads(text)["ready"] is False
        _ready(health)
        status, text = _get(base + "/readyz")
        assert status == 200 and json.loads(text)["failing"] == []
        assert _get(base + "/livez")[0] == 200
        clock.now += 30
        status, text = _get(base + "/livez")
        assert status == 503 and json.loads(text)["live"] is False
        for path in ("/", "/metricsx", "/healthz", "/readyz/extra"):
            status, text = _get(base + path)
            assert status == 404, path
            assert json.loads(text)["paths"] == ["/metrics", "/livez", "/readyz"]
    finally:
        metrics.stop()


def test_without_health_only_metrics_is_served():
    metrics = Metrics(CollectorRegistry(), METRIC_VOCABULARY)
    port = _port()
    metrics.serve(port, addr="127.0.0.1")
    try:
        assert _get(f"http://127.0.0.1:{port}/metrics")[0] == 200
        assert _get(f"http://127.0.0.1:{port}/readyz")[0] == 404
    finally:
        metrics.stop()


def test_bind_address_is_a_setting(monkeypatch):
    from streams.settings import load_settings

    monkeypatch.delenv("LEADFLOW_METRICS_HOST", raising=False)
    assert load_settings().metrics_host == "127.0.0.1"
    monkeypatch.setenv("LEADFLOW_METRICS_HOST", "0.0.0.0")
    assert load_settings().metrics_host == "0.0.0.0"


# --- the worker side: Redis PING with the capabilities' probes --------------------------------


class _FakeRedis:
    """An async Redis whose pipelines record their commands and answer from ``answers``."""

    def __init__(self, answers):
        self.answers, self.sent, self.closed = list(answers), [], False

    def pipeline(self, transaction=True):
        client = self

        class Pipe:
            def __init__(self):
                self.commands = []

            async def __aenter__(self):
                return self

            async def __aexit__(self, *exc):
                return False

            def ping(self):
                self.commands.append(("PING",))

            def exists(self, key):
                self.commands.append(("EXISTS", key))

            async def execute(self):
                client.sent.append(self.commands)
                answer = client.answers.pop(0)
                if isinstance(answer, Exception):
                    raise answer
                return answer

        return Pipe()

    async def aclose(self):
        self.closed = True


def test_each_ping_carries_the_probes_and_hands_them_their_results(monkeypatch, health):
    import asyncio

    import streams.connections
    from streams.health import HealthService, RedisProbe

    fake = _FakeRedis([[True, 1], ConnectionError("refused"), [True, 0]])
    monkeypatch.setattr(streams.connections, "redis_async", lambda settings, **kw: fake)
    monkeypatch.setattr(streams.connections, "describe_redis_error", lambda exc, settings: f"down: {exc}")
    seen, checked = [], []
    health.redis_checked = checked.append  # record what the service reports, in order
    probe = RedisProbe(queue=lambda pipe: pipe.exists("p:roster:doc"), seen=seen.append)

    async def run():
        service = HealthService(
            SimpleNamespace(), health, SimpleNamespace(), SimpleNamespace(), redis_interval_s=0, redis_probes=[probe]
        )

        async def no_wait(seconds):
            if not fake.answers:
                service._stopped.set()

        service.sleep = no_wait
        await service._watch_redis()

    asyncio.run(run())
    assert fake.sent == [[("PING",), ("EXISTS", "p:roster:doc")]] * 3  # one round trip each
    assert checked == [None, "down: refused", None]
    assert seen == [1, 0]  # only answers Redis gave
    assert fake.closed


def test_on_first_ready_runs_once_at_the_first_ready_beat(monkeypatch):
    import asyncio

    import streams.health
    from streams.health import HealthService

    monkeypatch.setattr(streams.health, "consumer_state", lambda app: None)
    states = [False, True, False, True, True]  # ready, a rebalance, ready again

    class FakeHealth:
        def beat(self, consumer):
            pass

        def readiness(self):
            return states.pop(0), {"checks": {"consumer_group": "rebalancing"}, "failing": ["consumer_group"]}

    calls, gauge = [], []
    metrics = SimpleNamespace(worker_ready=SimpleNamespace(set=gauge.append))

    async def run():
        service = HealthService(
            SimpleNamespace(), FakeHealth(), SimpleNamespace(), metrics, on_first_ready=lambda: calls.append(len(gauge))
        )

        async def next_beat(seconds):
            if not states:
                service._stopped.set()

        service.sleep = next_beat
        await service._heartbeat()

    asyncio.run(run())
    assert gauge == [0, 1, 0, 1, 1]
    assert calls == [2]  # once, on the first ready beat (after its gauge was set)
