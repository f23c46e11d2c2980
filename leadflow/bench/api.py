"""`make bench-api`: the lead API's latency under background load (issue 15's figure).

Two `leadflow worker` processes with the API on (so about half the requests are forwarded to
the worker that owns the lead), a seed of simulator traffic so there are leads to ask about,
then simulator events published at ``--rate`` (default 1,000/s) for ``--seconds`` while a
client asks ``--requests-per-s`` random known leads of random workers. Prints p50/p95/p99 by
where the answer came from (local / forwarded) and writes JSON to ``--output``.

Client-side latency: request sent -> body read, over loopback, on the same 2-core machine as
the workers, Kafka and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import httpx

from leadflow.bench.options import bench_settings
from leadflow.bench.recovery_state import machine_info
from leadflow.bench.results import percentiles
from leadflow.simulator.harness import CpuMeter, OutputReader, StackSession, WorkerProcess, end_offsets
from streams.connections import kafka_client_kwargs
from streams.settings import Settings
from streams.web import SERVED_HEADER


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _seed(settings: Settings, names: Any, codec: Any, stream: Any, events: int, say: Any) -> list[str]:
    """Publish ``events`` and return the lead ids the workers scored."""
    from leadflow.simulator import Publisher

    reader = OutputReader(
        kafka_client_kwargs(settings), codec, await end_offsets(kafka_client_kwargs(settings), [names.lead_scored])
    )
    await reader.start()
    try:
        async with Publisher(kafka_client_kwargs(settings), names, codec, client_id="leadflow-bench-api") as pub:
            await pub.run(stream, limit=events)
        leads: set[str] = set()
        deadline = time.monotonic() + 180
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 5:
            rows = await reader.poll(500)
            if rows:
                quiet_since = time.monotonic()
            leads.update(value["lead_id"] for _, subject, value, _, _ in rows if subject == "lead_scored")
    finally:
        await reader.stop()
    say(f"seeded {events:,} events: {len(leads):,} leads scored")
    return sorted(leads)


async def _ask(ports: list[int], token: str, leads: list[str], per_s: float, stop: asyncio.Event) -> dict[str, Any]:
    """Random known leads of random workers, ``per_s`` a second, until ``stop``."""
    latencies: dict[str, list[float]] = {"local": [], "forwarded": []}
    statuses: dict[str, int] = {}
    rng = random.Random(7)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        t0, n = time.monotonic(), 0
        while not stop.is_set():
            ahead = t0 + n / per_s - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            n += 1
            url = f"http://127.0.0.1:{rng.choice(ports)}/leads/{rng.choice(leads)}"
            started = time.perf_counter()
            try:
                response = await client.get(url)
                await response.aread()
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
            if response.status_code == 200:
                latencies[response.headers.get(SERVED_HEADER, "local")].append(elapsed_ms)
    every = latencies["local"] + latencies["forwarded"]
    return {
        "requests": n,
        "statuses": statuses,
        "latency_ms": percentiles(every),
        "latency_ms_local": percentiles(latencies["local"]),
        "latency_ms_forwarded": percentiles(latencies["forwarded"]),
    }


async def measure(base: Settings, args: argparse.Namespace, say: Any = print) -> dict[str, Any]:
    from leadflow.simulator import Publisher, TrafficSimulator
    from streams.app import build_codec
    from streams.topics import TopicNames, ensure_topics

    run_id = f"api-{time.strftime('%Y%m%d-%H%M%S')}"
    token = secrets.token_hex(16)
    settings = bench_settings(base, run_id, api_port=_free_port(), api_token=token)
    second = settings.model_copy(
        update={"api_port": _free_port(), "data_dir": Path(settings.data_dir).parent / "data-2"}
    )
    workdir = Path(settings.data_dir).parent
    names = TopicNames.from_settings(settings)
    with StackSession(settings) as stack:
        codec = build_codec(settings, register=True)
        await ensure_topics(settings, list(names.all()))
        sim = TrafficSimulator(
            args.seed,
            start_ms=int(time.time() * 1000),
            inline_crm=True,
            tag=run_id,
            lead_id_key=settings.lead_id_key_bytes,
        )
        stream = iter(sim)
        workers = [WorkerProcess(settings, workdir, name="worker-1"), WorkerProcess(second, workdir, name="worker-2")]
        for worker in workers:
            worker.start()
        try:
            leads = await _seed(settings, names, codec, stream, args.seed_events, say)
            if not leads:
                raise RuntimeError(f"no lead was scored; see {workdir}/worker-*.log")
            ports = [settings.api_port, second.api_port]
            stop = asyncio.Event()
            meter = CpuMeter()
            meter.start({"worker-1": workers[0].pid, "worker-2": workers[1].pid, "kafka": stack.kafka_pid()})
            asking = asyncio.create_task(_ask(ports, token, leads, args.requests_per_s, stop))
            say(f"load: {args.rate:,.0f} events/s for {args.seconds:.0f} s; API: {args.requests_per_s:.0f} requests/s")
            async with Publisher(kafka_client_kwargs(settings), names, codec, client_id="leadflow-bench-api") as pub:
                published = await pub.run(stream, rate=args.rate, limit=int(args.rate * args.seconds))
            stop.set()
            api = await asking
            load = meter.stop()
        finally:
            for worker in workers:
                worker.stop(timeout=30)
    return {
        "kind": "lead_api",
        "run_id": run_id,
        "machine": machine_info(),
        "background": {
            "target_events_per_s": args.rate,
            "achieved_events_per_s": round(published.rate, 1),
            "events": published.sent,
            "seconds": args.seconds,
            "workers": 2,
            "partitions": settings.topic_partitions,
            "seed_events": args.seed_events,
            "leads_known": len(leads),
        },
        "api": {"requests_per_s": args.requests_per_s, **api},
        "load": load,
        "note": (
            "client-side latency (request sent -> body read) over loopback; the workers, Kafka, Redis and "
            "the client share the machine; forwarded = answered by the other worker (one extra HTTP hop)"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    from streams.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m leadflow.bench.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="background input events/s (default 1000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs (default 60)")
    parser.add_argument("--requests-per-s", type=float, default=20.0, help="API requests/s (default 20)")
    parser.add_argument("--seed-events", type=int, default=3000, help="events published first (default 3000)")
    parser.add_argument("--seed", type=int, default=15, help="simulator seed")
    parser.add_argument("--output", type=Path, default=None, help="directory for the JSON result")
    args = parser.parse_args(argv)
    results = asyncio.run(measure(load_settings(), args))
    api = results["api"]
    for label in ("latency_ms", "latency_ms_local", "latency_ms_forwarded"):
        p = api[label]
        print(f"{label}: n={p['count']} p50={p['p50_ms']} p95={p['p95_ms']} p99={p['p99_ms']} max={p['max_ms']} ms")
    print(f"statuses: {api['statuses']}; background achieved {results['background']['achieved_events_per_s']} events/s")
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        path = args.output / f"{results['run_id']}.json"
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
