"""Reconnect backoff, outage state and log filtering (streams.kafka_outage), with an injected clock;
the aiokafka patch against a closed port (no broker needed)."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from streams import kafka_outage
from streams.kafka_outage import KafkaOutage, KafkaOutageLogFilter, exit_when_stop_waits_on_kafka
from streams.settings import SettingsError, load_settings
from tests.unit.streams.test_ratelimit import Clock

BROKER = ("127.0.0.1", 9092)


@pytest.fixture
def clock() -> Clock:
    return Clock()  # now = 1000.0, moved by hand


def outage_of(clock, *, live=lambda: False, rand=lambda: 0.5, **kw) -> KafkaOutage:
    """rand 0.5 = no jitter."""
    options = {"base_s": 0.1, "cap_s": 10.0, "log_interval_s": 10.0, **kw}
    return KafkaOutage(clock=clock, rand=rand, live_connections=live, **options)


def record(name: str, msg: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.makeLogRecord({"name": name, "msg": msg, "levelno": level, "levelname": logging.getLevelName(level)})


def test_delays_double_from_base_up_to_the_cap():
    outage = outage_of(Clock())
    assert [outage.delay_s(n) for n in range(0, 10)] == [0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    assert outage.delay_s(10_000) == 10.0  # no overflow


@pytest.mark.parametrize("rand, factor", [(0.0, 0.8), (1.0, 1.2)])
def test_jitter_is_twenty_percent_either_way(clock, rand, factor):
    outage = outage_of(clock, rand=lambda: rand)
    for _ in range(3):
        outage.failed(BROKER, ConnectionRefusedError())
    assert outage.begin_attempt(BROKER) == pytest.approx(0.4 * factor)


def test_one_attempt_per_window_and_a_success_resets(clock):
    outage = outage_of(clock)
    assert outage.begin_attempt(BROKER) == 0  # never failed: go
    outage.failed(BROKER, ConnectionRefusedError())
    assert outage.begin_attempt(BROKER) == pytest.approx(0.1)
    clock.now += 0.1
    assert outage.begin_attempt(BROKER) == 0  # this caller attempts...
    assert outage.begin_attempt(BROKER) == pytest.approx(0.1)  # ...the others wait for its window
    outage.failed(BROKER, ConnectionRefusedError())
    assert outage.begin_attempt(BROKER) == pytest.approx(0.2)
    outage.succeeded(BROKER)
    assert outage.begin_attempt(BROKER) == 0 and outage.attempts == 0


def test_outage_state_log_lines_and_recovery(clock, caplog):
    caplog.set_level(logging.INFO, logger="streams.kafka_outage")
    outage = outage_of(clock, describe=lambda exc: "connection refused")
    assert outage.status() == "ok" and outage.unreachable_for is None and outage.tick() is None
    outage.failed(BROKER, ConnectionRefusedError())
    assert [r.getMessage() for r in caplog.records] == [
        "Kafka unreachable: cannot connect to 127.0.0.1:9092 (connection refused); reconnecting with backoff "
        "from 0.1s to 10s, one line every 10s until it is back"
    ]
    for step in range(11):  # 0.1 + 0.2 + ... + 6.4 + 10 + 10 + 10 + 10 s
        clock.now += outage.delay_s(step + 1)
        outage.failed(BROKER, ConnectionRefusedError())
    assert outage.status() == f"unreachable for {clock.now - 1000:.0f}s, 12 reconnect attempts (connection refused)"
    lines = [outage.tick()]
    assert lines == [
        "Kafka unreachable for 53s, 12 reconnect attempts, next in 10s "
        "(connection refused; 0 client log lines held back)"
    ]
    assert outage.tick() is None  # once per interval
    clock.now += 9.9
    assert outage.tick() is None
    clock.now += 0.1
    assert outage.tick().startswith("Kafka unreachable for 63s, 12 reconnect attempts, next in 0s")
    outage.succeeded(BROKER)
    assert caplog.records[-1].getMessage() == (
        "Kafka reachable again after 63s, 12 reconnect attempts (0 client log lines held back)"
    )
    assert outage.status() == "ok" and outage.tick() is None


def test_a_live_connection_elsewhere_is_no_outage(clock):
    live = [True]
    outage = outage_of(clock, live=lambda: live[0])
    outage.failed(BROKER, ConnectionRefusedError())  # one broker of several, or a bootstrap alias
    assert outage.status() == "ok"
    live[0] = False
    assert outage.status().startswith("unreachable for 0s, 1 reconnect attempts")


def test_log_filter_shows_each_kind_once_during_an_outage(clock):
    outage = outage_of(clock)
    kafka_outage._state["outage"] = outage
    try:
        flt = KafkaOutageLogFilter()
        unable = record("aiokafka", "Unable connect to node with id %s: %s")
        assert flt.filter(unable)  # no outage: everything passes
        outage.failed(BROKER, ConnectionRefusedError())
        assert flt.filter(unable)  # first of its kind in the outage
        assert not flt.filter(record("aiokafka", "Unable connect to node with id %s: %s"))
        assert flt.filter(record("aiokafka.consumer.fetcher", "Failed fetch messages from %s: %s"))
        assert not flt.filter(record("aiokafka.consumer.fetcher", "Failed fetch messages from %s: %s"))
        assert flt.filter(record("aiokafka", "debug chatter", logging.INFO))  # below WARNING: not ours
        assert flt.filter(record("streams.app", "Unable connect to node with id %s: %s"))  # not aiokafka
        clock.now += 10
        assert outage.tick().endswith("; 2 client log lines held back)")
        outage.succeeded(BROKER)
        assert flt.filter(record("aiokafka", "Unable connect to node with id %s: %s"))
    finally:
        kafka_outage._state["outage"] = None
    assert KafkaOutageLogFilter().filter(record("aiokafka", "Unable connect"))  # nothing installed


def test_stop_watchdog_exits_only_while_kafka_is_unreachable(clock):
    exits = []
    live = [True]
    outage = outage_of(clock, live=lambda: live[0])
    outage.failed(BROKER, ConnectionRefusedError())
    thread = exit_when_stop_waits_on_kafka(outage, 0.05, poll_s=0.01, exit_process=exits.append)
    thread.join(0.3)
    assert exits == [] and thread.is_alive()  # reachable: a graceful stop may take its time
    live[0] = False
    thread.join(2)
    assert exits == [kafka_outage.STOPPED_WITHOUT_KAFKA]


def test_settings_reject_a_base_above_the_cap():
    with pytest.raises(
        SettingsError,
        match="LEADFLOW_KAFKA_RECONNECT_BACKOFF_S \\(20\\) must not exceed "
        "LEADFLOW_KAFKA_RECONNECT_BACKOFF_MAX_S \\(10\\)",
    ):
        load_settings(kafka_reconnect_backoff_s=20, kafka_reconnect_backoff_max_s=10)


def test_patched_client_paces_reconnects_to_a_closed_port():
    """aiokafka's own client, nothing listening: connection attempts follow the backoff instead
    of running as fast as the metadata loop asks."""
    from aiokafka.client import AIOKafkaClient
    from aiokafka.structs import BrokerMetadata

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: connections are refused
    settings = load_settings(
        kafka_bootstrap=f"127.0.0.1:{port}", kafka_reconnect_backoff_s=0.05, kafka_reconnect_backoff_max_s=0.2
    )
    outage = kafka_outage.install(settings)
    try:

        async def hammer() -> int:
            client = AIOKafkaClient(bootstrap_servers=settings.kafka_bootstrap)
            client.cluster._brokers = {1: BrokerMetadata(1, "127.0.0.1", port, None)}  # as metadata had it
            deadline = asyncio.get_running_loop().time() + 1.0
            calls = 0
            while asyncio.get_running_loop().time() < deadline:
                await client._get_conn(1)  # what every retry loop ends up calling
                calls += 1
            await client.close()
            return calls

        asyncio.run(hammer())
    finally:
        kafka_outage.uninstall()
    # 0.05, 0.1, 0.2, 0.2, ... s (+-20%) in one second: 6-8 attempts, not thousands.
    assert 4 <= outage.attempts <= 9, outage.attempts
    assert outage.status().startswith("unreachable for 1s") and "connection refused" in outage.status()
