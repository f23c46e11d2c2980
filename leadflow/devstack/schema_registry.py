"""A real Confluent-compatible Schema Registry on loopback: Apicurio Registry 3.0.x, whose
``/apis/ccompat/v7`` speaks the Confluent REST API, with its default in-memory storage (a
restart forgets every schema, which is what tests want).

Maven Central serves each release's "all" assembly (the Quarkus runner jar plus ``lib/``);
``apicurio-pom.xml`` fetches it with ``mvn dependency:copy`` once and it is unpacked into
``<cache_dir>/<version>/app`` (git-ignored ``.leadflow/apicurio``); later starts are offline.
Optional TLS (PEM certificate and key) and HTTP basic auth (users in the config file) make it
stand in for a secured production registry.

    registry = SchemaRegistryServer(port, data_dir, cache_dir, users={"svc": "pw"}, tie_to_parent=True)
    registry.start()          # waits until the ccompat API answers
    registry.url              # http(s)://127.0.0.1:<port>/apis/ccompat/v7
    registry.stop()
"""

from __future__ import annotations

import base64
import logging
import re
import shutil
import ssl
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from leadflow.devstack.base import ManagedProcess, die_with_parent_preexec, launch_and_wait, port_is_free
from leadflow.devstack.exceptions import DevStackError, JarFetchError, PortInUseError, ToolMissingError
from leadflow.devstack.kafka import find_java

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
APICURIO_VERSION = "3.0.9"  # 3.1+ is built for Java 21; 3.0.x runs on the JDK 17 Kafka uses
APICURIO_POM = Path(__file__).with_name("apicurio-pom.xml")
CCOMPAT_PATH = "/apis/ccompat/v7"
_MVN_TIMEOUT_S = 15 * 60
_OUTPUT_LINES = 30
_USER_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
# Startup over throughput: a test registry answers a few hundred requests in its life.
_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto", "-Djava.awt.headless=true")


@dataclass(frozen=True)
class RegistryTls:
    cert_file: Path  # PEM server certificate (chain)
    key_file: Path  # PEM private key, unencrypted


def render_application_properties(
    *, port: int, tls: RegistryTls | None = None, users: Mapping[str, str] | None = None
) -> str:
    """Quarkus runtime config (``config/application.properties`` in the working directory)."""
    props = {"quarkus.http.host": HOST, "quarkus.http.port": str(port)}
    if tls is not None:
        props.update(
            {
                "quarkus.http.ssl-port": str(port),
                "quarkus.http.insecure-requests": "disabled",  # no plain-HTTP listener at all
                "quarkus.http.ssl.certificate.files": str(tls.cert_file),
                "quarkus.http.ssl.certificate.key-files": str(tls.key_file),
            }
        )
    if users:
        # Quarkus' own HTTP layer: basic auth against embedded users, on every path.
        props.update(
            {
                "quarkus.http.auth.basic": "true",
                "quarkus.security.users.embedded.enabled": "true",
                "quarkus.security.users.embedded.plain-text": "true",
                "quarkus.http.auth.permission.registry.paths": "/*",
                "quarkus.http.auth.permission.registry.policy": "authenticated",
            }
        )
        for name, password in users.items():
            if not _USER_NAME.match(name):
                raise DevStackError(f"registry user name {name!r}: use letters, digits, '.', '_' or '-'")
            props[f"quarkus.security.users.embedded.users.{name}"] = password
    return "".join(f"{key}={_escape(value)}\n" for key, value in props.items())


def _escape(value: str) -> str:
    """A .properties value, read back exactly (backslashes, newlines, a leading space)."""
    if "${" in value:  # SmallRye Config would expand it as an expression
        raise DevStackError("registry config values cannot contain '${'")
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n")
    return "\\" + escaped if escaped.startswith(" ") else escaped


