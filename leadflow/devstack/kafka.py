"""A single-node Apache Kafka broker (KRaft, combined broker+controller) on loopback.

The jars come from Maven Central via `mvn` and kafka-pom.xml, cached per version under
`<jar_cache_dir>/<version>/libs`; once cached, starting is fully offline. Data, config,
log and pid file live in `data_dir`, so a later CLI invocation finds the broker again.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from leadflow.devstack.base import ManagedProcess, die_with_parent_preexec, launch_and_wait, port_is_free
from leadflow.devstack.exceptions import (
    DevStackError,
    JarFetchError,
    PortInUseError,
    ToolMissingError,
)

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
NODE_ID = 1
KAFKA_POM = Path(__file__).with_name("kafka-pom.xml")
LOG4J_CONFIG = Path(__file__).with_name("log4j.properties")
_MVN_TIMEOUT_S = 15 * 60
_MVN_OUTPUT_LINES = 30
_STALE_STAGING_AGE_S = 3600


# --- pure helpers ----------------------------------------------------------------------


@dataclass(frozen=True)
class SaslSslListener:
    """An extra SASL_SSL listener, as managed Kafka services expose (MSK, Confluent, Aiven).

    ``keystore_pem`` holds the broker's unencrypted PKCS#8 key and certificate chain (Kafka's
    PEM keystore); ``users`` are SCRAM users created when the storage is formatted (KIP-900),
    for both SCRAM-SHA-256 and SCRAM-SHA-512, and accepted with PLAIN as well.
    """

    port: int
    keystore_pem: Path
    users: Mapping[str, str] = field(default_factory=dict)

    def properties(self) -> dict[str, str]:
        plain_users = " ".join(f'user_{name}="{password}"' for name, password in self.users.items())
        return {
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};",
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(self.keystore_pem),
        }

    def format_arguments(self) -> list[str]:
        args = []
        for name, password in self.users.items():
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                args += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        return args


def server_properties(
    *, port: int, controller_port: int, log_dir: Path, sasl_ssl: SaslSslListener | None = None
) -> dict[str, str]:
    """Broker config for one combined broker+controller node on loopback."""
    props = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        # The app creates every topic with an explicit partition count (co-partitioning).
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        # One node: internal topics cannot be replicated; few partitions = faster first use.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "8",
        # Nobody else will join: do not delay the first consumer-group rebalance.
        "group.initial.rebalance.delay.ms": "0",
        # Accept oversized records (up to 10 MiB) so leadflow, not the broker, rejects them:
        # they reach the dead-letter topic with a reason instead of failing at the publisher.
        "message.max.bytes": str(10 * 1024 * 1024),
    }
    if sasl_ssl is not None:
        props["listeners"] += f",SASL_SSL://{HOST}:{sasl_ssl.port}"
        props["advertised.listeners"] += f",SASL_SSL://{HOST}:{sasl_ssl.port}"
        props["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
        props.update(sasl_ssl.properties())
    return props


def render_properties(props: Mapping[str, str]) -> str:
    """Java .properties text; backslashes escaped so Windows-ish or odd paths survive."""
    lines = [f"{key}={value.replace(chr(92), chr(92) * 2)}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """A Kafka cluster id (Uuid: 16 random bytes, URL-safe base64, no padding).

    Generated here rather than with `StorageTool random-uuid` to save a JVM start.
    Same rules as Kafka's Uuid.randomUuid(): not a reserved id, no leading '-'.
    """
    while True:
        raw = os.urandom(16)
        text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        if not text.startswith("-") and raw[:15] != bytes(15):  # 0 and 1 are reserved
            return text


def metadata_broker_ids(host: str, port: int, timeout: float = 1.0) -> list[int]:
    """Node ids of the live (registered, unfenced) brokers, from a raw Metadata v4 request.

    v4 is the oldest version Kafka 4.x still accepts and is non-flexible (no tagged
    fields), so a few struct calls suffice; asking for zero topics keeps the reply small.
    """
    correlation_id = 1
    client_id = b"leadflow-devstack"
    header = struct.pack(">hhih", 3, 4, correlation_id, len(client_id)) + client_id
    body = struct.pack(">ib", 0, 0)  # topics: empty array; allow_auto_topic_creation: false
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
        payload = _recv_exactly(sock, size)
    got_correlation, _throttle_ms, broker_count = struct.unpack_from(">iii", payload, 0)
    if got_correlation != correlation_id:
        raise DevStackError(f"unexpected Kafka correlation id {got_correlation}")
    offset = 12
    ids = []
    for _ in range(broker_count):
        node_id, host_len = struct.unpack_from(">ih", payload, offset)
        offset += 6 + host_len + 4  # node_id, host, port
        (rack_len,) = struct.unpack_from(">h", payload, offset)
        offset += 2 + max(rack_len, 0)  # -1 = null rack
        ids.append(node_id)
    return ids


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("Kafka closed the connection mid-response")
        chunks += chunk
    return bytes(chunks)


def find_java() -> str:
    """The java executable: $JAVA_HOME/bin/java if set, else `java` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home, "bin", "java"), os.X_OK):
        return str(Path(java_home, "bin", "java"))
    java = shutil.which("java")
    if java is None:
        raise ToolMissingError(
            "java not found (no $JAVA_HOME/bin/java, nothing on PATH). Kafka needs a JDK 17: "
            "on Debian/Ubuntu run `apt-get install -y openjdk-17-jre-headless`."
        )
    return java


