"""Prototyping hook: named code patches a bench worker applies before it starts
(``leadflow bench --patch NAME``, see ``leadflow.bench.worker``), to measure a change before
asking the owner of the code to make it. For measurement only."""

from __future__ import annotations

from collections.abc import Callable

PATCHES: dict[str, Callable[[], None]] = {}


def _patch(name: str):
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        PATCHES[name] = fn
        return fn

    return register


@_patch("no_spinner")
def _no_spinner() -> None:
    """Faust's terminal spinner off (it sets the root logger to DEBUG at loglevel >= warn)."""
    import faust.worker

    original = faust.worker.Worker.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.spinner = None

    faust.worker.Worker.__init__ = init  # type: ignore[method-assign]


@_patch("big_producer_buffer")
def _big_producer_buffer() -> None:
    """Faust's changelog ProducerBuffer holds 100 messages before the stream stops to flush."""
    from faust.transport.producer import ProducerBuffer

    ProducerBuffer.max_messages = 2000


@_patch("switch_interval_1ms")
def _switch_interval_1ms() -> None:
    """The GIL hand-over interval 5 ms -> 1 ms: Faust's consumer runs in its own thread, and a
    thread waiting for the GIL waits up to the interval for the other to let go."""
    import sys

    sys.setswitchinterval(0.001)


@_patch("gc_time")
def _gc_time() -> None:
    """Diagnosis: time spent in Python's garbage collector, per generation, logged to the worker
    log every 2,000 collections and at exit (A/B with LEADFLOW_GC_YOUNG_THRESHOLD=0)."""
    import atexit
    import gc
    import sys
    import time

    spent = [0.0, 0.0, 0.0]
    runs = [0, 0, 0]
    started = [0.0]

    def report() -> None:
        print(
            "GC_TIME " + " ".join(f"gen{g}: {runs[g]} runs {spent[g]:.3f} s" for g in range(3)),
            file=sys.stderr,
            flush=True,
        )

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        generation = info["generation"]
        spent[generation] += time.perf_counter() - started[0]
        runs[generation] += 1
        if sum(runs) % 2000 == 0:
            report()

    gc.callbacks.append(on_gc)
    atexit.register(report)


@_patch("slow_callbacks")
def _slow_callbacks() -> None:
    """Diagnosis: log every event-loop step longer than 25 ms (what ran, how long) to the worker
    log. Needs the standard library's loop (worker env LEADFLOW_EVENT_LOOP=asyncio): uvloop's
    handles are not Python."""
    import asyncio.events
    import sys
    import time

    original = asyncio.events.Handle._run

    def timed(self):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return original(self)
        finally:
            took = time.perf_counter() - started
            if took > 0.025:
                callback = getattr(self, "_callback", None)
                task = getattr(callback, "__self__", None)
                coro = task.get_coro() if isinstance(task, asyncio.Task) else None
                where = getattr(coro, "__qualname__", None) or repr(callback)[:120]
                print(f"SLOW_STEP {took * 1000:.0f} ms {where}", file=sys.stderr, flush=True)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]


def _fetch_wait(max_wait_ms: int, min_bytes: int) -> None:
    """The worker's consumer asks the broker to hold each fetch until ``min_bytes`` are there or
    ``max_wait_ms`` passed (Faust: 1 byte, 1,500 ms): one fetch round trip per few records
    becomes at most one per ``max_wait_ms``, for the broker and for Faust's consumer thread."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    original = AIOKafkaConsumerThread._create_worker_consumer

    def create(self, transport):  # type: ignore[no-untyped-def]
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms, consumer._fetch_min_bytes = max_wait_ms, min_bytes
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]


_patch("fetch_wait_10ms")(lambda: _fetch_wait(10, 256 * 1024))
_patch("fetch_wait_5ms")(lambda: _fetch_wait(5, 256 * 1024))
