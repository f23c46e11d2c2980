"""Integration fixtures: one real Kafka (KRaft) + Redis for the whole session, started by the
project's own dev stack on test ports, and real worker processes per test."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import uuid
from pathlib import Path

import pytest

from leadflow.devstack import DevStack
from leadflow.devstack.base import ManagedProcess
from leadflow.devstack.kafka_config import SaslSslListener
from leadflow.devstack.pki import TlsFiles, make_tls_files
from streams.settings import REPO_ROOT, Settings, load_settings
from streams.topics import TopicNames, ensure_topics
from tests.integration.kafkatools import KafkaTools

TEST_KAFKA_PORT = int(os.environ.get("LEADFLOW_TEST_KAFKA_PORT", "29092"))
TEST_REDIS_PORT = int(os.environ.get("LEADFLOW_TEST_REDIS_PORT", "26379"))


@pytest.fixture(scope="session")
def routing_config():
    """config/routing.yaml, loaded (read once, on first use: never at import)."""
    from tests.repo_config import default_routing_config

    return default_routing_config()


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory) -> Settings:
    stack_dir = tmp_path_factory.mktemp("stack")
    return load_settings(
        stack_dir=stack_dir,
        kafka_port=TEST_KAFKA_PORT,
        kafka_controller_port=TEST_KAFKA_PORT + 1,
        kafka_bootstrap=f"127.0.0.1:{TEST_KAFKA_PORT}",
        redis_port=TEST_REDIS_PORT,
        redis_url=f"redis://127.0.0.1:{TEST_REDIS_PORT}/0",
        api_port=0,  # a test that runs workers with the lead API asks for it (WorkerHarness(api=True))
    )


# The broker also has a SASL_SSL listener (SCRAM users created at format time, a certificate
# from a CA generated for the session), as managed Kafka services expose.
TEST_KAFKA_SASL_SSL_PORT = TEST_KAFKA_PORT + 2
SASL_USER, SASL_PASSWORD = "leadflow-svc", "s3cret-Scram-pw"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def stack(stack_settings, tls_files):
    # Reuse the repo's jar cache so only the first run ever downloads Kafka.
    dev_stack = DevStack.from_settings(
        stack_settings,
        tie_to_parent=True,
        jar_cache_dir=REPO_ROOT / ".leadflow" / "kafka",
        kafka_sasl_ssl=SaslSslListener(TEST_KAFKA_SASL_SSL_PORT, tls_files.server_keystore, {SASL_USER: SASL_PASSWORD}),
    )
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

    def __init__(self, stack_settings: Settings, workdir: Path, *, api: bool = False, **overrides: object) -> None:
        name = "t" + uuid.uuid4().hex[:10]
        self.workdir = workdir
        self.metrics_port = free_port()
        self.api = api  # serve the lead API, each worker on the port of its slot (process_env)
        self.api_ports: list[int] = [free_port()]
        self.env_overrides = {
            "LEADFLOW_API_PORT": str(self.api_ports[0]) if api else "0",
            "LEADFLOW_KAFKA_BOOTSTRAP": stack_settings.kafka_bootstrap,
            "LEADFLOW_REDIS_URL": stack_settings.redis_url,
            "LEADFLOW_APP_ID": name,
            "LEADFLOW_TOPIC_PREFIX": name,
            "LEADFLOW_TOPIC_PARTITIONS": "2",
            "LEADFLOW_DATA_DIR": str(workdir / "data"),
            "LEADFLOW_METRICS_PORT": str(self.metrics_port),
            "LEADFLOW_BROKER_SESSION_TIMEOUT_S": "6",
            "LEADFLOW_BROKER_COMMIT_INTERVAL_S": "0.5",
            # Tests publish while a worker is still starting on a shared 2-core machine: its first
            # events are seconds late, which the default 2 s bound treats as catch-up (MQL decided
            # a reorder window later). Live here means "published by the test just now".
            "LEADFLOW_LIVE_EVENT_BOUND_S": "30",
        }
        self.env_overrides.update({f"LEADFLOW_{k.upper()}": str(v) for k, v in overrides.items()})
        self.settings = load_settings(**{k.removeprefix("LEADFLOW_").lower(): v for k, v in self.env_overrides.items()})
        self.processes: list[ManagedProcess] = []
        self.killed: set[str] = set()
        # Each live process gets its own metrics port and local state directory (two workers
        # cannot share a port, nor RocksDB files). A slot is reused once its process is gone,
        # so a worker restarted after kill() serves on the same port and finds the same files.
        # Slot 0 is `metrics_port` / `workdir/data`, as before.
        self.metrics_ports: list[int] = [self.metrics_port]
        self._slot_of: dict[str, int] = {}
        # Topics exist before anyone produces or subscribes (as `leadflow topics create` does).
        asyncio.run(ensure_topics(self.settings))
        self.topics = TopicNames.from_settings(self.settings)

    def _free_slot(self) -> int:
        busy = {
            self._slot_of[p.name] for p in self.processes if p.name in self._slot_of and p.running_pid() is not None
        }
        for slot in range(len(self.metrics_ports)):
            if slot not in busy:
                return slot
        self.metrics_ports.append(free_port())
        self.api_ports.append(free_port())
        return len(self.metrics_ports) - 1

    def data_dir(self, slot: int) -> Path:
        return self.workdir / ("data" if slot == 0 else f"data-{slot}")

    def process_env(self, slot: int) -> dict[str, str]:
        """The environment of a worker in ``slot``: the harness settings, its port and data dir."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
        env.update(self.env_overrides)
        env["LEADFLOW_METRICS_PORT"] = str(self.metrics_ports[slot])
        if self.api:
            env["LEADFLOW_API_PORT"] = str(self.api_ports[slot])
        env["LEADFLOW_DATA_DIR"] = str(self.data_dir(slot))
        return env

    def start(self) -> ManagedProcess:
        slot = self._free_slot()
        env = self.process_env(slot)
        index = len(self.processes)
        process = ManagedProcess(
            f"worker-{index}",
            [sys.executable, "-m", "leadflow.cli", "worker", "--loglevel", "info"],
            log_file=self.workdir / f"worker-{index}.log",
            pid_file=self.workdir / f"worker-{index}.pid",
            cwd=REPO_ROOT,
            env=env,
            tie_to_parent=True,
        )
        self._slot_of[process.name] = slot
        process.start()
        self.processes.append(process)
        return process

    def metrics_port_of(self, process: ManagedProcess) -> int:
        return self.metrics_ports[self._slot_of.get(process.name, 0)]

    def api_port_of(self, process: ManagedProcess) -> int:
        return self.api_ports[self._slot_of.get(process.name, 0)]

    def kill(self, process: ManagedProcess) -> None:
        """kill -9 the whole process group: no shutdown hooks, no final commit."""
        self.killed.add(process.name)
        os.killpg(process.running_pid(), signal.SIGKILL)
        process.wait_for_exit(10)  # gone (and reaped) before anyone reuses its port or files

    def watch(self, until):
        """Wrap a consume predicate so a crashed worker fails the test at once, with its log."""

        def predicate(records):
            for process in self.processes:
                if process.name not in self.killed and process.running_pid() is None:
                    raise AssertionError(f"{process.name} exited unexpectedly\n{self.logs()}")
            return until(records)

        return predicate

    def wipe_local_state(self) -> None:
        """Drop the worker's RocksDB files, so a restart must rebuild from the changelog."""
        for slot in range(len(self.metrics_ports)):
            shutil.rmtree(self.data_dir(slot), ignore_errors=True)

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop(timeout=20)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log_tail(60)}" for p in self.processes) + self.counters()

    def counters(self) -> str:
        """The live workers' own leadflow_* counters: tells 'consumed nothing' from 'dropped'."""
        import urllib.request

        wanted = (
            "leadflow_events_in_total",
            "leadflow_duplicates_skipped_total",
            "leadflow_leads_scored_total",
            "leadflow_dead_letters_total",
        )
        out = []
        ports = [self.metrics_port_of(p) for p in self.processes if p.running_pid() is not None] or [self.metrics_port]
        for port in dict.fromkeys(ports):
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3).read().decode()
            except OSError as exc:
                out.append(f"\n(metrics on port {port} unavailable: {exc})")
                continue
            lines = [line for line in text.splitlines() if line.startswith(wanted) and not line.endswith(" 0.0")]
            out.append(f"\n--- live worker counters (port {port})\n" + "\n".join(lines))
        return "".join(out)


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