# --- the server ------------------------------------------------------------------------


class KafkaServer:
    """One KRaft broker+controller; start() is idempotent and stop() leaves nothing behind."""

    def __init__(
        self,
        version: str,
        port: int,
        controller_port: int,
        data_dir: Path,
        jar_cache_dir: Path,
        heap: str = "512m",
        tie_to_parent: bool = False,
        sasl_ssl: SaslSslListener | None = None,
    ) -> None:
        self.sasl_ssl = sasl_ssl
        self.version = version
        self.port = port
        self.controller_port = controller_port
        self.data_dir = Path(data_dir)
        self.jar_cache_dir = Path(jar_cache_dir)
        self.heap = heap
        self.process = ManagedProcess(
            "kafka",
            argv=[],  # set by launch(): it needs the resolved java and jar paths
            log_file=self.data_dir / "kafka.log",
            pid_file=self.data_dir / "kafka.pid",
            cwd=self.data_dir,
            tie_to_parent=tie_to_parent,
        )

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def libs_dir(self) -> Path:
        return self.jar_cache_dir / self.version / "libs"

    @property
    def log_dir(self) -> Path:
        """Kafka's data (log.dirs), holding meta.properties once formatted."""
        return self.data_dir / "logs"

    @property
    def server_properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    # -- jars --

    def ensure_jars(self) -> Path:
        """Resolve the Kafka jars into the cache once; later calls are offline no-ops."""
        if self.libs_dir.is_dir() and any(self.libs_dir.glob("*.jar")):
            return self.libs_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ToolMissingError(
                f"mvn not found on PATH; it downloads Kafka {self.version} from Maven Central "
                "once. On Debian/Ubuntu run `apt-get install -y maven` (needs a JDK 17)."
            )
        version_dir = self.libs_dir.parent
        version_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging_dirs(version_dir)
        # Resolve into a private dir, then rename: a half-finished fetch is never mistaken
        # for a complete cache, and two concurrent fetches cannot mix their files.
        staging = Path(tempfile.mkdtemp(prefix=".libs-", dir=version_dir))
        try:
            started = time.monotonic()
            self._run_maven(mvn, staging)
            staging.chmod(0o755)  # mkdtemp makes it 0700; the cache is shared read-only
            try:
                staging.rename(self.libs_dir)
            except OSError:
                if not self.libs_dir.is_dir():
                    raise
                log.info("another process cached Kafka %s jars first; using those", self.version)
            log.info("fetched Kafka %s jars into %s in %.1fs", self.version, self.libs_dir, time.monotonic() - started)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.libs_dir

    def _run_maven(self, mvn: str, output_dir: Path) -> None:
        cmd = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(KAFKA_POM),
            f"-Dkafka.version={self.version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={output_dir}",
            "-DincludeScope=runtime",
        ]
        log.info("fetching Kafka %s jars with Maven (one-time)", self.version)
        try:
            result = subprocess.run(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=_MVN_TIMEOUT_S,
                preexec_fn=die_with_parent_preexec(),  # a dead caller needs no jars
            )
            failure = None if result.returncode == 0 else f"exit code {result.returncode}"
            output = result.stdout
        except subprocess.TimeoutExpired as exc:
            failure = f"no result after {_MVN_TIMEOUT_S}s"
            output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else ""
        if failure is None and not any(output_dir.glob("*.jar")):
            failure = "it succeeded but produced no jars"
        if failure:
            tail = "\n".join(output.splitlines()[-_MVN_OUTPUT_LINES:])
            raise JarFetchError(
                f"could not fetch Kafka {self.version} jars with Maven ({failure}). Check: "
                "network access to Maven Central (https://repo.maven.apache.org, or a proxy/"
                "mirror in ~/.m2/settings.xml); `mvn -v` works and runs on a JDK 17; "
                f"Kafka {self.version} exists (setting kafka_version). "
                f"Command: {' '.join(cmd)}\nMaven output:\n{tail}"
            )

    # -- lifecycle --

    def start(self, timeout: float = 90.0) -> float:
        """Start (unless running) and wait until the broker serves metadata; returns seconds."""
        return launch_and_wait(self, timeout)

    def launch(self) -> bool:
        """Prepare config and storage and spawn the JVM without waiting for readiness.

        Returns False if our broker was already running (nothing spawned).
        """
        if self.process.running_pid() is not None:
            log.info("kafka already running on %s", self.bootstrap)
            return False
        for port in (self.port, self.controller_port, *([self.sasl_ssl.port] if self.sasl_ssl else [])):
            if not port_is_free(port):
                raise PortInUseError(
                    f"port {HOST}:{port} is taken by another process, so Kafka cannot start. "
                    f"Find it with `ss -ltnp 'sport = :{port}'`, or choose other ports "
                    "(LEADFLOW_KAFKA_PORT / LEADFLOW_KAFKA_CONTROLLER_PORT)."
                )
        java = find_java()
        libs = self.ensure_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = server_properties(
            port=self.port,
            controller_port=self.controller_port,
            log_dir=self.log_dir,
            sasl_ssl=self.sasl_ssl,
        )
        self.server_properties_file.write_text(render_properties(props))
        self.server_properties_file.chmod(0o600)  # may hold PLAIN users' passwords
        self._format_storage_if_needed(java, libs)
        self.process.argv = self._java_command(java, libs, "kafka.Kafka", str(self.server_properties_file))
        self.process.start()
        return True

    @property
    def scram_marker_file(self) -> Path:
        return self.data_dir / "scram-users"

    def ensure_scram_users(self) -> None:
        """Create the SASL listener's SCRAM users on a broker whose storage was formatted
        without them (format time is the usual way; this covers a stack made before)."""
        if self.sasl_ssl is None or not self.sasl_ssl.users:
            return
        known = set(self.scram_marker_file.read_text().split()) if self.scram_marker_file.exists() else set()
        missing = {name: pw for name, pw in self.sasl_ssl.users.items() if name not in known}
        if not missing:
            return
        if port_is_free(self.sasl_ssl.port):
            raise DevStackError(
                f"the running Kafka has no SASL_SSL listener on {HOST}:{self.sasl_ssl.port}; restart the "
                "stack (`leadflow dev down`, then up) so it starts with one"
            )
        java, libs = find_java(), self.ensure_jars()
        for name, password in missing.items():
            config = ",".join(f"{m}=[password={password}]" for m in ("SCRAM-SHA-256", "SCRAM-SHA-512"))
            cmd = self._java_command(
                java,
                libs,
                "kafka.admin.ConfigCommand",
                "--bootstrap-server",
                self.bootstrap,
                "--alter",
                "--add-config",
                config,
                "--entity-type",
                "users",
                "--entity-name",
                name,
            )
            result = subprocess.run(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=120,
                preexec_fn=die_with_parent_preexec(),
            )
            if result.returncode != 0:
                raise DevStackError(f"could not create SCRAM user {name!r} (exit code {result.returncode})")
        self.scram_marker_file.write_text("\n".join(sorted(known | set(missing))) + "\n")

    def wait_ready(self, timeout: float = 90.0) -> float:
        return self.process.wait_ready(
            self.is_responding,
            timeout,
            interval=0.1,
            what=f"serving Kafka metadata on {self.bootstrap}",
        )

    def is_responding(self, timeout: float = 1.0) -> bool:
        """True once this node is a registered, unfenced broker answering Metadata requests."""
        return NODE_ID in metadata_broker_ids(HOST, self.port, timeout)

    def stop(self, timeout: float = 30.0) -> bool:
        """Controlled shutdown via SIGTERM, SIGKILL after `timeout`; True if it was running."""
        return self.process.stop(timeout)

    def status(self) -> dict[str, object]:
        status = self.process.status().to_dict()
        responding = False
        if status["running"]:
            try:
                responding = self.is_responding(timeout=0.5)
            except (OSError, DevStackError, struct.error):
                pass
        return {
            **status,
            "responding": responding,
            "bootstrap": self.bootstrap,
            "version": self.version,
            "data_dir": str(self.data_dir),
        }

    # -- internals --

    def _java_command(self, java: str, libs: Path, main_class: str, *args: str) -> list[str]:
        return [
            java,
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{LOG4J_CONFIG}",
            "-cp",
            f"{libs}/*",  # the JVM expands the wildcard itself
            main_class,
            *args,
        ]

    def _format_storage_if_needed(self, java: str, libs: Path) -> None:
        if (self.log_dir / "meta.properties").exists():
            return
        cluster_id_file = self.data_dir / "cluster-id"
        if cluster_id_file.exists():
            cluster_id = cluster_id_file.read_text().strip()
        else:
            cluster_id = new_cluster_id()
            cluster_id_file.write_text(cluster_id + "\n")
        cmd = self._java_command(
            java,
            libs,
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            cluster_id,
            "-c",
            str(self.server_properties_file),
            *(self.sasl_ssl.format_arguments() if self.sasl_ssl else []),
        )
        log.info(
            "formatting Kafka storage in %s (cluster id %s%s)",
            self.log_dir,
            cluster_id,
            f", SCRAM users {sorted(self.sasl_ssl.users)}" if self.sasl_ssl else "",
        )
        result = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            preexec_fn=die_with_parent_preexec(),
        )
        if result.returncode == 0 and self.sasl_ssl is not None:
            self.scram_marker_file.write_text("\n".join(sorted(self.sasl_ssl.users)) + "\n")
        if result.returncode != 0:
            tail = "\n".join(result.stdout.splitlines()[-_MVN_OUTPUT_LINES:])
            raise DevStackError(
                f"formatting Kafka storage in {self.log_dir} failed (exit code "
                f"{result.returncode}); delete {self.data_dir} to start from scratch.\n{tail}"
            )


def _remove_stale_staging_dirs(version_dir: Path) -> None:
    """Drop staging dirs left by an interrupted fetch (old enough not to be in use)."""
    cutoff = time.time() - _STALE_STAGING_AGE_S
    for staging in version_dir.glob(".libs-*"):
        try:
            if staging.stat().st_mtime < cutoff:
                shutil.rmtree(staging, ignore_errors=True)
        except FileNotFoundError:
            pass
