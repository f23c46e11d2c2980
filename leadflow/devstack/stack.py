"""The local stack the pipeline needs: one Kafka broker and one Redis, started together."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from leadflow.devstack.kafka import KafkaServer
from leadflow.devstack.kafka_config import SaslSslListener
from leadflow.devstack.redis import RedisServer
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StackReport:
    """What up() did and how long each part took (seconds)."""

    kafka_bootstrap: str
    redis_url: str
    jar_fetch_s: float  # ~0 when the jar cache is warm
    kafka_start_s: float  # storage format (first time) + JVM start until metadata answers
    redis_start_s: float  # spawn until PING answers
    total_s: float
    kafka_was_running: bool
    redis_was_running: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"kafka {self.kafka_bootstrap} ({self.kafka_start_s:.1f}s, jars "
            f"{self.jar_fetch_s:.1f}s), redis {self.redis_url} ({self.redis_start_s:.2f}s); "
            f"total {self.total_s:.1f}s"
        )


DEV_SASL_USER = "leadflow"


def dev_sasl_ssl_listener(pki_dir: Path, port: int) -> SaslSslListener:
    """The local stack's SASL_SSL listener: its own CA and one SCRAM user whose random password
    is kept (0600) beside the certificates."""
    import secrets

    from leadflow.devstack.pki import ensure_tls_files

    files = ensure_tls_files(pki_dir)
    password_file = pki_dir / "kafka-password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(24) + "\n")
        password_file.chmod(0o600)
    return SaslSslListener(port, files.server_keystore, {DEV_SASL_USER: password_file.read_text().strip()})


def sasl_ssl_client_overrides(listener: SaslSslListener, pki_dir: Path) -> dict[str, str]:
    """Settings a client uses for that listener (the password by file, as in production)."""
    user = next(iter(listener.users))
    return {
        "kafka_bootstrap": f"127.0.0.1:{listener.port}",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": user,
        "kafka_sasl_password_file": str(pki_dir / "kafka-password"),
        "kafka_ssl_ca_file": str(pki_dir / "ca.pem"),
    }


class DevStack:
    def __init__(self, kafka: KafkaServer, redis: RedisServer) -> None:
        self.kafka = kafka
        self.redis = redis

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        tie_to_parent: bool = False,
        jar_cache_dir: Path | None = None,
        kafka_sasl_ssl: SaslSslListener | None = None,
        secure: bool = False,
    ) -> DevStack:
        """Stack laid out under settings.stack_dir; `jar_cache_dir` overrides the jar cache
        (tests share one cache so only the first run ever downloads)."""
        root = Path(settings.stack_dir)
        if secure and kafka_sasl_ssl is None:
            kafka_sasl_ssl = dev_sasl_ssl_listener(root / "pki", settings.kafka_port + 2)
        kafka = KafkaServer(
            version=settings.kafka_version,
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            data_dir=root / f"kafka-data-{settings.kafka_port}",
            jar_cache_dir=jar_cache_dir or root / "kafka",
            heap=settings.kafka_heap,
            tie_to_parent=tie_to_parent,
            sasl_ssl=kafka_sasl_ssl,
        )
        redis = RedisServer(
            port=settings.redis_port,
            data_dir=root / f"redis-data-{settings.redis_port}",
            tie_to_parent=tie_to_parent,
        )
        return cls(kafka, redis)

    def up(self, timeout: float = 90.0) -> StackReport:
        """Start whatever is not running and wait until both answer.

        Processes are spawned from the calling thread (PR_SET_PDEATHSIG follows the
        spawning thread); only the readiness waits run in parallel. On failure, whatever
        this call started is stopped again.
        """
        started = time.monotonic()
        spawned: list[KafkaServer | RedisServer] = []
        try:
            redis_spawned = self.redis.launch()
            redis_launch_s = time.monotonic() - started
            if redis_spawned:
                spawned.append(self.redis)
            with ThreadPoolExecutor(1, thread_name_prefix="devstack-redis") as pool:
                redis_ready = pool.submit(self.redis.wait_ready, timeout)
                jars_started = time.monotonic()
                self.kafka.ensure_jars()
                jar_fetch_s = time.monotonic() - jars_started
                kafka_started = time.monotonic()
                kafka_spawned = self.kafka.launch()
                if kafka_spawned:
                    spawned.append(self.kafka)
                self.kafka.wait_ready(timeout)
                self.kafka.ensure_scram_users()
                kafka_start_s = time.monotonic() - kafka_started
                redis_start_s = redis_launch_s + redis_ready.result()
        except BaseException:
            for server in reversed(spawned):
                try:
                    server.stop()
                except Exception:  # noqa: BLE001 - keep the original error
                    log.exception("could not stop %s after a failed start", server.process.name)
            raise
        report = StackReport(
            kafka_bootstrap=self.kafka.bootstrap,
            redis_url=self.redis.url,
            jar_fetch_s=round(jar_fetch_s, 3),
            kafka_start_s=round(kafka_start_s, 3),
            redis_start_s=round(redis_start_s, 3),
            total_s=round(time.monotonic() - started, 3),
            kafka_was_running=not kafka_spawned,
            redis_was_running=not redis_spawned,
        )
        log.info("dev stack up: %s", report.summary())
        return report

    def down(self, timeout: float = 30.0) -> None:
        """Stop both servers; Redis is stopped even if stopping Kafka fails."""
        try:
            self.kafka.stop(timeout)
        finally:
            self.redis.stop(timeout)

    def status(self) -> dict[str, dict[str, object]]:
        return {"kafka": self.kafka.status(), "redis": self.redis.status()}
