"""A worker whose broker goes away idles, says so once per interval, is not ready, resumes by
itself when the broker is back, and stops promptly on SIGTERM while it is away.

The broker is one of the test's own (see tests/integration/outage.py): the session broker is
shared. The outage lasts LEADFLOW_TEST_OUTAGE_S (10 s here; `scripts/broker_outage.py` runs
the full 60 s measurement).
"""

from __future__ import annotations

import os

import pytest

from tests.integration.conftest import TEST_KAFKA_PORT
from tests.integration.outage import BrokerOutage

pytestmark = pytest.mark.integration

OUTAGE_S = float(os.environ.get("LEADFLOW_TEST_OUTAGE_S", "10"))
OUTAGE_KAFKA_PORT = TEST_KAFKA_PORT + 10  # and +11 for its controller; clear of the session stack's ports
LOG_INTERVAL_S = 3.0  # shorter than the default 10 s, so a short outage shows more than one line


def test_worker_idles_through_a_broker_outage_and_resumes(stack, stack_settings, tmp_path):
    with BrokerOutage(
        tmp_path, OUTAGE_KAFKA_PORT, stack_settings.redis_url, kafka_outage_log_interval_s=LOG_INTERVAL_S
    ) as drill:
        report = drill.run(OUTAGE_S, sigterm_after_s=2.0)
        logs = drill.harness.logs()
    print(report.summary())
    context = f"{report.summary()}\n--- during the outage:\n" + "\n".join(report.outage_log) + f"\n{logs}"

    assert report.cpu_percent < 5.0, context
    # The outage line once per interval; aiokafka's own errors once per kind (about five kinds),
    # a few lines from Faust; before the backoff: ~100 lines/s.
    summaries = [line for line in report.outage_log if "Kafka unreachable for" in line]
    assert OUTAGE_S // LOG_INTERVAL_S - 1 <= len(summaries) <= OUTAGE_S // LOG_INTERVAL_S + 1, context
    assert "reconnect attempts, next in" in summaries[-1], context
    assert report.per_attempt_lines <= 3, context
    assert report.log_lines <= 25 + OUTAGE_S / LOG_INTERVAL_S, context

    # Not ready (for Kafka, and named) within a few seconds, through the end of the outage.
    late = [(t, status, failing) for t, status, failing in report.readyz if t >= 3.0]
    assert late and all(status == 503 and "kafka" in failing for _, status, failing in late), report.readyz

    # Back by itself: an event published once the broker answers is processed.
    assert report.recovered_s is not None and report.recovered_s < 30, context
    assert report.ready_again_s is not None

    # SIGTERM with the broker away: gone within the stop timeout plus start-up of the watchdog.
    assert report.sigterm_exit_s is not None and report.sigterm_exit_s < 8, context
    assert report.orphans == [], context
