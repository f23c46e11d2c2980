"""The fault scenarios of ``make chaos`` and the machinery that runs one: a run of its own
(topic prefix, app id, Redis keys, data dirs) on the suite's Kafka + Redis, real worker
processes, the pinned workload, the fault, then the outputs read back from offset 0."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadflow.chaos.compare import Divergence, RunOutputs
from leadflow.chaos.workload import PacedPublisher, Workload
from leadflow.devstack import DevStack
from leadflow.simulator.harness import (
    OutputReader,
    WorkerProcess,
    end_offsets,
    forget_redis_keys,
    percentile,
    read_cpu_seconds,
    wait_for_group,
)
from streams.connections import kafka_client_kwargs
from streams.settings import Settings

COMPARED_ROLES = ("mqls", "assignments", "sla_breaches", "lead_scored")


@dataclass(frozen=True)
class ChaosOptions:
    kills: int = 5
    broker_outage_s: float = 10.0
    long_outage_s: float = 60.0
    redis_outage_s: float = 30.0
    settle_s: float = 15.0  # after the group has drained, before outputs are read (timers fire)
    drain_timeout_s: float = 180.0
    score_tolerance: float = 0.01  # points
    breach_guard_s: float = 5.0  # breaches due this close to the end are not compared
    lag_floor: int = 50  # "recovered" = group lag <= max(lag_floor, 2 x the baseline's p95 lag)
    probe_every_s: float = 0.5
    drain_slack: int = 40  # records of timer commands (sweeps, reviews) not yet committed
    worker_settings: dict[str, Any] = field(
        default_factory=lambda: {
            "broker_session_timeout_s": 6.0,
            "broker_commit_interval_s": 0.5,
            "metrics_port": 0,
            "api_port": 0,
        }
    )


@dataclass
class ScenarioReport:
    name: str
    title: str
    published: int = 0
    wall_s: float = 0.0
    drained_s: float | None = None  # last stamp -> group lag 0 (None: not within the timeout)
    recover_s: list[float | None] = field(default_factory=list)  # per fault: end of fault -> lag back
    cpu_outage_pct: float | None = None  # worker CPU (% of one core) during a broker outage
    held_max: int = 0  # events a publisher held back during a broker outage
    orphans: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    divergence: Divergence | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def failures(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.divergence.failures()) if self.divergence else {}
        if self.orphans:
            out["orphans"] = len(self.orphans)
        if self.drained_s is None:
            out["not_drained"] = 1
        if self.error:
            out["error"] = self.error
        if any(r is None for r in self.recover_s):
            out["not_recovered"] = sum(1 for r in self.recover_s if r is None)
        return out

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "divergence"}
        data["divergence"] = self.divergence.to_dict() if self.divergence else None
        data["failures"] = self.failures()
        return data


def recovery_time(
    samples: list[tuple[float, int | None, int | None]], fault_end: float, threshold: int
) -> float | None:
    """Seconds from ``fault_end`` until the group's lag is <= ``threshold`` *and* its committed
    offsets have moved past where the first probe after the fault found them (a worker that has
    not come back is not "recovered" because its lag happened to be small). ``samples``: (time
    the probe asked, lag, committed sum); probes that failed have None."""
    after = [(t, lag, c) for t, lag, c in samples if t > fault_end and c is not None and lag is not None]
    if not after:
        return None
    committed_then = after[0][2]
    for t, lag, committed in after[1:]:
        if lag <= threshold and committed > committed_then:
            return round(t - fault_end, 2)
    return None


class LagProbe:
    """The consumer group's total lag over every partition it has committed (inputs, internal
    topics, routed outputs). Tolerates the broker being away: a failed probe yields None."""

    def __init__(self, kafka: dict[str, Any], group: str) -> None:
        self.kafka, self.group = kafka, group
        self._admin = self._consumer = None

    async def _clients(self):
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        if self._admin is None:
            self._admin = AIOKafkaAdminClient(**self.kafka, request_timeout_ms=3000)
            self._consumer = AIOKafkaConsumer(
                **self.kafka, enable_auto_commit=False, group_id=None, request_timeout_ms=3000
            )
            await self._admin.start()
            await self._consumer.start()
        return self._admin, self._consumer

    async def sample(self) -> tuple[int | None, int | None, int | None]:
        """(lag over every partition, committed offsets summed, lag of the input topics alone)."""
        try:
            admin, consumer = await asyncio.wait_for(self._clients(), 5)
            committed = await asyncio.wait_for(admin.list_consumer_group_offsets(self.group), 3)
            ends = await asyncio.wait_for(consumer.end_offsets(list(committed)), 3)
        except Exception:  # noqa: BLE001 - broker away or restarting: no sample, fresh clients next time
            await self.close()
            return None, None, None
        lags = {tp: max(0, ends[tp] - meta.offset) for tp, meta in committed.items() if meta.offset >= 0}
        inputs = sum(lag for tp, lag in lags.items() if ".in." in tp.topic)
        return sum(lags.values()), sum(meta.offset for meta in committed.values() if meta.offset >= 0), inputs

    async def close(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        for client in (consumer, admin):
            if client is not None:
                try:
                    await asyncio.wait_for(client.close() if client is admin else client.stop(), 5)
                except Exception:  # noqa: BLE001 - closing a client of a dead broker
                    pass


def orphans_of(run_id: str, pgids: set[int]) -> list[str]:
    """Live processes a run left behind: its workers' process groups or LEADFLOW_APP_ID=run_id."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            mine = os.getpgid(proc.pid) in pgids or proc.environ().get("LEADFLOW_APP_ID") == run_id
        except (psutil.Error, OSError):
            continue
        if mine:
            found.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])[:80]}")
    return found


