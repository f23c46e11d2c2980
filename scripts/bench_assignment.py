#!/usr/bin/env python3
"""End-to-end speed-to-assignment benchmark: input event in Kafka -> assignment on the output topic.

Runs one real leadflow worker (capture + scoring + routing, RocksDB tables, Redis roster)
against a real Kafka and Redis, publishes a steady background load of mixed input events
(form submits, page views, anonymous visits, email opens/clicks, CRM statuses; JSON, as
publishers send it) at ``--rate`` events/s, and among them "probe" leads that become MQLs:
a Director at a 500-person software company in the US submits a demo request, then views
pricing (the second event crosses the MQL threshold, P1).

Latency of a probe = broker timestamp of the assignment record - broker timestamp of the
later of its two input events (the one whose arrival made the lead an MQL; the topics use
CreateTime, set by the producing client when the record is sent, on this one machine's
clock). The split input -> MQL (capture + scoring) and MQL -> assignment (routing) comes from
the MQL record's timestamp. Probes started during the warm-up are not counted.

    .venv/bin/python scripts/bench_assignment.py                     # uses LEADFLOW_* (e.g. `leadflow dev up`)
    .venv/bin/python scripts/bench_assignment.py --start-stack       # own Kafka + Redis on ports 39492/36579
    .venv/bin/python scripts/bench_assignment.py --rate 1000 --duration 60 --warmup 15 --probes 10
    .venv/bin/python scripts/bench_assignment.py --start-stack --routing-only --rate 100   # routing alone
    (--workers N: N worker processes; --trace-lag 5: consumer lag per topic; --profile FILE: cProfile)

The report also gives the workers' CPU per input event, a figure that does not depend on
what else runs on the machine: 1 / (CPU per event) is what one fully available core sustains.

Background leads never qualify (no ICP criterion: 10 employees, retail, Brazil, individual
contributors), so every MQL and assignment seen belongs to a probe. The roster is
config/roster.yaml with capacities x1000, so routing does the real rule walk without
filling up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.domain.identity import lead_id_for_email  # noqa: E402
from streams.settings import Settings, load_settings  # noqa: E402

BG_PAGES = ["blog", "docs", "product", "careers", "other"]


# --- worker ---------------------------------------------------------------------------------


def run_worker() -> int:
    """A stock worker (leadflow.worker), or routing alone with BENCH_ROUTING_ONLY set."""
    import logging

    import faust

    from agents.routing.agent import register as register_routing
    from leadflow.compose import create_app, load_configs
    from leadflow.worker import prepare
    from streams.redis_client import wait_for_redis

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    limit = prepare(settings)
    configs = load_configs(settings)
    only = (partial(register_routing, config=configs.routing),) if os.environ.get("BENCH_ROUTING_ONLY") else None
    pipeline = create_app(settings, configs=configs, only=only, message_limit=limit)
    pipeline.metrics.set_worker_info(app_id=settings.app_id)
    wait_for_redis(settings.redis_url, pipeline.metrics)
    pipeline.metrics.serve(settings.metrics_port)
    worker = faust.Worker(pipeline.app, loglevel="info", quiet=True)
    # As leadflow.worker does: Faust's progress spinner sets the root logger to DEBUG, and every
    # aiokafka/faust debug call then builds a record (~20% of the worker's CPU in a profile).
    worker.spinner = None
    worker.execute_from_commandline()
    return 0


def worker_env(settings: Settings, routing_only: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "BENCH_"))}
    if routing_only:
        env["BENCH_ROUTING_ONLY"] = "1"
    env.update(
        {
            "LEADFLOW_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "LEADFLOW_REDIS_URL": settings.redis_url,
            "LEADFLOW_APP_ID": settings.app_id,
            "LEADFLOW_TOPIC_PREFIX": settings.topic_prefix,
            "LEADFLOW_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "LEADFLOW_DATA_DIR": str(settings.data_dir),
            "LEADFLOW_METRICS_PORT": str(settings.metrics_port),
            "LEADFLOW_API_PORT": "0",  # several workers on one host: no lead API (one port each otherwise)
            "LEADFLOW_REDIS_KEY_PREFIX": settings.redis_key_prefix,
        }
    )
    return env


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- load -----------------------------------------------------------------------------------


@dataclass
class Probe:
    lead_id: str
    started: float  # monotonic
    counted: bool
    input_ts: list[int] = field(default_factory=list)  # broker timestamps of its input events
    mql_ts: int | None = None
    assigned_ts: int | None = None
    seen_at_ms: int | None = None  # wall clock when the bench's consumer received the assignment
    priority: str | None = None


def now_ms() -> int:
    return int(time.time() * 1000)


def background_event(rng: random.Random, run: str) -> tuple[str, dict]:
    email = f"bg{rng.randrange(5000)}.{run}@bg{rng.randrange(200)}.example.org"
    roll = rng.random()
    if roll < 0.45:
        return "web", {
            "occurred_at": now_ms(),
            "email": email,
            "activity_kind": "page_view",
            "page_type": rng.choice(BG_PAGES),
            "url": "https://example.com/p",
        }
    if roll < 0.65:
        return "web", {
            "occurred_at": now_ms(),
            "visitor_id": f"v{rng.randrange(5000)}.{run}",
            "activity_kind": "page_view",
            "page_type": rng.choice(BG_PAGES + ["pricing"]),
            "url": "https://example.com/p",
        }
    if roll < 0.80:
        return "form", {
            "occurred_at": now_ms(),
            "form_id": "nl",
            "email": email,
            "form_kind": rng.choice(["newsletter", "content_download", "webinar_registration"]),
            "job_title": "Engineer",
            "company": "Small Shop",
            "company_size": 10,
            "industry": "retail",
            "country": "BR",
            "seconds_to_fill": 20.0,
            "utm_source": "google",
            "utm_medium": "organic",
        }
    if roll < 0.95:
        return "web", {
            "occurred_at": now_ms(),
            "email": email,
            "activity_kind": rng.choice(["email_open", "email_click"]),
            "utm_campaign": "nurture",
        }
    return "crm", {"occurred_at": now_ms(), "email": email, "status": "working", "rep_id": "sdr-sam"}


def probe_events(email: str) -> list[tuple[str, dict]]:
    return [
        (
            "form",
            {
                "occurred_at": now_ms(),
                "form_id": "demo",
                "form_kind": "demo_request",
                "email": email,
                "first_name": "Dana",
                "job_title": "Director of Operations",
                "company": "Probe Corp",
                "company_size": 500,
                "industry": "software",
                "country": "US",
                "seconds_to_fill": 25.0,
                "utm_source": "google",
                "utm_medium": "cpc",
            },
        ),
        (
            "web",
            {
                "occurred_at": now_ms(),
                "email": email,
                "activity_kind": "page_view",
                "page_type": "pricing",
                "url": "https://example.com/pricing",
            },
        ),
    ]


def mql_record(rng: random.Random, run: str, n: int) -> dict:
    """A LeadQualified record like scoring's (for --routing-only): a mix of lead types,
    countries and account domains, so routing walks account owners, rules and round robin."""
    email = f"mql{n}.{run}@{rng.choice(['acme-logistics.com', 'northwind.io', 'globex.de'] + ['corp.example.com'] * 7)}"
    lead_id = lead_id_for_email(email)
    form_kind, signal = rng.choice(
        [
            ("demo_request", "contact_request"),
            ("webinar_registration", "webinar_registration"),
            ("content_download", "content_download"),
            ("newsletter", "newsletter_signup"),
        ]
    )
    country, size = rng.choice(["US", "CA", "GB", "DE", "JP", "BR"]), rng.choice([50, 500, 5000])
    ms = now_ms()
    grade = rng.choice(["A", "B", "C"])
    return {
        "event_id": f"mql_{lead_id}_1",
        "lead_id": lead_id,
        "email": email,
        "occurred_at": ms,
        "qualified_at": ms,
        "mql_number": 1,
        "score": 60.0,
        "fit_grade": grade,
        "fast_track": False,
        "breakdown": [{"signal": signal, "points": 20.0, "detail": None}],
        "model_version": "bench",
        "handoff": {
            "trigger": f"{signal} ({form_kind} form)",
            "problem_hypothesis": "Evaluating",
            "disqualifiers_checked": [
                f"icp_company_size: passed ({size} employees)",
                f"icp_geography: passed ({country})",
            ],
            "last_touches": [{"kind": f"form:{form_kind}", "detail": None, "occurred_at": ms}],
            "recommended_opener": "Hi",
        },
        "first_touch_source": None,
        "last_touch_source": None,
        "account_key": email.rpartition("@")[2],
        "company": "Corp",
        "job_title": "Director",
        "priority_hint": None,
        "cause_received_at": None,
        # lead_qualified v3: the facts routing reads (it derives the segment from the size itself).
        "firmographics": {
            "company_size": size,
            "industry": None,
            "country": country,
            "segment": None,
            "fit_grade": grade,
        },
        "signals": [{"signal": signal, "points": 20.0}],
        "form_kinds": [form_kind],
        "lead_type": None,
    }


async def produce_mqls(settings: Settings, args, probes: dict[str, Probe], run: str, stats: dict) -> None:
    """--routing-only: publish LeadQualified records straight to the mqls topic at --rate/s."""
    from aiokafka import AIOKafkaProducer

    from streams.codec import Codec, SchemaRegistry
    from streams.topics import TopicNames

    codec = Codec(SchemaRegistry.load())
    fields = set(codec.registry.latest("lead_qualified").field_names)
    topic = TopicNames.from_settings(settings).mqls
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks=1, linger_ms=0)
    await producer.start()
    rng = random.Random(7)
    started = time.monotonic()
    end, interval, sent, n = started + args.warmup + args.duration, 1.0 / args.rate, 0, 0
    try:
        while (now := time.monotonic()) < end:
            due = int((now - started) / interval) + 1
            while n < due:
                record = {k: v for k, v in mql_record(rng, run, n).items() if k in fields}
                probe = Probe(record["lead_id"], time.monotonic(), counted=now - started >= args.warmup)
                probes[probe.lead_id] = probe
                future = await producer.send(topic, codec.encode("lead_qualified", record), key=probe.lead_id.encode())
                future.add_done_callback(
                    lambda f, p=probe: p.input_ts.extend([f.result().timestamp] * 2) if not f.exception() else None
                )
                n += 1
                sent += 1
            await asyncio.sleep(0.005)
        await producer.flush()
    finally:
        await producer.stop()
    stats["sent"] = sent
    stats["load_seconds"] = time.monotonic() - started


async def produce_load(settings: Settings, args, probes: dict[str, Probe], run: str, stats: dict) -> None:
    from aiokafka import AIOKafkaProducer

    from streams.topics import TopicNames

    names = TopicNames.from_settings(settings)
    topics = {"form": names.form_submits, "web": names.web_activity, "crm": names.crm_status}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks=1, linger_ms=0)
    await producer.start()
    rng = random.Random(7)
    tick = 0.01
    per_tick = args.rate * tick
    probe_every = 1.0 / args.probes if args.probes else None
    started = time.monotonic()
    end = started + args.warmup + args.duration
    next_probe = started
    pending_second: list[tuple[float, str, dict, Probe]] = []
    carry = 0.0
    sent = 0
    futures = []

    def track(future, probe: Probe):
        future.add_done_callback(lambda f: probe.input_ts.append(f.result().timestamp) if not f.exception() else None)

    try:
        while (now := time.monotonic()) < end:
            budget = per_tick + carry
            n = int(budget)
            carry = budget - n
            if probe_every and now >= next_probe:
                next_probe += probe_every
                email = f"probe{len(probes)}.{run}@probe{len(probes)}.example.com"
                probe = Probe(lead_id_for_email(email), now, counted=now - started >= args.warmup)
                probes[probe.lead_id] = probe
                first, second = probe_events(email)
                track(await producer.send(topics[first[0]], orjson.dumps(first[1])), probe)
                pending_second.append((now + args.probe_gap, second[0], second[1], probe))
                n -= 1
                sent += 1
            while pending_second and pending_second[0][0] <= now:
                _, kind, body, probe = pending_second.pop(0)
                body["occurred_at"] = now_ms()
                track(await producer.send(topics[kind], orjson.dumps(body)), probe)
                n -= 1
                sent += 1
            for _ in range(max(0, n)):
                kind, body = background_event(rng, run)
                futures.append(await producer.send(topics[kind], orjson.dumps(body)))
                sent += 1
            if len(futures) > 5000:
                await asyncio.gather(*futures)
                futures.clear()
            await asyncio.sleep(
                max(0.0, started + (tick * (round((time.monotonic() - started) / tick) + 1)) - time.monotonic())
            )
        for _, kind, body, probe in pending_second:
            track(await producer.send(topics[kind], orjson.dumps(body)), probe)
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    stats["sent"] = sent
    stats["load_seconds"] = time.monotonic() - started


async def consume_outputs(settings: Settings, probes: dict[str, Probe], stop: asyncio.Event) -> None:
    from aiokafka import AIOKafkaConsumer

    from streams.codec import Codec, SchemaRegistry
    from streams.topics import TopicNames

    names = TopicNames.from_settings(settings)
    codec = Codec(SchemaRegistry.load())
    consumer = AIOKafkaConsumer(
        names.mqls,
        names.assignments,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            seen = now_ms()
            for tp, records in batch.items():
                for r in records:
                    probe = probes.get((r.key or b"").decode())
                    if probe is None:
                        continue
                    if tp.topic == names.mqls:
                        probe.mql_ts = probe.mql_ts or r.timestamp
                    elif probe.assigned_ts is None:
                        probe.assigned_ts, probe.seen_at_ms = r.timestamp, seen
                        probe.priority = codec.decode(r.value)[1]["priority"]
    finally:
        await consumer.stop()


# --- report ---------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def summary(label: str, values_ms: list[float]) -> str:
    if not values_ms:
        return f"{label:34} (no samples)"
    return (
        f"{label:34} n={len(values_ms):5d}  p50 {pct(values_ms, 50):7.1f} ms  p95 {pct(values_ms, 95):7.1f} ms  "
        f"p99 {pct(values_ms, 99):7.1f} ms  max {max(values_ms):7.1f} ms"
    )


def histogram_quantiles(metrics_text: str, name: str) -> dict[str, float]:
    """Upper-bound quantiles from a Prometheus histogram (summed over labels)."""
    buckets: dict[float, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    if not buckets:
        return {}
    total = buckets[float("inf")]
    out = {"count": total}
    for q in (50, 95, 99):
        out[f"p{q}"] = next((le for le, c in sorted(buckets.items()) if total and c >= total * q / 100), float("nan"))
    return out


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> int:
    if "--run-worker" in sys.argv:
        return run_worker()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="input events/s in total (default 1000)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (default 60)")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of load before measuring (default 15)")
    parser.add_argument("--probes", type=float, default=10.0, help="MQL-producing leads per second (default 10)")
    parser.add_argument("--probe-gap", type=float, default=0.05, help="seconds between a probe's form and pricing view")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (one consumer group)")
    parser.add_argument(
        "--routing-only",
        action="store_true",
        help="routing alone: workers run only the routing agent, the load is LeadQualified "
        "records published to the mqls topic at --rate/s, each one measured",
    )
    parser.add_argument("--drain", type=float, default=60.0, help="max seconds to wait for late assignments")
    parser.add_argument("--start-stack", action="store_true", help="start a private Kafka + Redis (DevStack)")
    parser.add_argument("--kafka-port", type=int, default=39492)
    parser.add_argument("--redis-port", type=int, default=36579)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--profile", type=Path, help="run the worker under cProfile, writing stats to this file")
    parser.add_argument(
        "--trace-lag",
        type=float,
        default=0.0,
        metavar="S",
        help="print the worker's consumer lag per topic every S seconds",
    )
    args = parser.parse_args()
    if args.routing_only:
        os.environ["BENCH_ROUTING_ONLY"] = "1"  # read by _events_in (this process); workers get it via worker_env

    workdir = Path(tempfile.mkdtemp(prefix="leadflow-bench-"))
    run = uuid.uuid4().hex[:8]
    stack = None
    base: dict[str, object] = {}
    if args.start_stack:
        from leadflow.devstack import DevStack

        base = dict(
            stack_dir=workdir / "stack",
            kafka_port=args.kafka_port,
            kafka_controller_port=args.kafka_port + 1,
            kafka_bootstrap=f"127.0.0.1:{args.kafka_port}",
            redis_port=args.redis_port,
            redis_url=f"redis://127.0.0.1:{args.redis_port}/0",
        )
        stack = DevStack.from_settings(
            load_settings(**base), tie_to_parent=True, jar_cache_dir=REPO / ".leadflow" / "kafka"
        )
        print("starting Kafka + Redis:", stack.up().summary(), flush=True)
    metrics_port = _free_port()
    settings = load_settings(
        **base,
        app_id=f"bench-{run}",
        topic_prefix=f"bench-{run}",
        redis_key_prefix=f"bench-{run}",
        topic_partitions=args.partitions,
        data_dir=workdir / "data",
        metrics_port=metrics_port,
    )
    try:
        return _run(args, settings, run, workdir)
    finally:
        if stack is not None:
            stack.down()
        # Keep the worker logs, drop Kafka/Redis/RocksDB data (hundreds of MB per run).
        for path in workdir.iterdir():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(args, settings: Settings, run: str, workdir: Path) -> int:
    from streams.topics import ensure_topics

    asyncio.run(ensure_topics(settings))
    asyncio.run(load_bench_roster(settings))
    # Worker i: its own metrics port and RocksDB directory; all share the app id (one group).
    instances = [settings] + [
        settings.model_copy(update={"metrics_port": _free_port(), "data_dir": workdir / f"data-{i}"})
        for i in range(1, args.workers)
    ]
    logs, workers = [], []
    for i, instance in enumerate(instances):
        logs.append(open(workdir / f"worker-{i}.log", "wb"))
        profile = ["-m", "cProfile", "-o", f"{args.profile}.{i}" if i else str(args.profile)] if args.profile else []
        workers.append(
            subprocess.Popen(
                [sys.executable, *profile, str(Path(__file__).resolve()), "--run-worker"],
                env=worker_env(instance, args.routing_only),
                cwd=REPO,
                stdout=logs[-1],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    try:
        asyncio.run(wait_until_routing(settings, run, workers, args.routing_only))
        events0 = sum(_events_in(i) for i in instances)
        cpu0, t0 = sum(cpu_seconds(w.pid) for w in workers), time.monotonic()
        probes: dict[str, Probe] = {}
        stats: dict = {}
        asyncio.run(load_and_measure(args, instances, run, probes, stats))
        stats["worker_cpu_s"] = sum(cpu_seconds(w.pid) for w in workers) - cpu0
        stats["wall_s"] = time.monotonic() - t0
        stats["events_processed"] = sum(_events_in(i) for i in instances) - events0
        metrics = "\n".join(_scrape(i) for i in instances)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait()
        for log in logs:
            log.close()
    report(args, settings, probes, stats, metrics, workdir)
    return 0


def _scrape(settings: Settings) -> str:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=5).read().decode()
    except OSError:
        return ""


def _events_in(settings: Settings, counter: str = "leadflow_events_in_total{") -> float:
    """Input events the worker accepted (``--routing-only``: assignments it emitted)."""
    if os.environ.get("BENCH_ROUTING_ONLY"):
        counter = "leadflow_assignments_total{"
    return sum(float(line.rsplit(" ", 1)[1]) for line in _scrape(settings).splitlines() if line.startswith(counter))


async def load_bench_roster(settings: Settings) -> None:
    import redis.asyncio as aioredis

    from agents.routing.config import load_routing_config, read_yaml
    from agents.routing.exceptions import RosterError
    from agents.routing.roster import parse_roster
    from agents.routing.roster_store import RosterStore

    raw = read_yaml(REPO / "config" / "roster.yaml", RosterError)
    for rep in raw["reps"]:
        if rep.get("capacity"):
            rep["capacity"] *= 1000
    roster = parse_roster(raw, config=load_routing_config(settings.routing_config_path), now_ms=now_ms())
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        await RosterStore(client, settings.redis_key_prefix).load(
            roster, source="bench (config/roster.yaml x1000 capacity)"
        )
    finally:
        await client.aclose()


async def wait_until_routing(settings: Settings, run: str, workers: list[subprocess.Popen], routing_only: bool) -> None:
    """Send warm-up probes until one is assigned (worker started, partitions assigned)."""
    probes: dict[str, Probe] = {}
    stop = asyncio.Event()
    consumer = asyncio.create_task(consume_outputs(settings, probes, stop))
    from aiokafka import AIOKafkaProducer

    from streams.topics import TopicNames

    names = TopicNames.from_settings(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    deadline = time.monotonic() + 180
    try:
        i = 0
        while time.monotonic() < deadline and not any(p.assigned_ts for p in probes.values()):
            if any(w.poll() is not None for w in workers):
                raise SystemExit("a worker exited during start-up; see its log")
            if routing_only:
                from streams.codec import Codec, SchemaRegistry

                codec = Codec(SchemaRegistry.load())
                fields = set(codec.registry.latest("lead_qualified").field_names)
                record = {k: v for k, v in mql_record(random.Random(i), f"warmup{run}", i).items() if k in fields}
                probes[record["lead_id"]] = Probe(record["lead_id"], time.monotonic(), False)
                await producer.send_and_wait(
                    names.mqls, codec.encode("lead_qualified", record), key=record["lead_id"].encode()
                )
            else:
                email = f"warmup{i}.{run}@warmup.example.com"
                probes[lead_id_for_email(email)] = Probe(lead_id_for_email(email), time.monotonic(), False)
                for kind, body in probe_events(email):
                    topic = names.form_submits if kind == "form" else names.web_activity
                    await producer.send_and_wait(topic, orjson.dumps(body))
            i += 1
            await asyncio.sleep(2)
        if not any(p.assigned_ts for p in probes.values()):
            raise SystemExit("no assignment within 180 s of starting the worker")
    finally:
        await producer.stop()
        stop.set()
        await consumer


async def sample_lag(instances: list[Settings], stop: asyncio.Event, every: float) -> None:
    """Print the workers' consumer lag per topic (leadflow_consumer_lag, summed over partitions)."""
    started = time.monotonic()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except asyncio.TimeoutError:
            pass
        text = "\n".join(await asyncio.gather(*(asyncio.to_thread(_scrape, i) for i in instances)))
        lag: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("leadflow_consumer_lag{"):
                topic = line.split('topic="', 1)[1].split('"', 1)[0].split(".", 1)[-1]
                lag[topic] = lag.get(topic, 0.0) + float(line.rsplit(" ", 1)[1])
        print(
            f"  t={time.monotonic() - started:5.0f}s lag "
            + " ".join(f"{t}={v:.0f}" for t, v in sorted(lag.items()) if v),
            flush=True,
        )