class SchemaRegistryServer:
    """One Apicurio Registry; start() is idempotent and stop() leaves nothing behind."""

    def __init__(
        self,
        port: int,
        data_dir: Path,
        cache_dir: Path,
        *,
        version: str = APICURIO_VERSION,
        heap: str = "384m",
        tls: RegistryTls | None = None,
        ca_file: Path | None = None,
        users: Mapping[str, str] | None = None,
        tie_to_parent: bool = False,
    ) -> None:
        """``ca_file`` is only what the readiness check trusts (the CA that signed ``tls``)."""
        self.port = port
        self.data_dir = Path(data_dir)
        self.cache_dir = Path(cache_dir)
        self.version = version
        self.heap = heap
        self.tls = tls
        self.ca_file = ca_file
        self.users = dict(users or {})
        self.process = ManagedProcess(
            "schema-registry",
            argv=[],  # set by launch(): it needs the resolved java and jar
            log_file=self.data_dir / "schema-registry.log",
            pid_file=self.data_dir / "schema-registry.pid",
            cwd=self.data_dir,  # Quarkus reads ./config/application.properties
            tie_to_parent=tie_to_parent,
        )

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{HOST}:{self.port}{CCOMPAT_PATH}"

    @property
    def app_dir(self) -> Path:
        return self.cache_dir / self.version / "app"

    # -- the application (fetched once) --

    def ensure_app(self) -> Path:
        """The runnable jar, fetched and unpacked into the cache on first use."""
        jar = _runner_jar(self.app_dir)
        if jar is not None:
            return jar
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ToolMissingError(
                "mvn not found on PATH; it downloads Apicurio Registry from Maven Central once. "
                "On Debian/Ubuntu run `apt-get install -y maven` (needs a JDK 17)."
            )
        version_dir = self.app_dir.parent
        version_dir.mkdir(parents=True, exist_ok=True)
        # Fetch and unpack privately, then rename: a half-finished fetch is never mistaken for
        # a complete one, and two concurrent fetches cannot mix their files.
        staging = Path(tempfile.mkdtemp(prefix=".app-", dir=version_dir))
        try:
            started = time.monotonic()
            archive = self._fetch_archive(mvn, staging / "download")
            unpacked = staging / "app"
            with tarfile.open(archive) as tar:
                if hasattr(tarfile, "data_filter"):  # refuses absolute paths, links out, devices
                    tar.extractall(unpacked, filter="data")
                else:  # pragma: no cover - Python < 3.10.12 / 3.11.4
                    tar.extractall(unpacked)
            if _runner_jar(unpacked) is None:
                raise JarFetchError(f"{archive.name} holds no Quarkus runner jar; is {self.version} an Apicurio 3.x?")
            unpacked.chmod(0o755)
            try:
                unpacked.rename(self.app_dir)
            except OSError:
                if _runner_jar(self.app_dir) is None:
                    raise
                log.info("another process unpacked Apicurio Registry %s first; using that", self.version)
            log.info(
                "fetched Apicurio Registry %s into %s in %.1fs", self.version, self.app_dir, time.monotonic() - started
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return _runner_jar(self.app_dir)  # type: ignore[return-value]

    def _fetch_archive(self, mvn: str, output_dir: Path) -> Path:
        cmd = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(APICURIO_POM),
            f"-Dapicurio.version={self.version}",
            f"-Dapicurio.outputDirectory={output_dir}",
            "dependency:copy",
        ]
        log.info("fetching Apicurio Registry %s with Maven (one-time, ~110 MB)", self.version)
        try:
            result = subprocess.run(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=_MVN_TIMEOUT_S,
                preexec_fn=die_with_parent_preexec(),
            )
            failure = None if result.returncode == 0 else f"exit code {result.returncode}"
            output = result.stdout
        except subprocess.TimeoutExpired as exc:
            failure = f"no result after {_MVN_TIMEOUT_S}s"
            output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else ""
        archives = sorted(output_dir.glob("*.tar.gz")) if output_dir.is_dir() else []
        if failure is None and not archives:
            failure = "it succeeded but produced no archive"
        if failure:
            tail = "\n".join(output.splitlines()[-_OUTPUT_LINES:])
            raise JarFetchError(
                f"could not fetch Apicurio Registry {self.version} with Maven ({failure}). Check network "
                "access to Maven Central (or a mirror in ~/.m2/settings.xml) and that `mvn -v` works. "
                f"Command: {' '.join(cmd)}\nMaven output:\n{tail}"
            )
        return archives[0]

    # -- lifecycle --

    def start(self, timeout: float = 90.0) -> float:
        """Start (unless running) and wait until the ccompat API answers; returns seconds."""
        return launch_and_wait(self, timeout)

    def launch(self) -> bool:
        """Write the config and spawn the JVM; False if ours was already running."""
        if self.process.running_pid() is not None:
            log.info("schema registry already running at %s", self.url)
            return False
        if not port_is_free(self.port):
            raise PortInUseError(
                f"port {HOST}:{self.port} is taken by another process, so the schema registry cannot "
                f"start. Find it with `ss -ltnp 'sport = :{self.port}'` or choose another port."
            )
        java = find_java()
        jar = self.ensure_app()
        config = self.data_dir / "config" / "application.properties"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(render_application_properties(port=self.port, tls=self.tls, users=self.users))
        config.chmod(0o600)  # holds the users' passwords
        self.process.argv = [java, f"-Xmx{self.heap}", *_JVM_OPTIONS, "-jar", str(jar)]
        self.process.start()
        return True

    def wait_ready(self, timeout: float = 90.0) -> float:
        return self.process.wait_ready(self.is_responding, timeout, interval=0.25, what=f"answering at {self.url}")

    def is_responding(self, timeout: float = 1.0) -> bool:
        request = urllib.request.Request(f"{self.url}/subjects")
        if self.users:
            name, password = next(iter(self.users.items()))
            token = base64.b64encode(f"{name}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        context = ssl.create_default_context(cafile=str(self.ca_file)) if self.tls and self.ca_file else None
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                return response.status == 200
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise DevStackError(f"the schema registry refused the readiness check (HTTP {exc.code})") from None
            return False

    def stop(self, timeout: float = 20.0) -> bool:
        """SIGTERM (Quarkus shuts down cleanly), SIGKILL after ``timeout``; True if it was running."""
        return self.process.stop(timeout)

    def status(self) -> dict[str, object]:
        status = self.process.status().to_dict()
        responding = False
        if status["running"]:
            try:
                responding = self.is_responding(timeout=0.5)
            except (OSError, DevStackError):
                pass
        return {**status, "responding": responding, "url": self.url, "version": self.version}


def _runner_jar(app_dir: Path) -> Path | None:
    """quarkus-run.jar (fast-jar layout, Apicurio 3.1+) or ``*-runner.jar`` (3.0.x)."""
    if not app_dir.is_dir():
        return None
    fast_jar = app_dir / "quarkus-run.jar"
    if fast_jar.is_file():
        return fast_jar
    runners = sorted(app_dir.glob("*-runner.jar"))
    return runners[0] if runners and (app_dir / "lib").is_dir() else None
