"""A private redis-server on loopback, with its config, data, log and pid file in data_dir."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from leadflow.devstack.base import ManagedProcess, launch_and_wait, port_is_free
from leadflow.devstack.exceptions import PortInUseError, ToolMissingError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_APT_TIMEOUT_S = 600
_apt_lock = threading.Lock()
_apt_updated = False  # `apt-get update` at most once per interpreter


def _quote(value: str) -> str:
    """A redis.conf double-quoted string (backslash and quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class RedisTls:
    """A TLS port beside the plain one (as managed Redis offers), for clients using rediss://."""

    port: int
    cert_file: Path
    key_file: Path
    ca_file: Path

    def conf_lines(self) -> list[str]:
        return [
            f"tls-port {self.port}",
            f"tls-cert-file {_quote(str(self.cert_file))}",
            f"tls-key-file {_quote(str(self.key_file))}",
            f"tls-ca-cert-file {_quote(str(self.ca_file))}",
            "tls-auth-clients optional",  # client certificates (mTLS) accepted, not required
        ]


def render_redis_conf(
    *, port: int, data_dir: Path, log_file: Path, password: str | None = None, tls: RedisTls | None = None
) -> str:
    extra = ([f"requirepass {_quote(password)}"] if password else []) + (tls.conf_lines() if tls else [])
    return (
        "\n".join(
            [
                f"bind {HOST}",
                f"port {port}",
                "protected-mode yes",
                "daemonize no",  # we own the process: no fork, no pidfile of its own
                f"dir {_quote(str(data_dir))}",
                f"logfile {_quote(str(log_file))}",
                # Durable enough for dev (survives restarts), and no RDB snapshot forks.
                "appendonly yes",
                'save ""',
                *extra,
            ]
        )
        + "\n"
    )


def ensure_redis_installed() -> str:
    """Path of redis-server, installing Debian's package first when we are root."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0:
        raise ToolMissingError(
            "redis-server not found on PATH. Install it with "
            "`sudo apt-get update && sudo apt-get install -y redis-server` "
            "(or your OS's redis package), then retry."
        )
    global _apt_updated
    with _apt_lock:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if not _apt_updated:
            _run_apt(["apt-get", "update", "-qq"], env)
            _apt_updated = True
        _run_apt(["apt-get", "install", "-y", "-qq", "redis-server"], env)
    found = shutil.which("redis-server")
    if not found:
        raise ToolMissingError(
            "installed the redis-server package, but redis-server is still not on PATH (is /usr/bin on PATH?)"
        )
    return found


def _run_apt(cmd: list[str], env: dict[str, str]) -> None:
    log.info("running %s", " ".join(cmd))
    result = subprocess.run(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=_APT_TIMEOUT_S
    )
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-20:])
        raise ToolMissingError(
            f"redis-server is missing and `{' '.join(cmd)}` failed (exit code {result.returncode}):\n{tail}"
        )


class RedisServer:
    """One redis-server; start() is idempotent and stop() leaves nothing behind."""

    def __init__(
        self,
        port: int,
        data_dir: Path,
        tie_to_parent: bool = False,
        *,
        password: str | None = None,
        tls: RedisTls | None = None,
    ) -> None:
        self.password = password
        self.tls = tls
        self.port = port
        self.data_dir = Path(data_dir)
        self.conf_file = self.data_dir / "redis.conf"
        self.process = ManagedProcess(
            "redis",
            argv=[],  # set by launch(): it needs the resolved redis-server path
            # redis logs to this file itself; early errors (bad config) arrive via stderr
            log_file=self.data_dir / "redis.log",
            pid_file=self.data_dir / "redis.pid",
            cwd=self.data_dir,
            tie_to_parent=tie_to_parent,
        )

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def ensure_installed(self) -> str:
        return ensure_redis_installed()

    def start(self, timeout: float = 30.0) -> float:
        """Start (unless running) and wait until PING answers; returns seconds taken."""
        return launch_and_wait(self, timeout)

    def launch(self) -> bool:
        """Write the config and spawn redis-server; False if ours was already running."""
        if self.process.running_pid() is not None:
            log.info("redis already running on %s", self.url)
            return False
        if self.tls is not None and not port_is_free(self.tls.port):
            raise PortInUseError(f"port {HOST}:{self.tls.port} (Redis TLS) is taken by another process")
        if not port_is_free(self.port):
            raise PortInUseError(
                f"port {HOST}:{self.port} is taken by another process, so Redis cannot start. "
                f"Find it with `ss -ltnp 'sport = :{self.port}'`, or choose another port "
                "(LEADFLOW_REDIS_PORT)."
            )
        redis_server = self.ensure_installed()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf_file.write_text(
            render_redis_conf(
                port=self.port,
                data_dir=self.data_dir,
                log_file=self.process.log_file,
                password=self.password,
                tls=self.tls,
            )
        )
        self.conf_file.chmod(0o600)  # may hold requirepass
        self.process.argv = [redis_server, str(self.conf_file)]
        self.process.start()
        return True

    def wait_ready(self, timeout: float = 30.0) -> float:
        return self.process.wait_ready(
            self.is_responding, timeout, interval=0.02, what=f"answering PING on {HOST}:{self.port}"
        )

    def is_responding(self, timeout: float = 0.5) -> bool:
        with self._client(timeout) as client:
            return bool(client.ping())

    def stop(self, timeout: float = 10.0) -> bool:
        """SHUTDOWN NOSAVE, then process-group SIGTERM/SIGKILL for whatever is left."""
        if self.process.running_pid() is None:
            return self.process.stop(timeout)  # only tidies a stale pid file
        try:
            with self._client(timeout=2.0) as client:
                client.shutdown(nosave=True)
            self.process.wait_for_exit(timeout)
        except redis.RedisError as exc:
            log.warning("redis SHUTDOWN failed (%s); falling back to signals", exc)
        self.process.stop(timeout)
        return True

    def status(self) -> dict[str, object]:
        status = self.process.status().to_dict()
        responding = False
        if status["running"]:
            try:
                responding = self.is_responding(timeout=0.5)
            except redis.RedisError:
                pass
        return {**status, "responding": responding, "url": self.url, "data_dir": str(self.data_dir)}

    def _client(self, timeout: float) -> redis.Redis:
        # No client-side retries: probes poll on their own, and SHUTDOWN's expected
        # connection drop would otherwise be retried with backoff for seconds.
        return redis.Redis(
            host=HOST,
            port=self.port,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
