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
    log every 2,000 collections and at exit."""
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


def _gc_tuned(young_threshold: int | None) -> None:
    """Freeze what is alive once the worker is built out of garbage collections (gc.freeze),
    and optionally collect the youngest generation less often. Tried in issue 14's third round:
    the collector's time halved, the drain did not get faster (docs/benchmarks.md)."""
    import gc

    import faust

    original = faust.Worker.execute_from_commandline

    def execute(self):  # type: ignore[no-untyped-def]
        gc.collect()
        gc.freeze()
        if young_threshold is not None:
            gc.set_threshold(young_threshold, *gc.get_threshold()[1:])
        return original(self)

    faust.Worker.execute_from_commandline = execute  # type: ignore[method-assign]


_patch("gc_freeze")(lambda: _gc_tuned(None))
_patch("gc_freeze_young_20000")(lambda: _gc_tuned(20_000))


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
                # Names only, never a repr: a callback's arguments may hold a lead's data.
                where = getattr(coro, "__qualname__", None) or getattr(
                    callback, "__qualname__", type(callback).__name__
                )
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


@_patch("consumer_in_loop")
def _consumer_in_loop() -> None:
    """Prototype: Faust's aiokafka consumer in the worker's own event loop instead of a thread
    of its own (no GIL hand-overs, no cross-thread method queue). Measurement only: rebalance
    and shutdown paths are not what a production change would need to prove."""
    from faust.transport.drivers import aiokafka as driver
    from mode import Service
    from mode.utils.futures import maybe_async

    class InLoopConsumerThread(driver.AIOKafkaConsumerThread):
        def __init__(self, consumer, **kwargs):  # type: ignore[no-untyped-def]
            kwargs["thread_loop"] = kwargs.get("loop")
            super().__init__(consumer, **kwargs)

        async def start(self) -> None:
            self._thread_started.set()
            await self._default_start()
            await self.on_thread_started()

        async def stop(self) -> None:
            if self._started.is_set():
                await self.on_thread_stop()
                await Service.stop(self)
                await self._default_stop_children()
                await self._default_stop_futures()

        async def call_thread(self, fun, *args, **kwargs):  # type: ignore[no-untyped-def]
            return await maybe_async(fun(*args, **kwargs))

        async def cast_thread(self, fun, *args, **kwargs):  # type: ignore[no-untyped-def]
            await maybe_async(fun(*args, **kwargs))

    def new_thread(self):  # type: ignore[no-untyped-def]
        return InLoopConsumerThread(self, loop=self.loop, beacon=self.beacon)

    driver.Consumer._new_consumer_thread = new_thread  # type: ignore[method-assign]


@_patch("table_write_counts")
def _table_write_counts() -> None:
    """Diagnosis: per table, how many writes (changelog records) and how many distinct keys
    between two offset commits, logged to the worker log at each commit that follows writes and
    in total at exit. Tells how many changelog records one state write per key per commit
    interval would save. Table names and counts only."""
    import atexit
    import sys
    from collections import Counter

    from faust.tables.table import Table
    from faust.transport.consumer import Consumer

    writes: Counter[str] = Counter()
    keys: dict[str, set[object]] = {}
    total_writes: Counter[str] = Counter()
    total_distinct: Counter[str] = Counter()
    commits = [0]
    original_set = Table.on_key_set
    original_commit = Consumer.force_commit

    def on_key_set(self, key, value):  # type: ignore[no-untyped-def]
        writes[self.name] += 1
        keys.setdefault(self.name, set()).add(key)
        return original_set(self, key, value)

    def close_window() -> None:
        if not writes:
            return
        commits[0] += 1
        for name, count in writes.items():
            total_writes[name] += count
            total_distinct[name] += len(keys.get(name, ()))
        line = ", ".join(f"{name} {writes[name]}/{len(keys.get(name, ()))}" for name in sorted(writes))
        print(f"TABLE_WRITES writes/distinct since last commit: {line}", file=sys.stderr, flush=True)
        writes.clear()
        keys.clear()

    async def force_commit(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        close_window()
        return await original_commit(self, *args, **kwargs)

    def report() -> None:
        close_window()
        line = ", ".join(f"{name} {total_writes[name]}/{total_distinct[name]}" for name in sorted(total_writes))
        print(
            f"TABLE_WRITES_TOTAL over {commits[0]} commits, writes/distinct-per-commit: {line}",
            file=sys.stderr,
            flush=True,
        )

    Table.on_key_set = on_key_set  # type: ignore[method-assign]
    Consumer.force_commit = force_commit  # type: ignore[method-assign]
    atexit.register(report)


@_patch("gc_census")
def _gc_census() -> None:
    """Diagnosis: what the full garbage collections walk. After every 10th full collection, the
    objects the collector tracks per generation, the permanent (frozen) ones, and the 12 most
    common types, to the worker log (type names only, never a value)."""
    import gc
    import sys
    import time
    from collections import Counter

    full = [0]
    started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
            return
        full[0] += 1
        if full[0] % 10:
            return
        took_ms = (time.perf_counter() - started[0]) * 1000
        tracked = gc.get_objects()
        types = Counter(type(obj).__name__ for obj in tracked)
        print(
            f"GC_CENSUS full#{full[0]} {took_ms:.0f} ms, tracked {len(tracked)}, frozen {gc.get_freeze_count()}; "
            + ", ".join(f"{name} {count}" for name, count in types.most_common(12)),
            file=sys.stderr,
            flush=True,
        )

    gc.callbacks.append(on_gc)