@dataclass
class RunContext:
    """What a scenario's fault script can touch."""

    stack: DevStack
    workers: list[WorkerProcess]
    paced: PacedPublisher
    publish_task: asyncio.Task
    origin: float  # wall clock seconds of the workload's origin
    span_s: float
    report: ScenarioReport
    fault_ends: list[float] = field(default_factory=list)

    async def at(self, fraction: float) -> None:
        """Sleep until ``fraction`` of the workload's span has passed."""
        await asyncio.sleep(max(0.0, self.origin + fraction * self.span_s - time.time()))

    def kill(self, worker: WorkerProcess) -> None:
        """kill -9 the worker's whole process group: no shutdown hooks, no final commit."""
        pid = worker.pid
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)
            worker.process.wait_for_exit(10)


async def kill_and_restart(ctx: RunContext, kills: int) -> None:
    for k in range(1, kills + 1):
        await ctx.at(k / (kills + 1))
        ctx.kill(ctx.workers[0])
        ctx.workers[0].start()  # same data dir: it finds its RocksDB files (as a restarted pod would)
        ctx.fault_ends.append(time.time())


async def broker_outage(ctx: RunContext, seconds: float, *, measure_cpu: bool = False) -> None:
    await ctx.at(0.4)
    await ctx.paced.pause(ctx.publish_task)  # publishers hold their events while the broker is away
    await asyncio.to_thread(ctx.stack.kafka.stop)
    pid = ctx.workers[0].pid
    cpu0, t0 = (read_cpu_seconds(pid) if pid else None), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1 = read_cpu_seconds(pid) if pid else None
    if measure_cpu and cpu0 is not None and cpu1 is not None:
        ctx.report.cpu_outage_pct = round(100 * (cpu1 - cpu0) / (time.monotonic() - t0), 1)
    ctx.stack.kafka.launch()  # from this (the main) thread: the JVM is tied to it
    await asyncio.to_thread(ctx.stack.kafka.wait_ready, 120)
    ctx.fault_ends.append(time.time())
    ctx.paced.resume()
    ctx.report.held_max = ctx.paced.held_max


async def redis_outage(ctx: RunContext, seconds: float) -> None:
    await ctx.at(0.4)
    await asyncio.to_thread(ctx.stack.redis.stop)
    await asyncio.sleep(seconds)
    ctx.stack.redis.launch()
    await asyncio.to_thread(ctx.stack.redis.wait_ready, 30)
    ctx.fault_ends.append(time.time())


async def kill_one_of_two(ctx: RunContext) -> None:
    await ctx.at(0.5)
    ctx.kill(ctx.workers[1])  # not restarted: the survivor takes its partitions (standby copies)
    ctx.fault_ends.append(time.time())


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    inject: Callable[[RunContext, ChaosOptions], Awaitable[None]] | None
    workers: int = 1
    standby_replicas: int = 0


