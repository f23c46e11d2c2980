"""sla's agent.py on the fake pipeline (streams.testing): an assignment opens the lead's clock,
the timer's sweep command breaches it past its deadline, a CRM touch (a typed lead event;
every other kind on the shared topic is skipped) stops it, and the consume path dead-letters
what is not for this agent."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from agents.domain import wire
from agents.domain.identity import lead_id_for_email
from agents.sla import agent as sla
from agents.sla import rules as sla_rules
from agents.sla.config import parse_sla_config
from streams.testing import ManualClock
from tests.unit.agents.scoring.helpers import CORP, T0, crm, director_form

S = 1_000
LEAD = lead_id_for_email(CORP)
CONFIG = parse_sla_config(
    {
        "version": "t",
        "sweep": {"bucket_seconds": 2},
        "escalation": {"P1": {"tiers": [{"after": "20s", "role": "rep"}, {"after": "40s", "role": "manager"}]}},
        "contacts": {"manager": {"default": "mgr-marco"}},
    }
)


@pytest.fixture
def pipeline(fake_pipeline):
    pipeline = fake_pipeline(clock=ManualClock(T0 / 1000))
    sla.register(pipeline, config=CONFIG)
    return pipeline


def assignment(*, at: int = T0, due_in_ms: int = 10 * S) -> dict:
    return {
        "event_id": "as-1",
        "lead_id": LEAD,
        "mql_event_id": "mql-1",
        "owner_id": "ae-ana",
        "owner_name": "Ana",
        "owner_role": "AE",
        "team": "na-sales",
        "priority": "P1",
        "assigned_at": at,
        "first_touch_due_at": at + due_in_ms,
        "rule": "round_robin",
        "reason": "test",
        "is_fallback": False,
        "audit": [],
        "handoff": {
            "trigger": "demo_request",
            "problem_hypothesis": "-",
            "disqualifiers_checked": [],
            "last_touches": [],
            "recommended_opener": "Hi",
        },
    }


def run(coroutine):
    return asyncio.run(coroutine)


def sweep_until(pipeline, ms_after_t0: int) -> None:
    """Move the clock, let the timer ask for the ended buckets and the agent close them."""
    pipeline.clock.now_s = (T0 + ms_after_t0) / 1000
    run(pipeline.fire("request_sla_sweeps"))
    run(pipeline.pump("sla_commands"))


def open_clocks(pipeline) -> float:
    return pipeline.metrics.registry.get_sample_value("leadflow_sla_open_clocks", {"priority": "P1"})


def test_an_assignment_opens_the_clock_and_the_sweep_past_the_deadline_breaches_it(pipeline):
    run(pipeline.deliver_record("assignments", "lead_assigned", assignment(), key=LEAD.encode()))
    clock = orjson.loads(pipeline.tables["lead_to_sla_clock"][LEAD.encode()])
    assert clock  # opened, in the table
    sweep_until(pipeline, 5 * S)  # before the deadline: a sweep, no breach
    assert pipeline.subjects() == [] and open_clocks(pipeline) == 1.0

    sweep_until(pipeline, 14 * S)  # the 10 s deadline's bucket has ended

    (breach,) = pipeline.emitted
    assert breach.subject == "sla_breached" and breach.key == LEAD
    assert (breach.record["tier"], breach.record["owner_id"], breach.record["priority"]) == (0, "ae-ana", "P1")
    commands = [wire.reader(wire.SlaSweep)(s.value) for s in pipeline.channel("sla_commands").sent]
    assert commands and all(c.partition == 0 for c in commands)
    assert (
        pipeline.metrics.registry.get_sample_value("leadflow_sla_breaches_total", {"priority": "P1", "tier": "0"}) == 1
    )
    assert not pipeline.dead_letters


def test_a_crm_touch_stops_the_clock_and_other_lead_events_are_skipped(pipeline):
    run(pipeline.deliver_record("assignments", "lead_assigned", assignment(), key=LEAD.encode()))
    opened = dict(pipeline.tables["lead_to_sla_clock"])
    # Scoring's events and commands share the topic: skipped, neither applied nor dead-lettered.
    run(pipeline.deliver("lead_events", wire.encode_lead_event(director_form(at=T0 + S)), key=LEAD.encode()))
    run(pipeline.deliver("lead_events", wire.encode(wire.ReviewDue(0, 1)), key=b"sweep"))
    run(pipeline.deliver("lead_events", None, key=LEAD.encode()))
    assert pipeline.tables["lead_to_sla_clock"] == opened and not pipeline.dead_letters

    run(pipeline.deliver("lead_events", wire.encode_lead_event(crm(at=T0 + 2 * S)), key=LEAD.encode()))
    assert pipeline.tables["lead_to_sla_clock"][LEAD.encode()] != opened[LEAD.encode()]

    sweep_until(pipeline, 60 * S)

    assert pipeline.subjects() == [] and not pipeline.dead_letters
    assert (
        pipeline.metrics.registry.get_sample_value(
            "leadflow_speed_to_lead_seconds_count", {"priority": "P1", "team": "na-sales"}
        )
        == 1.0
    )


def test_records_and_commands_that_are_not_this_agents_are_dead_lettered_as_unknown_kind(pipeline):
    erased = {
        "event_id": "er-1",
        "lead_id": LEAD,
        "request_event_id": "rq-1",
        "requested_at": T0,
        "erased_at": T0,
        "found": True,
        "later_events": "forget",
    }
    run(pipeline.deliver_record("assignments", "lead_erased", erased, key=LEAD.encode()))
    run(pipeline.deliver("sla_commands", wire.encode(wire.ReviewDue(0, 1)), key=b"x"))

    assert [(d.reason_code, d.reason) for d in pipeline.dead_letters] == [
        ("unknown_kind", "expected lead_assigned on the assignments topic, got 'lead_erased'"),
        ("unknown_kind", "internal message type 'review_due'"),
    ]
    assert not pipeline.tables["lead_to_sla_clock"]


def test_a_processing_error_is_logged_and_dead_lettered_naming_sla(pipeline, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(sla_rules, "apply", broken)
    with caplog.at_level(logging.ERROR):
        meta = run(
            pipeline.deliver_record("assignments", "lead_assigned", assignment(), key=LEAD.encode(), partition=4)
        )

    (dead,) = pipeline.dead_letters
    assert (dead.meta, dead.reason_code, dead.reason) == (meta, "processing_error", "RuntimeError in sla")
    assert f"sla failed at {meta.topic}[4]@0" in caplog.text
    assert not pipeline.tables["lead_to_sla_clock"]
