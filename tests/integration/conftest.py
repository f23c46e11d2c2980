"""Integration fixtures: one real Kafka (KRaft) + Redis for the whole session, started by the
project's own dev stack on test ports, and real worker processes per test."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import uuid
from pathlib import Path

import pytest

from streams.devstack import DevStack
from streams.devstack.base import ManagedProcess
from streams.settings import REPO_ROOT, Settings, load_settings
from tests.integration.kafkatools import KafkaTools

TEST_KAFKA_PORT = int(os.environ.get("LEADFLOW_TEST_KAFKA_PORT", "29092"))
TEST_REDIS_PORT = int(os.environ.get("LEADFLOW_TEST_REDIS_PORT", "26379"))


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory) -> Settings:
    stack_dir = tmp_path_factory.mktemp("stack")
    # Reuse the repo's jar cache so only the first run ever downloads Kafka.
    jar_cache = REPO_ROOT / ".leadflow" / "kafka"
    jar_cache.mkdir(parents=True, exist_ok=True)
    (stack_dir / "kafka").symlink_to(jar_cache, target_is_directory=True)
    return load_settings(
        stack_dir=stack_dir,
        kafka_port=TEST_KAFKA_PORT,
        kafka_controller_port=TEST_KAFKA_PORT + 1,
        kafka_bootstrap=f"127.0.0.1:{TEST_KAFKA_PORT}",
        redis_port=TEST_REDIS_PORT,
        redis_url=f"redis://127.0.0.1:{TEST_REDIS_PORT}/0",
    )


@pytest.fixture(scope="session")
def stack(stack_settings):
    dev_stack = DevStack.from_settings(stack_settings, tie_to_parent=True)
    dev_stack.up()
    try:
        yield dev_stack
    finally:
        dev_stack.down()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerHarness:
    """Real `leadflow worker` processes sharing one isolated topic prefix and app id."""

    def __init__(self, stack_settings: Settings, workdir: Path, **overrides: object) -> None:
        name = "t" + uuid.uuid4().hex[:10]
        self.workdir = workdir
        self.metrics_port = free_port()
        self.env_overrides = {
            "LEADFLOW_KAFKA_BOOTSTRAP": stack_settings.kafka_bootstrap,
            "LEADFLOW_REDIS_URL": stack_settings.redis_url,
            "LEADFLOW_APP_ID": name,
            "LEADFLOW_TOPIC_PREFIX": name,
            "LEADFLOW_TOPIC_PARTITIONS": "2",
            "LEADFLOW_DATA_DIR": str(workdir / "data"),
            "LEADFLOW_METRICS_PORT": str(self.metrics_port),
            "LEADFLOW_BROKER_SESSION_TIMEOUT_S": "6",
            "LEADFLOW_BROKER_COMMIT_INTERVAL_S": "0.5",
        }
        self.env_overrides.update({f"LEADFLOW_{k.upper()}": str(v) for k, v in overrides.items()})
        self.settings = load_settings(**{
            k.removeprefix("LEADFLOW_").lower(): v for k, v in self.env_overrides.items()
        })
        self.processes: list[ManagedProcess] = []

    def start(self) -> ManagedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
        env.update(self.env_overrides)
        index = len(self.processes)
        process = ManagedProcess(
            f"worker-{index}",
            [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "info"],
            log_file=self.workdir / f"worker-{index}.log",
            pid_file=self.workdir / f"worker-{index}.pid",
            cwd=REPO_ROOT,
            env=env,
            tie_to_parent=True,
        )
        process.start()
        self.processes.append(process)
        return process

    def wipe_local_state(self) -> None:
        """Drop the worker's RocksDB files, so a restart must rebuild from the changelog."""
        shutil.rmtree(self.workdir / "data", ignore_errors=True)

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop(timeout=20)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log_tail(60)}" for p in self.processes)


@pytest.fixture
def workers(stack, stack_settings, tmp_path):
    harness = WorkerHarness(stack_settings, tmp_path)
    try:
        yield harness
    finally:
        harness.stop_all()


@pytest.fixture
def kafka(stack, stack_settings) -> KafkaTools:
    return KafkaTools(stack_settings.kafka_bootstrap)
