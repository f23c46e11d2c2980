"""Bad configuration fails at start against the real broker and Redis (issue 12, item 3).

The unit table (tests/unit/test_config_fail_fast.py) covers what needs neither; here: a topic
the broker refuses to create stops `leadflow worker` with one `Error:` line, and the routing
config's owners are checked against the roster in Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from agents.routing.config import load_routing_config
from agents.routing.roster_store import check_routing_owners
from streams.connections import redis_sync
from streams.settings import REPO_ROOT
from streams.startup_checks import StartupError
from tests.integration.conftest import WorkerHarness
from tests.integration.test_routing import load_roster, shared_roster
from tests.unit.test_config_fail_fast import with_value


def test_a_topic_the_broker_refuses_stops_the_worker_in_one_line(stack, stack_settings, tmp_path):
    harness = WorkerHarness(stack_settings, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(harness.process_env(0))
    # A fresh prefix (its topics are missing) and more replicas than the one test broker has.
    fresh = "t" + uuid.uuid4().hex[:10]
    env.update(LEADFLOW_TOPIC_PREFIX=fresh, LEADFLOW_APP_ID=fresh, LEADFLOW_TOPIC_REPLICATION="3")
    result = subprocess.run(
        [sys.executable, "-m", "leadflow.cli", "worker"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    output = result.stderr.decode() + result.stdout.decode()
    assert result.returncode != 0, output
    [line] = [line for line in output.splitlines() if line.startswith("Error:")]
    assert f"cannot create Kafka topic '{fresh}." in line and "InvalidReplicationFactorError" in line, output
    assert "LEADFLOW_TOPIC_REPLICATION=3" in line, output
    assert "Worker ready" not in output and "Traceback" not in output, output


@pytest.mark.parametrize(
    "nurture_owner, roster_loaded, outcome",
    [
        ("nurture-sequence", False, "no roster loaded yet"),  # a warning: checked at `roster load`
        ("nurture-sequence", True, None),  # in the roster and active: nothing to say
        ("ghost-queue", True, "nurture owner 'ghost-queue' (routing config nurture_owner): not in the roster"),
    ],
)
def test_routing_owners_are_checked_against_the_roster(
    stack, stack_settings, tmp_path, nurture_owner, roster_loaded, outcome
):
    routing = with_value("routing", "nurture_owner", nurture_owner)(tmp_path)
    harness = WorkerHarness(
        stack_settings, tmp_path, redis_key_prefix="t" + uuid.uuid4().hex[:10], routing_config_path=routing
    )
    if roster_loaded:
        load_roster(harness, shared_roster())  # valid against the shipped routing config
    client = redis_sync(harness.settings)
    try:
        if outcome and "not in the roster" in outcome:
            with pytest.raises(StartupError) as info:
                check_routing_owners(
                    client, load_routing_config(harness.settings.routing_config_path), harness.settings
                )
            assert outcome in str(info.value) and str(routing) in str(info.value)
        else:
            warnings = check_routing_owners(
                client, load_routing_config(harness.settings.routing_config_path), harness.settings
            )
            assert any(outcome in w for w in warnings) if outcome else warnings == [], warnings
    finally:
        client.close()
