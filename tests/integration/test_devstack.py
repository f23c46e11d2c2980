"""The dev stack itself against the real thing: a KRaft broker from Maven Central jars and
Debian's redis-server. Own ports (39092/39093, 36379), so it can run beside the session stack."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from leadflow.devstack import DevStack
from leadflow.devstack.base import is_alive, port_is_free, process_group_members
from streams.settings import REPO_ROOT, Settings, load_settings

pytestmark = pytest.mark.integration

KAFKA_PORT, KAFKA_CONTROLLER_PORT, REDIS_PORT = 39092, 39093, 36379
JAR_CACHE = REPO_ROOT / ".leadflow" / "kafka"  # shared: only the very first run downloads


def stack_settings(stack_dir: Path) -> Settings:
    return load_settings(
        stack_dir=stack_dir, kafka_port=KAFKA_PORT, kafka_controller_port=KAFKA_CONTROLLER_PORT, redis_port=REDIS_PORT
    )


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def nothing_left(pids: list[int]) -> bool:
    return all(not is_alive(pid) and not process_group_members(pid) for pid in pids)


async def kafka_roundtrip(bootstrap: str, topic: str) -> tuple[bytes, bytes]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # auto-create is off on our broker, as in production
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"lead-1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id="devstack-test", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=60)
    finally:
        await consumer.stop()
    return record.key, record.value


def test_stack_serves_kafka_and_redis_and_stops_without_leftovers(tmp_path):
    stack = DevStack.from_settings(stack_settings(tmp_path), tie_to_parent=True, jar_cache_dir=JAR_CACHE)
    pids: list[int] = []
    try:
        report = stack.up()
        status = stack.status()
        pids = [status["kafka"]["pid"], status["redis"]["pid"]]
        assert status["kafka"]["responding"] and status["redis"]["responding"]
        assert report.kafka_bootstrap == f"127.0.0.1:{KAFKA_PORT}"

        assert asyncio.run(kafka_roundtrip(report.kafka_bootstrap, "devstack-smoke")) == (b"lead-1", b"hello")
        client = redis.Redis.from_url(report.redis_url)
        client.set("devstack:smoke", "ok")
        assert client.get("devstack:smoke") == b"ok"
        client.close()

        # A second `up` (like a second CLI call) finds both running and starts nothing.
        again = DevStack.from_settings(stack_settings(tmp_path), jar_cache_dir=JAR_CACHE).up()
        assert again.kafka_was_running and again.redis_was_running
        assert [stack.kafka.process.running_pid(), stack.redis.process.running_pid()] == pids
    finally:
        stack.down()

    assert nothing_left(pids)
    assert stack.status()["kafka"]["running"] is False
    assert stack.status()["redis"]["running"] is False
    assert all(port_is_free(p) for p in (KAFKA_PORT, KAFKA_CONTROLLER_PORT, REDIS_PORT))


def test_killing_the_owner_with_sigkill_takes_the_stack_down(tmp_path):
    # The owner is a separate interpreter standing in for a pytest run that gets kill -9.
    owner_script = textwrap.dedent(f"""
        import json, sys, time
        from pathlib import Path
        from leadflow.devstack import DevStack
        from streams.settings import load_settings
        settings = load_settings(stack_dir=Path({str(tmp_path)!r}), kafka_port={KAFKA_PORT},
                                 kafka_controller_port={KAFKA_CONTROLLER_PORT},
                                 redis_port={REDIS_PORT})
        stack = DevStack.from_settings(settings, tie_to_parent=True,
                                       jar_cache_dir=Path({str(JAR_CACHE)!r}))
        stack.up()
        status = stack.status()
        print(json.dumps([status["kafka"]["pid"], status["redis"]["pid"]]), flush=True)
        time.sleep(300)
    """)
    owner = subprocess.Popen([sys.executable, "-c", owner_script], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    pids: list[int] = []
    try:
        line = owner.stdout.readline()
        assert line, f"owner exited early with code {owner.wait()}"
        pids = json.loads(line)
        assert all(is_alive(pid) for pid in pids)

        owner.send_signal(signal.SIGKILL)
        owner.wait()

        assert wait_until(lambda: nothing_left(pids), timeout=10)
        assert wait_until(lambda: all(port_is_free(p) for p in (KAFKA_PORT, KAFKA_CONTROLLER_PORT, REDIS_PORT)))
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()
        # If the tie failed, do not leave servers behind (the pid files still identify them).
        DevStack.from_settings(stack_settings(tmp_path), jar_cache_dir=JAR_CACHE).down(timeout=5)
