"""routing's agent.py on the fake pipeline (streams.testing), fed by the scoring agent's own
MQLs; Redis is replaced by an in-memory roster store (the Lua paths are covered by the
integration tests on real Redis). Without a roster every MQL goes to the fallback owner."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from agents.disposition.rules import DEFAULT_POLICY
from agents.domain import wire
from agents.routing import agent as routing
from agents.scoring import agent as scoring
from streams.testing import ManualClock
from tests.unit.agents.routing.agent_doubles import LEAD, MemoryRosterStore, assigned, qualify
from tests.unit.agents.scoring.helpers import T0


@pytest.fixture
def pipeline(scoring_model, routing_priority, routing_config, fake_pipeline, stores):
    pipeline = fake_pipeline(clock=ManualClock(T0 / 1000), redis=object())
    scoring.register(pipeline, model=scoring_model, dispositions=DEFAULT_POLICY, priority=routing_priority)
    routing.register(pipeline, config=routing_config)
    return pipeline


def test_an_mql_is_assigned_then_the_assignment_is_remembered(routing_config, pipeline):
    qualify(pipeline)
    asyncio.run(pipeline.pump("mqls"))

    (record,) = assigned(pipeline)
    mql = next(e.record for e in pipeline.emitted if e.subject == "lead_qualified")
    assert record["lead_id"] == LEAD and record["mql_event_id"] == mql["event_id"]
    assert record["owner_id"] == routing_config.fallback.owner_id and record["is_fallback"] is True
    memo = orjson.loads(pipeline.tables["lead_to_assignment"][LEAD.encode()])
    assert memo  # written after the record was emitted
    assert [s.key for s in pipeline.channel("assignments").sent] == [LEAD.encode()]
    assert (
        pipeline.metrics.registry.get_sample_value(
            "leadflow_assignments_total", {"rule": record["rule"], "priority": record["priority"]}
        )
        == 1.0
    )
    assert not pipeline.dead_letters


def test_a_redelivered_mql_is_skipped(pipeline):
    qualify(pipeline)
    asyncio.run(pipeline.pump("mqls"))
    (sent,) = pipeline.channel("mqls").sent

    asyncio.run(pipeline.deliver("mqls", sent.value, key=sent.key))

    assert len(assigned(pipeline)) == 1
    assert pipeline.metrics.registry.get_sample_value("leadflow_duplicates_skipped_total", {"stage": "route"}) == 1.0


def test_a_breach_that_only_escalates_is_not_routings_business(pipeline):
    breach = {
        "event_id": "br-1",
        "lead_id": LEAD,
        "assignment_id": "as-1",
        "owner_id": "ae-ana",
        "priority": "P1",
        "tier": 1,
        "escalate_to_role": "manager",
        "due_at": T0,
        "breached_at": T0 + 1,
        "minutes_late": 0.1,
        "action": "escalate",
    }
    asyncio.run(pipeline.deliver_record("sla_breaches", "sla_breached", breach, key=LEAD.encode()))
    assert not pipeline.emitted and not pipeline.dead_letters


def test_wrong_records_and_commands_are_dead_lettered_as_unknown_kind(pipeline):
    breach = {
        "event_id": "br-1",
        "lead_id": LEAD,
        "assignment_id": "as-1",
        "owner_id": "ae-ana",
        "priority": "P1",
        "tier": 0,
        "escalate_to_role": "rep",
        "due_at": T0,
        "breached_at": T0 + 1,
        "minutes_late": 0.1,
    }
    asyncio.run(pipeline.deliver_record("mqls", "sla_breached", breach, key=LEAD.encode()))
    asyncio.run(pipeline.deliver("routing_retries", wire.encode(wire.SlaSweep(0, 1, 2)), key=b"r"))

    assert [(d.reason_code, d.reason) for d in pipeline.dead_letters] == [
        ("unknown_kind", "expected lead_qualified on the mqls topic, got 'sla_breached'"),
        ("unknown_kind", "internal message type 'sla_sweep'"),
    ]


def test_a_processing_error_is_logged_and_dead_lettered_naming_routing(pipeline, monkeypatch, caplog):
    qualify(pipeline)
    (sent,) = pipeline.channel("mqls").sent
    monkeypatch.setattr(MemoryRosterStore, "fail", RuntimeError("bug in the store"))

    with caplog.at_level(logging.ERROR):
        meta = asyncio.run(pipeline.deliver("mqls", sent.value, key=sent.key, partition=2))

    (dead,) = pipeline.dead_letters
    assert (dead.meta, dead.reason_code, dead.reason) == (meta, "processing_error", "RuntimeError in routing")
    assert f"routing failed at {meta.topic}[2]@0" in caplog.text
    assert not assigned(pipeline) and LEAD.encode() not in pipeline.tables["lead_to_assignment"]
