"""A Kafka outage, end to end, on a broker of its own: stop it under a running worker, measure
the worker, start it again on the same port and data, and check the worker carries on.

Used by ``test_broker_outage.py`` (a short outage in the normal suite) and by
``scripts/broker_outage.py`` (the full 60 s measurement). The session broker is never touched:
other tests share it, and this one has to take its broker away.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agents.domain.identity import lead_id_for_email
from leadflow.devstack import KafkaServer
from leadflow.devstack.base import process_cpu_seconds, process_group_members
from streams.settings import REPO_ROOT, load_settings
from tests.integration.conftest import WorkerHarness
from tests.integration.factories import as_json, form_submit
from tests.integration.kafkatools import KafkaTools

# aiokafka's per-attempt connection errors (the lines that used to flood the log).
PER_ATTEMPT = re.compile(r"Unable connect to|Unable to update metadata|Unable to request metadata")


@dataclass
class OutageReport:
    outage_s: float
    cpu_percent: float  # of one core, worker process, over the outage
    log_lines: int  # worker log lines written during the outage
    per_attempt_lines: int  # of which aiokafka's per-attempt connection errors
    readyz: list[tuple[float, int, list[str]]] = field(default_factory=list)  # (s into outage, status, failing)
    recovered_s: float | None = None  # broker answering again -> an event published then is processed
    ready_again_s: float | None = None  # broker answering again -> /readyz 200
    sigterm_exit_s: float | None = None  # SIGTERM during a second outage -> process gone
    orphans: list[int] = field(default_factory=list)  # processes of its group left after it exited
    outage_log: list[str] = field(default_factory=list)  # what the worker said during the outage

    @property
    def log_lines_per_s(self) -> float:
        return self.log_lines / self.outage_s

    def summary(self) -> str:
        not_ready = [t for t, status, _ in self.readyz if status == 503]
        return (
            f"outage {self.outage_s:.0f}s: worker CPU {self.cpu_percent:.1f}% of a core, "
            f"{self.log_lines} log lines ({self.log_lines_per_s:.2f}/s; {self.per_attempt_lines} per-attempt "
            f"connection errors), /readyz 503 in {len(not_ready)}/{len(self.readyz)} probes"
            f"{f' (first {not_ready[0]:.1f}s in)' if not_ready else ''}; after restart: event processed in "
            f"{_fmt(self.recovered_s)}, ready in {_fmt(self.ready_again_s)}; SIGTERM in an outage: exit in "
            f"{_fmt(self.sigterm_exit_s)}, {len(self.orphans)} orphans"
        )

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "log_lines_per_s": round(self.log_lines_per_s, 3)}, indent=2)


def _fmt(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f}s"


def readyz(port: int) -> tuple[int, list[str]]:
    """(HTTP status, failing checks) of a worker's /readyz; status 0 if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
            return response.status, json.loads(response.read())["failing"]
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()).get("failing", [])
    except (OSError, ValueError):
        return 0, []


class BrokerOutage:
    """A dedicated broker (``kafka_port``, controller on the next port) under ``workdir``, one
    worker on it with Redis at ``redis_url``. Use as a context manager: everything it starts
    is stopped on exit."""

    def __init__(self, workdir: Path, kafka_port: int, redis_url: str, **worker_settings: object) -> None:
        self.workdir = Path(workdir)
        self.kafka = KafkaServer(
            version=load_settings().kafka_version,
            port=kafka_port,
            controller_port=kafka_port + 1,
            data_dir=self.workdir / "kafka",
            jar_cache_dir=REPO_ROOT / ".leadflow" / "kafka",
            tie_to_parent=True,
        )
        self.redis_url = redis_url
        self.worker_settings = worker_settings
        self.harness: WorkerHarness | None = None
        self.kafka_tools = KafkaTools(self.kafka.bootstrap)

    def __enter__(self) -> BrokerOutage:
        self.kafka.start()
        try:
            settings = load_settings(kafka_bootstrap=self.kafka.bootstrap, redis_url=self.redis_url)
            self.harness = WorkerHarness(
                settings, self.workdir, redis_key_prefix="t" + uuid.uuid4().hex[:10], **self.worker_settings
            )
        except BaseException:
            self.kafka.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.harness is not None:
                self.harness.stop_all()
        finally:
            self.kafka.stop()

    # --- steps ------------------------------------------------------------------------------

    def process_one_event(self, timeout: float = 90.0) -> float:
        """Publish one form submit; seconds until its lead_scored is out."""
        email = f"outage-{uuid.uuid4().hex[:8]}@acme-logistics.com"
        started = time.monotonic()
        self.kafka_tools.produce(self.harness.topics.form_submits, [as_json(form_submit(email))])
        lead_id = lead_id_for_email(email)
        out = self.kafka_tools.consume(
            self.harness.topics.lead_scored,
            timeout=timeout,
            until=self.harness.watch(lambda records: any(r["value"]["lead_id"] == lead_id for r in records)),
        )
        if not any(r["value"]["lead_id"] == lead_id for r in out):
            # The whole recent log (read only on a miss): a miss after an outage shows up only
            # around the rebalance.
            recent = "\n".join(f"--- {p.name}\n{p.log_tail(400)}" for p in self.harness.processes)
            raise AssertionError(f"event not processed\n{recent}\n{self.harness.logs()}")
        return time.monotonic() - started

    def run(self, outage_s: float, *, sigterm_after_s: float = 5.0, probe_every_s: float = 1.0) -> OutageReport:
        harness = self.harness
        process = harness.start()
        port = harness.metrics_port_of(process)
        process.wait_ready(lambda: readyz(port)[0] == 200, 120, interval=0.5, what="ready (/readyz 200)")
        self.process_one_event()
        pid = process.running_pid()

        # Outage 1: measured.
        self.kafka.stop()
        log_offset = process.log_file.stat().st_size
        cpu_before, started = process_cpu_seconds(pid), time.monotonic()
        probes = []
        while (elapsed := time.monotonic() - started) < outage_s:
            probes.append((round(elapsed, 1), *readyz(port)))
            time.sleep(min(probe_every_s, max(0.0, outage_s - (time.monotonic() - started))))
        cpu_used, wall = process_cpu_seconds(pid) - cpu_before, time.monotonic() - started
        with process.log_file.open("rb") as log_file:
            log_file.seek(log_offset)
            outage_log = log_file.read().decode(errors="replace").splitlines()
        report = OutageReport(
            outage_s=wall,
            cpu_percent=100 * cpu_used / wall,
            log_lines=len(outage_log),
            per_attempt_lines=sum(1 for line in outage_log if PER_ATTEMPT.search(line)),
            readyz=probes,
            outage_log=outage_log[:60],
        )

        # Back: same port, same data; the worker must carry on by itself.
        self.kafka.start()
        back = time.monotonic()
        self.process_one_event(timeout=120)
        report.recovered_s = time.monotonic() - back
        process.wait_ready(lambda: readyz(port)[0] == 200, 60, interval=0.5, what="ready again after the outage")
        report.ready_again_s = time.monotonic() - back

        # Outage 2: SIGTERM while the broker is away.
        self.kafka.stop()
        time.sleep(sigterm_after_s)
        stopping = time.monotonic()
        os.killpg(pid, signal.SIGTERM)
        if process.wait_for_exit(60):
            report.sigterm_exit_s = time.monotonic() - stopping
        report.orphans = process_group_members(pid)
        process.stop(timeout=5)  # a no-op unless it ignored SIGTERM
        return report
