#!/usr/bin/env python3
"""How long `leadflow calibrate` takes on N outcomes (default 100,000 MQLs, each with a decided
outcome), phase by phase: joining MQLs with CRM statuses, the maths (bands, thresholds, lift,
the L2 logistic refit), the terminal report and the HTML page.

Synthetic history (seeded): every MQL has 3-9 signals of the live model with the points a
breakdown would show, a first touch and then an SQL or a rejection whose odds depend on two
of the signals. With ``--kafka`` the MQLs (framed Avro) and CRM statuses (JSON) are first
published to a fresh topic prefix on the configured Kafka, and reading them back through
``leadflow.calibration.sources.read_topics`` (the command's own reader) is timed too.

    .venv/bin/python scripts/bench_calibration.py
    flock /tmp/leadflow-kafka.lock .venv/bin/python scripts/bench_calibration.py --kafka   # LEADFLOW_* Kafka
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.scoring.model import load_model  # noqa: E402
from leadflow.calibration.analysis import Options, calibrate  # noqa: E402
from leadflow.calibration.cohort import Handoff, Outcome, build_cohort  # noqa: E402
from leadflow.calibration.refit import load_ranges, signal_weights  # noqa: E402
from streams.settings import load_settings  # noqa: E402

T0 = 1_767_225_600_000


def synthetic(n: int, seed: int) -> tuple[list[Handoff], list[Outcome], list[dict], list[dict]]:
    model = load_model(load_settings().scoring_model_path)
    weights = {k: v for k, v in signal_weights(model).items() if v > 0}
    names = list(weights)
    rng = np.random.default_rng(seed)
    handoffs, outcomes, mql_records, crm_records = [], [], [], []
    for i in range(n):
        chosen = rng.choice(len(names), size=int(rng.integers(3, 10)), replace=False)
        points = {names[j]: float(weights[names[j]]) for j in chosen}
        score = sum(points.values())
        logit = -1.2 + 1.0 * ("roi_calculator_visit" in points) + 0.6 * ("senior_title" in points)
        converted = rng.random() < 1 / (1 + np.exp(-logit))
        lead, at = f"ld_{i:020x}", T0 + i * 60_000
        status = "sql" if converted else "rejected"
        handoffs.append(Handoff(lead, f"mql-{i}", at, score, points, model.version))
        outcomes.append(Outcome(lead, f"t-{i}", at + 600_000, "first_touch"))
        outcomes.append(Outcome(lead, f"o-{i}", at + 86_400_000, status, None if converted else "not_now"))
        mql_records.append(_mql_record(lead, i, at, score, points, model.version))
        crm_records.append(
            {"event_id": f"t-{i}", "occurred_at": at + 600_000, "lead_id": lead, "status": "first_touch"}
        )
        crm_records.append(
            {"event_id": f"o-{i}", "occurred_at": at + 86_400_000, "lead_id": lead, "status": status,
             "disposition": None if converted else "not_now"}
        )  # fmt: skip
    return handoffs, outcomes, mql_records, crm_records


def _mql_record(lead: str, i: int, at: int, score: float, points: dict[str, float], version: str) -> dict:
    return {
        "event_id": f"mql-{i}", "lead_id": lead, "email": f"bench{i}@example.com", "occurred_at": at,
        "qualified_at": at, "mql_number": 1, "score": score, "fit_grade": "B", "fast_track": score > 80,
        "breakdown": [{"signal": s, "points": p, "detail": None} for s, p in points.items()],
        "model_version": version,
        "handoff": {"trigger": "bench", "problem_hypothesis": "bench", "disqualifiers_checked": [],
                    "last_touches": [], "recommended_opener": "hi"},
    }  # fmt: skip


async def _publish_and_read(mqls: list[dict], crm: list[dict]) -> tuple[float, float, int, int]:
    import orjson
    from aiokafka import AIOKafkaProducer

    from leadflow.calibration.sources import read_topics
    from streams.app import build_codec
    from streams.connections import kafka_client_kwargs
    from streams.topics import TopicNames, ensure_topics

    settings = load_settings(topic_prefix="calbench" + uuid.uuid4().hex[:6])
    await ensure_topics(settings)
    names = TopicNames.from_settings(settings)
    codec = build_codec(settings, register=False)
    started = time.monotonic()
    producer = AIOKafkaProducer(**kafka_client_kwargs(settings), acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        for record in mqls:
            await producer.send(names.mqls, codec.encode("lead_qualified", record), key=record["lead_id"].encode())
        for record in crm:
            await producer.send(names.crm_status, orjson.dumps(record), key=record["lead_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()
    published = time.monotonic() - started
    history = await read_topics(settings, codec)
    return published, history.read_seconds, len(history.handoffs), len(history.outcomes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outcomes", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kafka", action="store_true", help="also publish and read back through Kafka")
    args = parser.parse_args()
    from rich.console import Console

    from leadflow.calibration.html import render_html
    from leadflow.calibration.report import render

    model = load_model(load_settings().scoring_model_path)
    handoffs, outcomes, mql_records, crm_records = synthetic(args.outcomes, args.seed)
    print(f"{args.outcomes:,} MQLs, {len(outcomes):,} CRM statuses; {os.cpu_count()} cores, {os.uname().machine}")
    if args.kafka:
        published, read, n_mqls, n_crm = asyncio.run(_publish_and_read(mql_records, crm_records))
        print(f"kafka: published in {published:.1f} s; read {n_mqls:,} MQLs + {n_crm:,} CRM statuses in {read:.1f} s")
    phases: dict[str, float] = {}
    t = time.monotonic()
    cohort = build_cohort(handoffs, outcomes)
    phases["join"] = time.monotonic() - t
    t = time.monotonic()
    result = calibrate(cohort, model, Options(min_outcomes=200, refit=True, ranges=load_ranges()))
    phases["maths (bands, thresholds, lift, refit)"] = time.monotonic() - t
    t = time.monotonic()
    render(result, Console(file=io.StringIO(), width=160))
    phases["terminal report"] = time.monotonic() - t
    t = time.monotonic()
    render_html(result)
    phases["HTML page"] = time.monotonic() - t
    for name, seconds in phases.items():
        print(f"  {name:40} {seconds:6.2f} s")
    print(
        f"  {'total (without reading)':40} {sum(phases.values()):6.2f} s; refit {result.refit.fit.iterations} Newton steps"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
