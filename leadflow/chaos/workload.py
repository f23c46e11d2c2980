"""The chaos workload: one seeded simulator stream, with CRM reactions, on a compressed clock.

Every run publishes the *same* events (same ids, same bytes but for the time stamps) at the
same offsets from the run's time origin: event ``i`` is stamped ``origin + (business time -
start) / speed`` and is sent when the wall clock reaches that stamp. Business time runs
``speed`` times faster, as in ``leadflow demo`` (its compressed routing and SLA files are used
with the same factor), so the simulated reps' touches keep their place relative to the
compressed SLAs. The CRM reactions are the simulator's inline ones (``leadflow simulate``'s
default): part of the pre-computed input, not a reaction to what a faulty run emitted, so the
inputs of two runs cannot drift apart.

Why a per-run origin rather than the same absolute stamps: SLA deadlines count from the
processing time of an assignment and sweeps follow the wall clock, so only stamps at the same
distance from "now" make two runs' timers comparable. Scores depend on differences of event
times only; an MQL is decided at ``D = max(clock, now)``, which moves with the processing
delay alone (90-day half-life: ~3e-4 points per minute of delay on a score of 60).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leadflow.simulator import CrmSimulator, SimEvent, TrafficSimulator
from leadflow.simulator.crm import DEMO_TIMING

# Business time of the first visitor: a constant, so event ids that embed it are equal in every run.
BUSINESS_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ACK_EVERY = 500  # sends between waits for acknowledgements (a broker problem surfaces quickly)


@dataclass(frozen=True)
class Workload:
    events: tuple[SimEvent, ...]
    offsets_ms: tuple[int, ...]  # per event: milliseconds after the run's origin
    seed: int
    speed: float

    @property
    def span_s(self) -> float:
        return self.offsets_ms[-1] / 1000 if self.offsets_ms else 0.0

    @property
    def rate(self) -> float:
        return len(self.events) / self.span_s if self.span_s else float(len(self.events))

    def fingerprint(self) -> str:
        """Short hash of every event's id, subject, key and offset: equal workloads, equal hash."""
        digest = hashlib.blake2b(digest_size=8)
        for event, offset in zip(self.events, self.offsets_ms):
            digest.update(f"{event.event_id}|{event.subject}|{event.key!r}|{offset}\n".encode())
        return digest.hexdigest()


def build_workload(seed: int, count: int, *, speed: float, arrival_every_s: float, bad_share: float) -> Workload:
    """``count`` simulator events (web, forms, inline CRM reactions, a share of bad input)."""
    if count < 1:
        raise ValueError(f"events must be >= 1, got {count}")
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    # Reps at the demo's pace, in business time: the whole timeline is divided by speed below.
    crm = CrmSimulator(seed, timing=DEMO_TIMING)
    sim = TrafficSimulator(
        seed,
        start_ms=BUSINESS_START_MS,
        arrival_every_s=arrival_every_s,
        bad_share=bad_share,
        inline_crm=True,
        crm=crm,
        tag=f"chaos{seed}",
    )
    events = tuple(sim.take(count))
    first = events[0].at_ms
    offsets = tuple(int((e.at_ms - first) / speed) for e in events)
    return Workload(events, offsets, seed, speed)


class PacedPublisher:
    """Publishes a workload on its schedule; ``pause()`` holds events (a publisher's retry queue
    while its broker is away) and ``resume()`` sends the held ones with their original stamps."""

    def __init__(
        self, publisher: Any, workload: Workload, origin_ms: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.publisher = publisher  # leadflow.simulator.Publisher, started
        self.workload = workload
        self.origin_ms = origin_ms
        self.clock = clock
        self.sent = 0
        self.held_max = 0  # most events overdue at a resume
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()  # set while held at the gate with every send acknowledged

    async def run(self) -> int:
        pending: list[asyncio.Future] = []
        for event, offset in zip(self.workload.events, self.workload.offsets_ms):
            stamp = self.origin_ms + offset
            ahead = stamp / 1000 - self.clock()
            if ahead > 0.002:
                await asyncio.sleep(ahead)
            if not self._open.is_set():
                await asyncio.gather(*pending)
                pending.clear()
                self._idle.set()
                await self._open.wait()
                self._idle.clear()
            pending.append(await self.publisher.send(event, now_ms=stamp))
            self.sent += 1
            if len(pending) >= ACK_EVERY:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return self.sent

    async def pause(self, task: asyncio.Task, timeout: float = 30.0) -> None:
        """Stop sending and wait until everything sent so far is acknowledged."""
        self._open.clear()
        idle = asyncio.ensure_future(self._idle.wait())
        try:
            await asyncio.wait({idle, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
        await self.publisher.flush()

    def resume(self) -> None:
        now_ms = self.clock() * 1000
        self.held_max = max(
            self.held_max, sum(1 for o in self.workload.offsets_ms[self.sent :] if self.origin_ms + o <= now_ms)
        )
        self._open.set()
