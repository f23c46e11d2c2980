#!/usr/bin/env python3
"""Kafka outage drill: what a worker does while its broker is gone, and after it returns.

Starts a Kafka broker and a Redis of its own (never the dev stack's or the test session's),
a `leadflow worker` on them, processes one event, then stops the broker for ``--outage``
seconds and measures the worker: CPU (% of one core, from /proc), log lines written (and how
many are aiokafka's per-attempt connection errors), /readyz once a second. Then it starts the
broker again on the same port and data directory, publishes an event and times until it is
processed, and finally stops the broker once more and times a SIGTERM to the worker.

    .venv/bin/python scripts/broker_outage.py [--outage 60] [--kafka-port 29590] [--redis-port 29690] [--json]

Takes about outage + 60 s. The integration test ``tests/integration/test_broker_outage.py``
runs the same drill with a short outage; this is the full-length measurement.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leadflow.devstack import RedisServer  # noqa: E402
from tests.integration.outage import BrokerOutage  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the broker stays down (default 60)")
    parser.add_argument("--kafka-port", type=int, default=29590, help="broker port; the controller uses the next one")
    parser.add_argument("--redis-port", type=int, default=29690)
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    args = parser.parse_args(argv)
    if args.outage <= 0:
        parser.error("--outage must be positive")

    with tempfile.TemporaryDirectory(prefix="leadflow-outage-") as tmp:
        redis = RedisServer(args.redis_port, Path(tmp) / "redis", tie_to_parent=True)
        redis.start()
        try:
            with BrokerOutage(Path(tmp), args.kafka_port, redis.url) as drill:
                report = drill.run(args.outage)
        finally:
            redis.stop()
    if args.json:
        print(report.to_json())
    else:
        print("worker log during the outage (first lines):")
        print("\n".join("  " + line[:200] for line in report.outage_log[:20]))
        print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