@pytest.fixture(scope="session")
def sasl_ssl_overrides(stack, tls_files, tmp_path_factory) -> dict[str, str]:
    """Settings (as LEADFLOW_* overrides) for the SASL_SSL listener: SCRAM-SHA-512, the session
    CA, the password from a file (as a Kubernetes Secret would mount it)."""
    password_file = tmp_path_factory.mktemp("secrets") / "kafka-password"
    password_file.write_text(SASL_PASSWORD + "\n")
    password_file.chmod(0o600)
    return {
        "kafka_bootstrap": f"127.0.0.1:{TEST_KAFKA_SASL_SSL_PORT}",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": SASL_USER,
        "kafka_sasl_password_file": str(password_file),
        "kafka_ssl_ca_file": str(tls_files.ca),
    }


# --- a real Confluent-compatible Schema Registry (Apicurio, ccompat API), only for the tests that
# ask for it: TLS with the session CA, basic auth, in-memory storage, BACKWARD compatibility as
# Confluent's registry has by default. The first run fetches Apicurio from Maven Central (~110 MB).
TEST_SCHEMA_REGISTRY_PORT = int(os.environ.get("LEADFLOW_TEST_SCHEMA_REGISTRY_PORT", str(TEST_KAFKA_PORT + 5)))
REGISTRY_USER, REGISTRY_PASSWORD = "leadflow-registry", "s3cret-Registry-pw"


