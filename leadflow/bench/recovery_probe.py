"""The Kafka side of ``make bench-recovery``: the 1M-lead pre-fill of the ``lead_to_state``
changelog, the probes (a form submit of a new lead every 0.5 s, through leadflow's own
publisher and codec) and the ``lead_scored`` outputs they cause, and where a worker's logs
say it stood (ready, its partitions)."""

from __future__ import annotations

import asyncio
import re
import time
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from leadflow.bench.recovery_state import Pool, clone_state, probe_event, probe_for_partition
from leadflow.simulator import Publisher
from leadflow.simulator.harness import HarnessError, OutputReader, WorkerProcess, end_offsets
from streams.app import partition_for
from streams.connections import kafka_client_kwargs
from streams.settings import Settings
from streams.topics import TopicNames

T = TypeVar("T")
PROBE_EVERY_S = 0.5


async def prefill(
    settings: Settings, topic: str, pool: Pool, leads: int, say: Callable[[str], None], *, samples: int = 8
) -> dict[str, Any]:
    """Write ``leads`` clones of the pool's states to ``topic`` (the lead_to_state changelog),
    each on the partition the worker writes it to. Returns the sizes written and a few clones
    (lead id, email, partition, event count) the probes can check."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        **kafka_client_kwargs(settings),
        acks="all",
        linger_ms=50,
        max_batch_size=512 * 1024,
        request_timeout_ms=60_000,
        client_id="leadflow-bench-recovery",
    )
    key = settings.lead_id_key_bytes
    parts = settings.topic_partitions
    sizes = array("I")
    picked: list[dict[str, Any]] = []
    started = time.monotonic()
    step = max(1, leads // 10)
    await producer.start()
    try:
        pending = []
        for i in range(leads):
            template = pool.states[i % len(pool.states)]
            lead_id, email, value = clone_state(template, i, key)
            raw_key = lead_id.encode()
            partition = partition_for(raw_key, parts)
            pending.append(await producer.send(topic, value=value, key=raw_key, partition=partition))
            sizes.append(len(raw_key) + len(value))
            if i < samples:
                picked.append(
                    {"lead_id": lead_id, "email": email, "partition": partition, "event_count": template.event_count}
                )
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
            if (i + 1) % step == 0:
                say(f"  pre-fill: {i + 1:,} / {leads:,} lead states ({time.monotonic() - started:.0f} s)")
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    seconds = time.monotonic() - started
    return {"sizes": sizes, "samples": picked, "seconds": round(seconds, 1), "leads_per_s": round(leads / seconds)}


class Prober:
    """Publishes probe form submits and remembers the first ``lead_scored`` output of each.

    Every ``PROBE_EVERY_S``, while ``targets`` is set: one probe for a new lead on the next
    partition of ``targets`` (``rotate``), or one on each of them."""

    def __init__(self, settings: Settings, codec: Any, pool: Pool, run_id: str) -> None:
        self.settings, self.codec, self.pool, self.run_id = settings, codec, pool, run_id
        self.names = TopicNames.from_settings(settings)
        self.targets: list[int] = []
        self.rotate = True
        self.sent: dict[bytes, tuple[int, int]] = {}  # lead key -> (partition, sent at ms)
        self.outputs: dict[bytes, tuple[int, bytes]] = {}  # lead key -> (broker ts ms, value) of the first
        self._watch: set[bytes] = set()
        self._n = 0  # probe emails tried (each lands on some partition)
        self._seq = 0  # probe event ids
        self._turn = 0
        self._tasks: list[asyncio.Task] = []
        self._pub: Publisher | None = None
        self._reader: OutputReader | None = None

    async def start(self) -> None:
        kafka = kafka_client_kwargs(self.settings)
        self._pub = Publisher(kafka, self.names, self.codec, linger_ms=0, client_id="leadflow-bench-probe")
        await self._pub.start()
        self._reader = OutputReader(kafka, self.codec, await end_offsets(kafka, [self.names.lead_scored]), decode=False)
        await self._reader.start()
        self._tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._send_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._reader is not None:
            await self._reader.stop()
        if self._pub is not None:
            await self._pub.stop()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        while True:
            for _topic, _subject, value, ts, key in await self._reader.poll(200):
                if key is not None and (key in self.sent or key in self._watch) and key not in self.outputs:
                    self.outputs[key] = (ts, value)

    async def _send_loop(self) -> None:
        while True:
            targets = list(self.targets)
            if targets:
                if self.rotate:
                    targets = [targets[self._turn % len(targets)]]
                    self._turn += 1
                for partition in targets:
                    await self.send_new_lead(partition)
            await asyncio.sleep(PROBE_EVERY_S)

    async def send_new_lead(self, partition: int) -> None:
        parts, key = self.settings.topic_partitions, self.settings.lead_id_key_bytes
        self._n, email, lead_id = probe_for_partition(self.run_id, self._n, partition, parts, key)
        self.sent[lead_id.encode()] = (partition, int(time.time() * 1000))
        await self._send(email, lead_id)

    async def _send(self, email: str, lead_id: str) -> None:
        assert self._pub is not None
        self._seq += 1
        event = probe_event(self.pool.form, email, f"probe-{self.run_id}-{self._seq}", lead_id)
        await (await self._pub.send(event))  # the ack: a probe counts from when the broker has it

    def first_output(self, since_ms: int, partitions: Sequence[int] | None = None) -> int | None:
        """Broker time of the earliest probe output at or after ``since_ms`` (on ``partitions``)."""
        times = self.first_per_partition(since_ms, partitions)
        return min(times.values()) if times else None

    def first_per_partition(self, since_ms: int, partitions: Sequence[int] | None = None) -> dict[int, int]:
        first: dict[int, int] = {}
        for key, (ts, _value) in self.outputs.items():
            if key not in self.sent or ts < since_ms:
                continue
            partition = self.sent[key][0]
            if partitions is None or partition in partitions:
                first[partition] = min(ts, first.get(partition, ts))
        return first

    async def check_state(self, sample: dict[str, Any], timeout: float, alive: Callable[[], None]) -> dict[str, Any]:
        """A form submit for a pre-filled lead: its ``lead_scored`` must count the events of the
        state the worker recovered plus this one (event_count + 1)."""
        raw_key = sample["lead_id"].encode()
        self._watch.add(raw_key)
        await self._send(sample["email"], sample["lead_id"])
        _ts, value = await wait_until(lambda: self.outputs.get(raw_key), timeout, alive, "a pre-filled lead's output")
        _subject, record = self.codec.decode(value)
        expected = sample["event_count"] + 1
        return {
            "lead_id": sample["lead_id"],
            "partition": sample["partition"],
            "event_count_expected": expected,
            "event_count_scored": record.get("event_count"),
            "ok": record.get("event_count") == expected,
        }


async def wait_until(check: Callable[[], T | None], timeout: float, alive: Callable[[], None], what: str) -> T:
    """Poll ``check`` until it returns something; ``alive`` raises if a worker died."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        alive()
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def alive_check(*workers: WorkerProcess) -> Callable[[], None]:
    def check() -> None:
        for worker in workers:
            if not worker.alive():
                raise HarnessError(
                    f"worker {worker.log_file.stem} exited; log {worker.log_file}:\n{worker.log_tail(25)}"
                )

    return check


