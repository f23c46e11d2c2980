#!/usr/bin/env python3
"""How fast `leadflow whatif` replays history (events/s), without Kafka: N simulator input
events (default 20,000; forms, web activity and inline CRM statuses, seeded) replayed in memory
by ``leadflow.whatif.replay`` with the live model and a candidate whose MQL threshold is 10
points lower (capture, scoring twice, routing twice), with the repository's configuration.

    .venv/bin/python scripts/bench_whatif.py [--events 20000] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.capture.rules import CaptureLimits  # noqa: E402
from agents.domain.yamlio import read_yaml  # noqa: E402
from agents.routing.config import load_routing_config  # noqa: E402
from agents.routing.exceptions import RosterError  # noqa: E402
from agents.routing.roster import parse_roster  # noqa: E402
from agents.scoring.exceptions import ModelError  # noqa: E402
from agents.scoring.model import load_model, parse_model  # noqa: E402
from leadflow.simulator.sessions import TrafficSimulator  # noqa: E402
from leadflow.whatif.replay import InputRecord, ReplayRules, replay  # noqa: E402

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    config = ROOT / "config"
    live = load_model(config / "scoring-model.yaml")
    raw = read_yaml(config / "scoring-model.yaml", ModelError)
    raw["version"] = "bench-candidate"
    raw["thresholds"]["mql"] -= 10
    raw["thresholds"]["mql_rearm_at"] = min(raw["thresholds"]["mql_rearm_at"], raw["thresholds"]["mql"])
    candidate = parse_model(raw)
    routing = load_routing_config(config / "routing.yaml")
    roster = parse_roster(read_yaml(config / "roster.yaml", RosterError), config=routing)
    sim = TrafficSimulator(args.seed, start_ms=T0, inline_crm=True)
    inputs = [
        InputRecord(e.subject, e.record, e.encoding, b"%d" % e.seq, e.at_ms + 100)
        for e in sim.take(args.events)
        if e.record is not None
    ]
    setup = ReplayRules(CaptureLimits(max_event_age_days=100 * 365), routing, roster)
    started = time.perf_counter()
    result = replay(inputs, live, candidate, setup, from_ms=T0, to_ms=inputs[-1].received_at_ms + 1)
    seconds = time.perf_counter() - started
    days = (inputs[-1].received_at_ms - T0) / 86_400_000
    print(f"{len(inputs):,} input records ({days:.1f} days of simulated traffic), {os.cpu_count()} cores")
    print(f"replayed {result.events_replayed:,} events with 2 models in {seconds:.2f} s: {len(inputs) / seconds:,.0f} events/s")  # fmt: skip
    print(
        f"MQLs live {result.live.mqls:,} ({result.live.model_version}), candidate {result.candidate.mqls:,}; "
        f"gained {len(result.gained):,}, lost {len(result.lost):,}"
    )


if __name__ == "__main__":
    main()
