"""Running leadflow from the outside: a worker child process, readiness, output readers.

Shared by ``leadflow demo`` and ``leadflow bench`` (and usable from tests):

- ``settings_env(settings)``: the ``LEADFLOW_*`` environment that reproduces a Settings
  object in a child process;
- ``WorkerProcess``: ``python -m leadflow.cli worker`` as a ``ManagedProcess`` (own process
  group, tied to this process so it dies with it, log file), with its peak RSS (VmHWM);
- ``wait_for_group``: until the worker's consumer group is Stable with members (Faust's
  group id is the app id);
- ``OutputReader``: reads leadflow topics from given offsets, decoding Avro;
- ``percentile``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from leadflow.devstack.base import ManagedProcess
from streams.connections import redact_url
from streams.settings import REPO_ROOT, Settings

if TYPE_CHECKING:
    from leadflow.devstack import DevStack, StackReport


class HarnessError(RuntimeError):
    """Something the demo/bench needs did not happen; the message says what to try."""


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Our environment without any LEADFLOW_* variable, plus every setting as LEADFLOW_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    for name, value in settings.model_dump().items():
        if value is None:  # unset optional settings stay unset (not the string "None")
            continue
        if isinstance(value, SecretStr):  # the child needs the secret itself, via its environment
            value = value.get_secret_value()
        env[f"LEADFLOW_{name.upper()}"] = str(value)
    env.update(extra)
    return env


def read_vm_hwm_kib(pid: int) -> int | None:
    """Peak resident set size (VmHWM) of a live process, in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def read_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time consumed by a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WorkerProcess:
    """One ``leadflow worker`` child process configured by ``settings``."""

    def __init__(
        self,
        settings: Settings,
        workdir: Path,
        *,
        name: str = "worker",
        loglevel: str = "info",
        wrapper: Sequence[str] = (),
        module: str = "leadflow.cli",
        args: Sequence[str] | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        # loglevel: not "warn"/"error"/"crit": at those levels Faust's terminal spinner sets the
        # root logger to DEBUG, and every debug call in Faust and aiokafka builds a LogRecord.
        workdir.mkdir(parents=True, exist_ok=True)
        tail = list(args) if args is not None else ["worker", "--loglevel", loglevel]
        argv = [sys.executable, *wrapper, "-m", module, *tail]
        self.process = ManagedProcess(
            name,
            argv,
            log_file=workdir / f"{name}.log",
            pid_file=workdir / f"{name}.pid",
            cwd=REPO_ROOT,
            env=settings_env(settings, **(extra_env or {})),
            tie_to_parent=True,
        )
        self.peak_rss_kib: int | None = None
        self.cpu_s: float | None = None

    @property
    def log_file(self) -> Path:
        return self.process.log_file

    @property
    def pid(self) -> int | None:
        return self.process.running_pid()

    def start(self) -> int:
        return self.process.start()

    def alive(self) -> bool:
        return self.process.running_pid() is not None

    def sample(self) -> None:
        """Remember the latest VmHWM and CPU time (call before stop: they vanish with the process)."""
        pid = self.pid
        if pid is not None:
            self.peak_rss_kib = read_vm_hwm_kib(pid) or self.peak_rss_kib
            self.cpu_s = read_cpu_seconds(pid) or self.cpu_s

    def stop(self, timeout: float = 20.0) -> None:
        self.sample()
        self.process.stop(timeout=timeout)

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines)


async def wait_for_group(
    kafka: Mapping[str, Any], group_id: str, *, timeout: float, worker: WorkerProcess | None = None
) -> float:
    """Wait until the consumer group is Stable with at least one member; returns seconds waited."""
    from aiokafka.admin import AIOKafkaAdminClient

    started = time.monotonic()
    admin = AIOKafkaAdminClient(**kafka, request_timeout_ms=5000)
    await admin.start()
    try:
        while True:
            if worker is not None and not worker.alive():
                raise HarnessError(
                    f"the worker exited while starting; last lines of {worker.log_file}:\n{worker.log_tail(25)}"
                )
            try:
                for response in await admin.describe_consumer_groups([group_id]):
                    for group in response.groups:
                        state, members = group[2], group[5]
                        if state == "Stable" and members:
                            return time.monotonic() - started
            except Exception:  # noqa: BLE001 - coordinator not ready yet: keep polling
                pass
            if time.monotonic() - started > timeout:
                hint = f" Its log: {worker.log_file}" if worker is not None else ""
                raise HarnessError(
                    f"the worker's consumer group {group_id!r} was not ready after {timeout:.0f}s.{hint}"
                )
            await asyncio.sleep(0.25)
    finally:
        await admin.close()