async def group_members(settings: Settings) -> int:
    """Members of the workers' consumer group while it is Stable (0 otherwise)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings), request_timeout_ms=5000)
    await admin.start()
    try:
        for response in await admin.describe_consumer_groups([settings.app_id]):
            for group in response.groups:
                if group[2] == "Stable":
                    return len(group[5])
    except Exception:  # noqa: BLE001 - coordinator not ready yet: not stable
        return 0
    finally:
        await admin.close()
    return 0


_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


def log_time_of(log_file: Path, needle: str, *, after: float = 0.0) -> float | None:
    """Epoch seconds of the first text-format log line containing ``needle`` (local time),
    logged at or after ``after`` (the lines have millisecond resolution)."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        match = _LOG_TIME.match(line)
        if match and needle in line:
            at = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")) + int(match.group(2)) / 1000
            if at >= after - 0.001:
                return at
    return None


def log_marks(log_file: Path, since: float, needles: dict[str, str]) -> dict[str, float | None]:
    """Seconds from ``since`` to the first line after it containing each needle (None: not logged)."""
    marks = {label: log_time_of(log_file, needle, after=since) for label, needle in needles.items()}
    return {label: None if at is None else round(at - since, 2) for label, at in marks.items()}


# Faust's recovery log lines (faust.tables.recovery), in the order a (re)start logs them.
BULK_RESTORE_STARTED = "bulk restore: reading up to"  # streams.faust_bulk_restore
BULK_RESTORE_DONE = "partitions up to date in"
RESTORE_STARTED = "Restoring state from changelog topics"
RESTORE_DONE = "Done reading from changelog topics"
WORKER_READY = "Worker ready"
ASSIGNED = "newly assigned partitions"  # aiokafka: the group's new assignment


def assigned_partitions(log_file: Path, topic: str) -> set[int]:
    """Partitions of ``topic`` in the worker's latest assignment (aiokafka's log line; input
    topics are assigned to active tasks only, never to standbys)."""
    try:
        lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if "newly assigned partitions" in ln]
    except OSError:
        return set()
    if not lines:
        return set()
    return {int(p) for p in re.findall(rf"topic='{re.escape(topic)}', partition=(\d+)", lines[-1])}
