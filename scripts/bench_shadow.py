#!/usr/bin/env python3
"""Hot-path cost of the shadow model: scoring's agent on the fake pipeline (streams.testing:
dict tables, the runtime's consume path, schema-checked emits) over the synthetic stream of
``bench_scoring.py``, with LEADFLOW_SHADOW_MODEL_PATH unset and set (a candidate whose MQL
threshold is 10 points lower). Prints events/s, us/event and the shadow decisions made.

    .venv/bin/python scripts/bench_shadow.py [--events 20000] [--leads 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]

from bench_scoring import synthetic_events  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from agents.disposition.rules import DEFAULT_POLICY  # noqa: E402
from agents.domain import wire  # noqa: E402
from agents.domain.yamlio import read_yaml  # noqa: E402
from agents.routing.config import load_routing_config  # noqa: E402
from agents.routing.priority import priority_policy  # noqa: E402
from agents.scoring import agent as scoring  # noqa: E402
from agents.scoring.exceptions import ModelError  # noqa: E402
from agents.scoring.model import load_model, parse_model  # noqa: E402
from leadflow.compose import METRIC_VOCABULARY  # noqa: E402
from streams.metrics import Metrics  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.testing import FakePipeline, ManualClock  # noqa: E402


def candidate_model(live_path: Path):
    raw = read_yaml(live_path, ModelError)
    raw["version"] = "bench-candidate"
    thresholds = raw["thresholds"]
    thresholds["mql"] -= 10
    thresholds["mql_rearm_at"] = min(thresholds["mql_rearm_at"], thresholds["mql"])
    return parse_model(raw)


async def run(events, model, priority, shadow) -> tuple[float, int]:
    start_s = events[0].occurred_at_ms / 1000
    pipeline = FakePipeline(
        metrics=Metrics(CollectorRegistry(), METRIC_VOCABULARY), settings=Settings(), clock=ManualClock(start_s)
    )
    scoring.register(pipeline, model=model, dispositions=DEFAULT_POLICY, priority=priority, shadow=shadow)
    encoded = [(wire.encode_lead_event(e), e.lead_id.encode(), e.occurred_at_ms / 1000) for e in events]
    started = time.perf_counter()
    for value, key, at_s in encoded:
        pipeline.clock.now_s = max(pipeline.clock.now_s, at_s)
        await pipeline.deliver("lead_events", value, key=key)
    elapsed = time.perf_counter() - started
    return elapsed, sum(1 for e in pipeline.emitted if e.subject == "shadow_decision")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--leads", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    live_path = REPO / "config" / "scoring-model.yaml"
    model, candidate = load_model(live_path), candidate_model(live_path)
    priority = priority_policy(load_routing_config(REPO / "config" / "routing.yaml"))
    events = synthetic_events(args.events, args.leads, 7)
    asyncio.run(run(events[:2000], model, priority, candidate))  # warm caches
    best = {}
    for label, shadow in (("off", None), ("on", candidate)) * args.repeat:  # interleaved: fair on a shared box
        elapsed, decisions = asyncio.run(run(events, model, priority, shadow))
        if label not in best or elapsed < best[label][0]:
            best[label] = (elapsed, decisions)
    for label, (elapsed, decisions) in best.items():
        print(
            f"shadow {label:>3}: {len(events) / elapsed:>8,.0f} events/s  {elapsed * 1e6 / len(events):6.1f} us/event"
            f"  shadow decisions: {decisions:,}  (best of {args.repeat})"
        )
    off, on = best["off"][0], best["on"][0]
    print(f"shadow cost: +{(on - off) * 1e6 / len(events):.1f} us/event ({on / off - 1:+.0%})")


if __name__ == "__main__":
    main()
