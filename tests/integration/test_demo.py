"""`leadflow demo` end to end on the real stack: its own worker, simulator traffic, MQLs and
scored events appear, fit-gated personas never qualify, bad input is dead-lettered, and
nothing is left running or lying around afterwards."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from rich.console import Console

from leadflow.demo.options import DemoOptions
from leadflow.demo.run import run_demo
from streams.settings import load_settings
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


async def _topics(bootstrap: str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await admin.list_topics()
    finally:
        await admin.close()


def test_demo_runs_the_pipeline_on_simulated_traffic_and_cleans_up(stack, stack_settings):
    settings = load_settings(**{**stack_settings.model_dump(), "metrics_port": free_port(), "topic_partitions": 2})
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=False)
    opts = DemoOptions(rate=120, seed=11, duration=14, bad_share=0.01, manage_stack=False, plain=True)

    summary = run_demo(settings, opts, console=console, say=console.print)

    log = out.getvalue()
    assert summary["published"] > 1000, log
    assert summary.get("scored", 0) > 300, log
    assert summary.get("mqls", 0) >= 3, log
    assert summary["event_to_mql_ms"]["p50"] is not None and summary["event_to_mql_ms"]["p50"] < 5000, summary
    # The fit gate holds on realistic traffic: no MQL from bots, competitors or free mailboxes.
    by_persona = summary["by_persona"]
    for persona in ("bot", "competitor", "gmail_researcher"):
        assert by_persona.get(persona, {}).get("mqls", 0) == 0, by_persona
    assert summary.get("dead_letters", 0) >= 1, log
    assert " MQL " in log and "DEAD LETTER" in log
    # Nothing left behind: the worker stopped, the run's topics are gone, the stack still up.
    assert summary["worker_left_running"] is False
    deadline = time.monotonic() + 10
    while True:  # topic deletion completes asynchronously on the broker
        remaining = [t for t in asyncio.run(_topics(settings.kafka_bootstrap)) if t.startswith(summary["run_id"])]
        if not remaining or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert remaining == []
    assert stack.status()["kafka"]["running"]  # --no-stack: the demo leaves a stack it did not start