@pytest.fixture(scope="module")  # up only while the registry tests run: ~300 MB of JVM
def schema_registry(tls_files, tmp_path_factory):
    from leadflow.devstack.schema_registry import RegistryTls, SchemaRegistryServer

    server = SchemaRegistryServer(
        TEST_SCHEMA_REGISTRY_PORT,
        tmp_path_factory.mktemp("schema-registry"),
        REPO_ROOT / ".leadflow" / "apicurio",
        tls=RegistryTls(tls_files.server_cert, tls_files.server_key),
        ca_file=tls_files.ca,
        users={REGISTRY_USER: REGISTRY_PASSWORD},
        tie_to_parent=True,
    )
    server.start(timeout=120)
    try:
        import httpx

        httpx.put(
            f"{server.url}/config",
            json={"compatibility": "BACKWARD"},
            auth=(REGISTRY_USER, REGISTRY_PASSWORD),
            verify=ssl_context(tls_files.ca),
            timeout=10,
        ).raise_for_status()
        yield server
    finally:
        server.stop()


def ssl_context(ca_file: Path):
    import ssl

    return ssl.create_default_context(cafile=str(ca_file))


@pytest.fixture(scope="module")
def schema_registry_overrides(schema_registry, tls_files, tmp_path_factory) -> dict[str, str]:
    """Settings (LEADFLOW_* overrides) for the test registry: password from a file, the session CA."""
    password_file = tmp_path_factory.mktemp("registry-secrets") / "registry-password"
    password_file.write_text(REGISTRY_PASSWORD + "\n")
    password_file.chmod(0o600)
    return {
        "schema_registry_url": schema_registry.url,
        "schema_registry_username": REGISTRY_USER,
        "schema_registry_password_file": str(password_file),
        "schema_registry_ca_file": str(tls_files.ca),
    }
