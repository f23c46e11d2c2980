"""The Kafka jars, fetched once from Maven Central with `mvn` and kafka-pom.xml and cached per
version under ``<jar_cache_dir>/<version>/libs``; once cached, starting a broker is offline."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from leadflow.devstack.base import die_with_parent_preexec
from leadflow.devstack.exceptions import JarFetchError, ToolMissingError

log = logging.getLogger(__name__)

KAFKA_POM = Path(__file__).with_name("kafka-pom.xml")
_MVN_TIMEOUT_S = 15 * 60
_MVN_OUTPUT_LINES = 30
_STALE_STAGING_AGE_S = 3600


def ensure_kafka_jars(version: str, libs_dir: Path) -> Path:
    """Resolve the jars of Kafka ``version`` into ``libs_dir`` once; later calls are offline no-ops."""
    if libs_dir.is_dir() and any(libs_dir.glob("*.jar")):
        return libs_dir
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ToolMissingError(
            f"mvn not found on PATH; it downloads Kafka {version} from Maven Central "
            "once. On Debian/Ubuntu run `apt-get install -y maven` (needs a JDK 17)."
        )
    version_dir = libs_dir.parent
    version_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging_dirs(version_dir)
    # Resolve into a private dir, then rename: a half-finished fetch is never mistaken
    # for a complete cache, and two concurrent fetches cannot mix their files.
    staging = Path(tempfile.mkdtemp(prefix=".libs-", dir=version_dir))
    try:
        started = time.monotonic()
        _run_maven(mvn, version, staging)
        staging.chmod(0o755)  # mkdtemp makes it 0700; the cache is shared read-only
        try:
            staging.rename(libs_dir)
        except OSError:
            if not libs_dir.is_dir():
                raise
            log.info("another process cached Kafka %s jars first; using those", version)
        log.info("fetched Kafka %s jars into %s in %.1fs", version, libs_dir, time.monotonic() - started)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return libs_dir


def _run_maven(mvn: str, version: str, output_dir: Path) -> None:
    cmd = [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(KAFKA_POM),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
        "-DincludeScope=runtime",
    ]
    log.info("fetching Kafka %s jars with Maven (one-time)", version)
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
            f"could not fetch Kafka {version} jars with Maven ({failure}). Check: "
            "network access to Maven Central (https://repo.maven.apache.org, or a proxy/"
            "mirror in ~/.m2/settings.xml); `mvn -v` works and runs on a JDK 17; "
            f"Kafka {version} exists (setting kafka_version). "
            f"Command: {' '.join(cmd)}\nMaven output:\n{tail}"
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