async def end_offsets(kafka: Mapping[str, Any], topics: Iterable[str]) -> dict[Any, int]:
    """{TopicPartition: end offset} for every partition of ``topics``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**kafka, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tps: list[Any] = []  # aiokafka TopicPartitions
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                await consumer._client.force_metadata_update()  # noqa: SLF001 - first sight of the topic
                partitions = consumer.partitions_for_topic(topic) or set()
            tps.extend(TopicPartition(topic, p) for p in sorted(partitions))
        return dict(await consumer.end_offsets(tps)) if tps else {}
    finally:
        await consumer.stop()


class OutputReader:
    """Reads (and Avro-decodes) records of some topics from given start offsets.

    ``poll()`` returns [(topic, subject, record value dict, broker timestamp ms, key)];
    undecodable values come back with subject None and the raw bytes.
    """

    def __init__(
        self,
        kafka: Mapping[str, Any],
        codec: Any,
        start: Mapping[Any, int],
        *,
        decode: bool = True,
        max_records: int = 5000,
    ) -> None:
        self.kafka, self.codec, self.start_offsets = dict(kafka), codec, dict(start)
        self.decode, self.max_records = decode, max_records
        self._consumer: Any = None  # an AIOKafkaConsumer once started (aiokafka is untyped)

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        self._consumer = AIOKafkaConsumer(
            **self.kafka,
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await self._consumer.start()
        self._consumer.assign(list(self.start_offsets))
        for tp, offset in self.start_offsets.items():
            self._consumer.seek(tp, offset)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def poll(self, timeout_ms: int = 200) -> list[tuple[str, str | None, Any, int, bytes | None]]:
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_records)
        out: list[tuple[str, str | None, Any, int, bytes | None]] = []
        for tp, records in batch.items():
            for r in records:
                if not self.decode:
                    out.append((tp.topic, None, r.value, r.timestamp, r.key))
                    continue
                try:
                    subject, value = self.codec.decode(r.value)
                except Exception:  # noqa: BLE001 - show what could not be decoded, do not stop
                    subject, value = None, r.value
                out.append((tp.topic, subject, value, r.timestamp, r.key))
        return out

    async def positions(self) -> dict[Any, int]:
        assert self._consumer is not None
        return {tp: await self._consumer.position(tp) for tp in self.start_offsets}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# --- the local stack, started only if needed and stopped only if we started it ---------------


class StackSession:
    """Context manager: ``manage=True`` starts the dev stack (Kafka + Redis) if it is not
    running and, on exit, stops only what it started (unless ``keep``); ``manage=False``
    only checks that the configured Kafka answers."""

    def __init__(self, settings: Settings, *, manage: bool = True, keep: bool = False, secure: bool = False) -> None:
        self.settings, self.manage, self.keep, self.secure = settings, manage, keep, secure
        self.stack: DevStack | None = None
        self.report: StackReport | None = None
        self.started: list[str] = []

    def __enter__(self) -> StackSession:
        if not self.manage:
            if self.secure:
                raise HarnessError("the SASL_SSL comparison needs the local stack: drop --no-stack")
            check_kafka(self.settings, hint="drop --no-stack to let this command start it")
            return self
        from leadflow.devstack import DevStack

        self.stack = DevStack.from_settings(self.settings, secure=self.secure)
        self.report = self.stack.up()
        self.started = [
            name
            for name, was in (("kafka", self.report.kafka_was_running), ("redis", self.report.redis_was_running))
            if not was
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.stack is None or self.keep:
            return
        stack, self.stack = self.stack, None
        try:
            if "kafka" in self.started:
                stack.kafka.stop()
        finally:
            if "redis" in self.started:
                stack.redis.stop()

    def describe(self) -> str:
        if self.report is None:
            return f"using Kafka at {self.settings.kafka_bootstrap} (not managed)"
        if not self.started:
            return f"stack already running (Kafka {self.report.kafka_bootstrap}, Redis {redact_url(self.report.redis_url)}); left running"
        return f"started {' + '.join(self.started)}: {self.report.summary()}"

    def secure_overrides(self) -> dict[str, str]:
        """Client settings for the stack's SASL_SSL listener (``secure=True``)."""
        from leadflow.devstack.stack import sasl_ssl_client_overrides

        if self.stack is None or self.stack.kafka.sasl_ssl is None:
            raise HarnessError("this stack has no SASL_SSL listener")
        return sasl_ssl_client_overrides(self.stack.kafka.sasl_ssl, Path(self.settings.stack_dir) / "pki")

    def kafka_pid(self) -> int | None:
        return self.stack.kafka.process.running_pid() if self.stack is not None else None