def scenarios(opts: ChaosOptions) -> list[Scenario]:
    """Baseline first: every other scenario is compared with it."""
    return [
        Scenario("baseline", "no fault", None),
        Scenario("control", "no fault, run again (the harness's own noise)", None),
        Scenario(
            "kill9", f"worker kill -9 x{opts.kills}, restarted at once", lambda ctx, o: kill_and_restart(ctx, o.kills)
        ),
        Scenario(
            "broker", f"broker stopped {opts.broker_outage_s:g} s", lambda ctx, o: broker_outage(ctx, o.broker_outage_s)
        ),
        Scenario("redis", f"Redis down {opts.redis_outage_s:g} s", lambda ctx, o: redis_outage(ctx, o.redis_outage_s)),
        Scenario(
            "standby",
            "2 workers, standby replicas 1, one kill -9",
            lambda ctx, o: kill_one_of_two(ctx),
            workers=2,
            standby_replicas=1,
        ),
        Scenario(
            "broker-long",
            f"broker stopped {opts.long_outage_s:g} s (worker CPU measured)",
            lambda ctx, o: broker_outage(ctx, o.long_outage_s, measure_cpu=True),
        ),
    ]


class ScenarioRun:
    """One scenario, start to cleanup. ``lag_threshold`` comes from the baseline (None: this is it)."""

    def __init__(
        self,
        scenario: Scenario,
        base: Settings,
        configs: dict[str, Path],
        stack: DevStack,
        workload: Workload,
        opts: ChaosOptions,
        workdir: Path,
        say: Callable[[str], None],
    ) -> None:
        self.scenario, self.stack, self.workload, self.opts, self.say = scenario, stack, workload, opts, say
        self.run_id = f"chaos-{scenario.name}-{uuid.uuid4().hex[:6]}"
        self.run_dir = workdir / self.run_id
        data = base.model_dump()
        data.update(
            topic_prefix=self.run_id,
            app_id=self.run_id,
            redis_key_prefix=self.run_id,
            sweep_bucket_s=1,
            sweep_interval_s=0.5,
            standby_replicas=scenario.standby_replicas,
            **configs,
            **opts.worker_settings,
        )
        self.settings = Settings(**data)
        self.kafka = kafka_client_kwargs(self.settings)
        self.samples: list[tuple[float, int | None, int | None]] = []
        self.publish_lags: list[int] = []
        self.input_lags: list[int | None] = []  # per sample: lag of the input topics alone
        self.report = ScenarioReport(scenario.name, scenario.title)
        self.outputs = RunOutputs()

    def worker_settings(self, slot: int) -> Settings:
        return Settings(**{**self.settings.model_dump(), "data_dir": self.run_dir / f"data-{slot}"})

    async def _sample_forever(self, probe: LagProbe, publishing: asyncio.Task) -> None:
        while True:
            asked = time.time()  # a sample describes the group as of the question, not the answer
            lag, committed, inputs = await probe.sample()
            self.samples.append((asked, lag, committed))
            self.input_lags.append(inputs)
            if lag is not None and not publishing.done():
                self.publish_lags.append(lag)
            await asyncio.sleep(self.opts.probe_every_s)

    async def run(self, lag_threshold: int | None) -> ScenarioReport:
        from leadflow.demo.run import load_roster
        from leadflow.simulator import Publisher
        from streams.app import build_codec
        from streams.topics import TopicNames, ensure_topics

        started = time.time()
        names = TopicNames.from_settings(self.settings)
        await ensure_topics(self.settings)
        self.say(f"{self.scenario.name}: {load_roster(self.settings, self.run_dir)}")
        workers = [
            WorkerProcess(self.worker_settings(i), self.run_dir, name=f"worker-{i}")
            for i in range(self.scenario.workers)
        ]
        for worker in workers:
            worker.start()
        pgids = {w.pid for w in workers if w.pid}
        probe = LagProbe(self.kafka, self.settings.app_id)
        try:
            await wait_for_group(self.kafka, self.settings.app_id, timeout=120, worker=workers[0])
            origin_ms = int(time.time() * 1000) + 500
            codec = build_codec(self.settings, register=False)
            async with Publisher(self.kafka, names, codec, client_id="leadflow-chaos") as pub:
                paced = PacedPublisher(pub, self.workload, origin_ms)
                publishing = asyncio.create_task(paced.run())
                sampler = asyncio.create_task(self._sample_forever(probe, publishing))
                ctx = RunContext(
                    self.stack, workers, paced, publishing, origin_ms / 1000, self.workload.span_s, self.report
                )
                try:
                    if self.scenario.inject is not None:
                        await self.scenario.inject(ctx, self.opts)
                    self.report.published = await publishing
                    pgids |= {w.pid for w in workers if w.pid}
                    last_stamp = origin_ms / 1000 + self.workload.span_s
                    self.report.drained_s = await self._drain(last_stamp)
                    # Deadlines of the last assignments pass (settle), and MQLs deferred by the
                    # reorder window go out: a catch-up event's MQL is decided a window after its
                    # event time, so by the last stamp + the window + two sweep buckets.
                    deferred_by = last_stamp + self.settings.reorder_window_s + 2 * self.settings.sweep_bucket_s + 5
                    await asyncio.sleep(max(self.opts.settle_s, deferred_by - time.time()))
                finally:
                    sampler.cancel()
                    publishing.cancel()
            self.outputs.origin_ms = origin_ms
            self.outputs.read_at_s = time.time() - origin_ms / 1000
            await self._read_outputs(names)
            if lag_threshold is not None:
                self.report.recover_s = [recovery_time(self.samples, end, lag_threshold) for end in ctx.fault_ends]
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others
            first = (str(exc).splitlines() or [""])[0]  # the rest (a log tail) is in the worker's log file
            self.report.error = f"{type(exc).__name__}: {first}"[:200]
        finally:
            await probe.close()
            for worker in workers:
                worker.stop(timeout=20)
            self.report.orphans = orphans_of(self.run_id, pgids)
            self.report.counts = self.outputs.counts()
            self.report.wall_s = round(time.time() - started, 1)
            await self._cleanup()
        return self.report

    def lag_threshold(self) -> int:
        p95 = percentile(self.publish_lags, 95) or 0
        return max(self.opts.lag_floor, int(2 * p95))

    async def _drain(self, last_stamp: float) -> float | None:
        """Seconds from the last stamp until every input is committed and the rest of the lag is
        at most ``drain_slack`` (the timers put sweep commands on internal topics every tick, so
        the total is rarely exactly 0), in two probes in a row."""
        since = None
        deadline = time.time() + self.opts.drain_timeout_s
        while time.time() < deadline:
            lag = self.samples[-1][1] if self.samples else None
            inputs = self.input_lags[-1] if self.input_lags else None
            if inputs == 0 and lag is not None and lag <= self.opts.drain_slack:
                if since is not None and time.time() - since >= self.opts.probe_every_s:
                    return round(max(0.0, since - last_stamp), 2)
                since = since or self.samples[-1][0]
            else:
                since = None
            await asyncio.sleep(self.opts.probe_every_s)
        self.report.notes.append(
            f"not drained after {self.opts.drain_timeout_s:g} s: lag {lag}, of which "
            f"{inputs} input records never committed"
        )
        return None

    async def _read_outputs(self, names) -> None:
        from streams.app import build_codec

        topics = [getattr(names, role) for role in COMPARED_ROLES]
        ends = await end_offsets(self.kafka, topics)
        reader = OutputReader(self.kafka, build_codec(self.settings, register=False), {tp: 0 for tp in ends})
        await reader.start()
        try:
            deadline = time.time() + 120
            while time.time() < deadline:
                for _topic, subject, value, _ts, _key in await reader.poll(500):
                    self.outputs.add(subject, value)
                positions = await reader.positions()
                if all(positions[tp] >= end for tp, end in ends.items()):
                    return
            raise TimeoutError("outputs could not be read back within 120 s")
        finally:
            await reader.stop()

    async def _cleanup(self) -> None:
        from leadflow.demo.run import delete_run_topics

        try:
            await asyncio.wait_for(delete_run_topics(self.settings), 30)
        except Exception as exc:  # noqa: BLE001 - topics of a run only cost disk
            self.report.notes.append(f"topics not deleted: {type(exc).__name__}")
        forget_redis_keys(self.settings)
        for slot in range(self.scenario.workers):  # RocksDB files go; worker logs stay for a look
            shutil.rmtree(self.run_dir / f"data-{slot}", ignore_errors=True)
