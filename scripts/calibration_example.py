#!/usr/bin/env python3
"""Simulated lead history for `leadflow calibrate` (the worked example of docs/model-tuning.md).

Runs the traffic simulator through capture's and scoring's rules (``leadflow.simulator.history``),
with reps whose outcomes follow the personas plus one known ground truth (``--lift``: a signal
whose presence multiplies the odds of an SQL), and writes the MQLs and CRM outcomes as a CSV
(``--csv``) and/or publishes them to the configured leadflow topics (``--publish``: MQLs as
framed Avro on ``<prefix>.out.mqls``, CRM statuses as JSON on ``<prefix>.in.crm-status``).

    .venv/bin/python scripts/calibration_example.py --csv /tmp/history.csv
    .venv/bin/leadflow calibrate --no-kafka --csv /tmp/history.csv --refit --html /tmp/report.html
    flock /tmp/leadflow-kafka.lock .venv/bin/python scripts/calibration_example.py --publish
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.scoring.model import load_model  # noqa: E402
from leadflow.calibration.cohort import Outcome  # noqa: E402
from leadflow.calibration.sources import handoff_from_record, write_csv  # noqa: E402
from leadflow.simulator.history import SimulatedHistory, simulate_history  # noqa: E402
from streams.settings import load_settings  # noqa: E402


def outcomes_of(history: SimulatedHistory) -> list[Outcome]:
    return [Outcome(r["lead_id"], r["event_id"], r["occurred_at"], r["status"], r["disposition"]) for r in history.crm]


async def publish(history: SimulatedHistory) -> None:
    import orjson
    from aiokafka import AIOKafkaProducer

    from streams.app import build_codec
    from streams.connections import kafka_client_kwargs
    from streams.topics import TopicNames, ensure_topics

    settings = load_settings()
    await ensure_topics(settings)
    names = TopicNames.from_settings(settings)
    codec = build_codec(settings, register=True)
    producer = AIOKafkaProducer(**kafka_client_kwargs(settings), acks="all", linger_ms=5)
    await producer.start()
    try:
        for record in history.mqls:
            await producer.send(names.mqls, codec.encode("lead_qualified", record), key=record["lead_id"].encode())
        for crm in history.crm:
            await producer.send(names.crm_status, orjson.dumps(crm), key=crm["lead_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()
    print(
        f"published {len(history.mqls):,} MQLs to {names.mqls} and {len(history.crm):,} CRM statuses to {names.crm_status}"
    )


def parse_lift(items: list[str]) -> dict[str, float]:
    lifts: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        lifts[name] = float(value)
    return lifts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000, help="simulated input events (default 60000)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--mix", default=None, help="persona mix, e.g. smb_buyer=1 (default: the simulator's)")
    parser.add_argument(
        "--lift", action="append", default=None, help="SIGNAL=ODDS ground truth (default docs_page_visit=10)"
    )
    parser.add_argument(
        "--arrival-every-s",
        type=float,
        default=1200.0,
        help="mean business seconds between new visitors (1200: ~11 weeks)",
    )
    parser.add_argument("--csv", type=Path, help="write the history here")
    parser.add_argument("--publish", action="store_true", help="publish to the configured Kafka topics")
    args = parser.parse_args(argv)
    from leadflow.simulator.personas import parse_mix

    model = load_model(load_settings().scoring_model_path)
    started = time.monotonic()
    history = simulate_history(
        seed=args.seed,
        events=args.events,
        model=model,
        mix=parse_mix(args.mix),
        signal_lift=parse_lift(args.lift or ["docs_page_visit=10"]),
        arrival_every_s=args.arrival_every_s,
    )
    print(
        f"simulated {args.events:,} events in {time.monotonic() - started:.1f} s: "
        f"{len(history.mqls):,} MQLs, {len(history.crm):,} CRM statuses"
    )
    if args.csv:
        rows = write_csv(args.csv, [h for h in map(handoff_from_record, history.mqls) if h], outcomes_of(history))
        print(f"wrote {rows:,} rows to {args.csv}")
    if args.publish:
        asyncio.run(publish(history))
    return 0


if __name__ == "__main__":
    sys.exit(main())