def check_kafka(settings: Settings, timeout: float | None = None, *, hint: str | None = None) -> None:
    """Raise HarnessError (with what to try) unless Kafka answers with these settings
    (TCP, TLS and SASL included)."""
    from streams.connections import KafkaUnavailable, check_kafka_sync

    try:
        check_kafka_sync(settings, timeout)
    except KafkaUnavailable as exc:
        raise HarnessError(
            f"{exc}. Start the local stack with `leadflow dev up`{f' ({hint})' if hint else ''}, or "
            "point LEADFLOW_KAFKA_BOOTSTRAP (and the LEADFLOW_KAFKA_SECURITY_* settings) at a running broker."
        ) from None


class CpuMeter:
    """Machine-wide and per-process CPU use between ``start()`` and ``stop()``."""

    def __init__(self) -> None:
        self._t0: tuple[float, float] | None = None
        self._wall0 = 0.0
        self._procs0: dict[str, float] = {}
        self.result: dict[str, Any] = {}

    @staticmethod
    def _machine() -> tuple[float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        total = sum(fields[:8])
        idle = fields[3] + fields[4]
        tick = os.sysconf("SC_CLK_TCK")
        return total / tick, (total - idle) / tick

    def start(self, pids: Mapping[str, int | None]) -> None:
        self._pids = {k: v for k, v in pids.items() if v}
        self._t0 = self._machine()
        self._wall0 = time.monotonic()
        self._procs0 = {k: read_cpu_seconds(v) or 0.0 for k, v in self._pids.items()}
        self._self0 = time.process_time()

    def stop(self) -> dict[str, Any]:
        assert self._t0 is not None
        total1, busy1 = self._machine()
        wall = time.monotonic() - self._wall0
        total, busy = total1 - self._t0[0], busy1 - self._t0[1]
        procs = {k: round((read_cpu_seconds(v) or 0.0) - self._procs0[k], 2) for k, v in self._pids.items()}
        procs["bench_process"] = round(time.process_time() - self._self0, 2)
        ours = sum(procs.values())
        self.result = {
            "wall_s": round(wall, 2),
            "cores": os.cpu_count(),
            "machine_busy_pct": round(100 * busy / total, 1) if total else None,
            "cpu_s": procs,
            "other_processes_cpu_s": round(max(0.0, busy - ours), 2),
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }
        return self.result


def forget_redis_keys(settings: Settings) -> None:
    """Drop the run's Redis keys (roster copy, open-lead sets, idempotency keys)."""
    try:
        from streams.connections import redis_sync

        client = redis_sync(settings)
        keys = list(client.scan_iter(match=f"{settings.redis_key_prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    except Exception as exc:  # noqa: BLE001 - best effort: Redis may be gone already
        logging.getLogger(__name__).warning("could not delete a run's Redis keys: %s", exc)
