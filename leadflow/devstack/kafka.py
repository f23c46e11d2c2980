"""A single-node Apache Kafka broker (KRaft, combined broker+controller) on loopback.

The jars come from Maven Central (:mod:`leadflow.devstack.kafka_jars`), the broker's config
from :mod:`leadflow.devstack.kafka_config`. Data, config, log and pid file live in
`data_dir`, so a later CLI invocation finds the broker again.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import struct
import subprocess
from pathlib import Path

from leadflow.devstack.base import ManagedProcess, die_with_parent_preexec, launch_and_wait, port_is_free
from leadflow.devstack.exceptions import DevStackError, PortInUseError, ToolMissingError
from leadflow.devstack.kafka_config import (
    HOST,
    NODE_ID,
    SaslSslListener,
    new_cluster_id,
    render_properties,
    server_properties,
)
from leadflow.devstack.kafka_jars import ensure_kafka_jars

log = logging.getLogger(__name__)

LOG4J_CONFIG = Path(__file__).with_name("log4j.properties")
_TOOL_OUTPUT_LINES = 30  # of a failed Kafka tool, quoted in the error


# --- the Metadata probe and the JDK ------------------------------------------------------


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
        return ensure_kafka_jars(self.version, self.libs_dir)

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
            tail = "\n".join(result.stdout.splitlines()[-_TOOL_OUTPUT_LINES:])
            raise DevStackError(
                f"formatting Kafka storage in {self.log_dir} failed (exit code "
                f"{result.returncode}); delete {self.data_dir} to start from scratch.\n{tail}"
            )