async def load_and_measure(args, instances: list[Settings], run, probes, stats) -> None:
    settings = instances[0]
    stop = asyncio.Event()
    consumer = asyncio.create_task(consume_outputs(settings, probes, stop))
    lag = asyncio.create_task(sample_lag(instances, stop, args.trace_lag)) if args.trace_lag else None
    await (produce_mqls if args.routing_only else produce_load)(settings, args, probes, run, stats)
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline and any(p.assigned_ts is None for p in probes.values()):
        await asyncio.sleep(0.2)
    stats["drain_seconds"] = args.drain - max(0.0, deadline - time.monotonic())
    stop.set()
    await consumer
    if lag is not None:
        await lag


def report(args, settings, probes: dict[str, Probe], stats: dict, metrics: str, workdir: Path) -> None:
    counted = [p for p in probes.values() if p.counted]
    done = [p for p in counted if p.assigned_ts is not None and len(p.input_ts) == 2]
    missing = len(counted) - len(done)
    e2e = [p.assigned_ts - max(p.input_ts) for p in done]
    seen = [p.seen_at_ms - max(p.input_ts) for p in done]
    to_mql = [p.mql_ts - max(p.input_ts) for p in done if p.mql_ts]
    routing = [p.assigned_ts - p.mql_ts for p in done if p.mql_ts]
    achieved = stats["sent"] / stats["load_seconds"]
    worker_hist = histogram_quantiles(metrics, "leadflow_event_to_assignment_seconds")
    print()
    print("leadflow speed-to-assignment benchmark")
    print(f"machine: {machine()}")
    print(
        f"stack:   Kafka {settings.kafka_bootstrap}, Redis {settings.redis_url}; {settings.topic_partitions} partitions; "
        f"{args.workers} worker process(es) ({'routing agent only' if args.routing_only else 'all agents: capture, scoring, routing, ...'}; {settings.store})"
    )
    if args.routing_only:
        print(
            f"load:    routing only: {stats['sent']:,} LeadQualified records published to the mqls topic in "
            f"{stats['load_seconds']:.1f} s = {achieved:,.0f} MQLs/s (target {args.rate:,.0f}), warm-up {args.warmup:.0f} s, "
            f"measured {args.duration:.0f} s"
        )
        print(
            f"probes:  {len(counted)} MQLs measured, {missing} without an assignment after {stats['drain_seconds']:.0f} s drain"
        )
    else:
        print(
            f"load:    {stats['sent']:,} input events in {stats['load_seconds']:.1f} s = {achieved:,.0f} events/s "
            f"(target {args.rate:,.0f}; JSON form/web/crm mix), warm-up {args.warmup:.0f} s, measured {args.duration:.0f} s"
        )
        print(
            f"probes:  {len(counted)} MQL-producing leads measured ({args.probes:g}/s; demo form + pricing view "
            f"{args.probe_gap * 1000:.0f} ms apart), {missing} without an assignment after {stats['drain_seconds']:.0f} s drain"
        )
    cpu = stats["worker_cpu_s"] / stats["wall_s"]
    per_event_ms = stats["worker_cpu_s"] * 1000 / max(1.0, stats["events_processed"])
    print(
        f"workers: {args.workers}, using {cpu * 100:.0f}% of one core on average; "
        f"{stats['events_processed']:,.0f} {'MQLs' if args.routing_only else 'input events'} processed at "
        f"{per_event_ms:.2f} ms of worker CPU each "
        f"(= {1000 / per_event_ms:,.0f} events/s per fully available core)"
    )
    print(
        f"machine load average at the end: {Path('/proc/loadavg').read_text().split()[0]} "
        f"(other processes share these {os.cpu_count()} CPUs)"
    )
    print()
    print(summary("input -> assignment (broker ts)", e2e))
    print(summary("input -> assignment seen by consumer", seen))
    print(summary("  input -> MQL (capture + scoring)", to_mql))
    print(summary("  MQL -> assignment (routing)", routing))
    if worker_hist:
        print(
            f"worker histogram leadflow_event_to_assignment_seconds (bucket upper bounds): "
            f"n={worker_hist['count']:.0f} p50<={worker_hist['p50']}s p95<={worker_hist['p95']}s p99<={worker_hist['p99']}s"
        )
    windows: dict[int, list[float]] = {}
    t0 = min((p.started for p in counted), default=0.0)
    for p in done:
        windows.setdefault(int((p.started - t0) // 10), []).append(p.assigned_ts - max(p.input_ts))
    print("p99 per 10 s window (ms): " + ", ".join(f"{pct(v, 99):.0f}" for _, v in sorted(windows.items())))
    print(f"worker logs: {workdir}/worker-*.log")
    if args.json:
        print(
            json.dumps(
                {
                    "rate_target": args.rate,
                    "rate_achieved": achieved,
                    "probes": len(counted),
                    "missing": missing,
                    "p50_ms": pct(e2e, 50),
                    "p95_ms": pct(e2e, 95),
                    "p99_ms": pct(e2e, 99),
                    "max_ms": max(e2e, default=None),
                    "routing_p99_ms": pct(routing, 99),
                    "scoring_p99_ms": pct(to_mql, 99),
                    "worker_cpu": cpu,
                    "worker_cpu_ms_per_event": per_event_ms,
                    "workers": args.workers,
                }
            )
        )


if __name__ == "__main__":
    sys.exit(main())
