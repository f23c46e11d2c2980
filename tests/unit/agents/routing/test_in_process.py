"""The in-process fast path (``LEADFLOW_ROUTING_IN_PROCESS``): an MQL is routed in the scoring
agent that emits it; the copy the routing agent reads back from the topic is skipped; whatever
the fast path cannot do now (Redis away or slow, the lead busy, a bug) is left to the routing
agent, which routes it from the topic. On the fake pipeline with ``hand_offs=True`` (the
in-process calls on) and the in-memory roster store (agent_doubles.py)."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
import redis.exceptions

from agents.disposition.rules import DEFAULT_POLICY
from agents.routing import agent as routing
from agents.scoring import agent as scoring
from streams.settings import Settings
from streams.testing import ManualClock
from tests.unit.agents.routing.agent_doubles import LEAD, MemoryRosterStore, assigned, qualify
from tests.unit.agents.scoring.helpers import T0

ALL_PARTITIONS = (0, 1, 2, 3)


@pytest.fixture
def make_pipeline(scoring_model, routing_priority, routing_config, fake_pipeline, stores):
    def make(**settings):
        pipeline = fake_pipeline(
            clock=ManualClock(T0 / 1000),
            redis=object(),
            hand_offs=True,
            partitions=ALL_PARTITIONS,
            settings=Settings(topic_partitions=len(ALL_PARTITIONS), **settings),
        )
        scoring.register(pipeline, model=scoring_model, dispositions=DEFAULT_POLICY, priority=routing_priority)
        routing.register(pipeline, config=routing_config)
        return pipeline

    return make


def outcome(pipeline, name: str) -> float | None:
    return pipeline.metrics.registry.get_sample_value("leadflow_mqls_routed_in_process_total", {"outcome": name})


def duplicates(pipeline) -> float:
    value = pipeline.metrics.registry.get_sample_value("leadflow_duplicates_skipped_total", {"stage": "route"})
    return value or 0.0  # the series is born at the first skip on the fake pipeline


def test_an_mql_is_assigned_by_the_agent_that_emits_it(make_pipeline):
    pipeline = make_pipeline()
    qualify(pipeline)  # no pump: nothing travels through the MQL topic

    (record,) = assigned(pipeline)
    mql = next(e.record for e in pipeline.emitted if e.subject == "lead_qualified")
    assert record["mql_event_id"] == mql["event_id"]
    assert pipeline.subjects().index("lead_assigned") > pipeline.subjects().index("lead_qualified")
    memo = orjson.loads(pipeline.tables["lead_to_assignment"][LEAD.encode()])
    assert memo["in_process"] is True and memo["mql_event_id"] == mql["event_id"]
    assert (outcome(pipeline, "routed"), outcome(pipeline, "deferred")) == (1.0, 0.0)
    # The MQL still goes to the topic, for SDR tools and for the routing agent.
    assert len(pipeline.channel("mqls").sent) == 1


def test_the_copy_read_back_from_the_topic_is_skipped_without_counting_a_duplicate(make_pipeline):
    pipeline = make_pipeline()
    qualify(pipeline)

    asyncio.run(pipeline.pump("mqls"))

    assert len(assigned(pipeline)) == 1
    assert duplicates(pipeline) == 0.0
    # A second copy of the same MQL handed in-process again is a redelivery, and counted.
    (sent,) = pipeline.channel("mqls").sent
    asyncio.run(pipeline.followers["mqls"][0](pipeline_meta(pipeline, sent)))
    assert len(assigned(pipeline)) == 1 and duplicates(pipeline) == 1.0


def pipeline_meta(pipeline, sent):
    from streams.app import partition_for
    from streams.consume import Meta

    partition = partition_for(sent.key, pipeline.settings.topic_partitions)
    return Meta(topic=pipeline.topic_names.mqls, partition=partition, offset=0, key=sent.key, value=sent.value)


def test_with_the_setting_off_only_the_routing_agent_routes(make_pipeline):
    pipeline = make_pipeline(routing_in_process=False)
    qualify(pipeline)
    assert not assigned(pipeline) and outcome(pipeline, "routed") == 0.0

    asyncio.run(pipeline.pump("mqls"))
    assert len(assigned(pipeline)) == 1
    assert "in_process" not in orjson.loads(pipeline.tables["lead_to_assignment"][LEAD.encode()])


def test_redis_away_leaves_the_mql_to_the_routing_agent_and_the_fast_path_rests(make_pipeline, monkeypatch, caplog):
    pipeline = make_pipeline()
    monkeypatch.setattr(MemoryRosterStore, "fail", redis.exceptions.ConnectionError("Connection refused"))

    with caplog.at_level(logging.WARNING):
        qualify(pipeline)

    assert not assigned(pipeline) and LEAD.encode() not in pipeline.tables["lead_to_assignment"]
    assert (outcome(pipeline, "routed"), outcome(pipeline, "deferred")) == (0.0, 1.0)
    assert "Redis did not answer the in-process routing (ConnectionError)" in caplog.text
    assert not pipeline.dead_letters  # scoring went on: the lead was scored and its MQL sent
    assert "lead_qualified" in pipeline.subjects()

    monkeypatch.setattr(MemoryRosterStore, "fail", None)  # Redis is back: the routing agent reads the MQL
    asyncio.run(pipeline.pump("mqls"))
    (record,) = assigned(pipeline)
    assert "in_process" not in orjson.loads(pipeline.tables["lead_to_assignment"][LEAD.encode()])

    # Resting: for LEADFLOW_REDIS_RETRY_MAX_S the fast path does not try (no Redis call at all).
    (sent,) = pipeline.channel("mqls").sent
    del pipeline.tables["lead_to_assignment"][LEAD.encode()]
    asyncio.run(pipeline.followers["mqls"][0](pipeline_meta(pipeline, sent)))
    assert outcome(pipeline, "deferred") == 2.0 and len(assigned(pipeline)) == 1


def test_a_slow_redis_is_given_up_on_after_the_timeout(make_pipeline, monkeypatch):
    pipeline = make_pipeline(routing_in_process_redis_timeout_s=0.01)
    calls = []

    async def slow_snapshot(self):
        calls.append(1)
        await asyncio.sleep(1)

    monkeypatch.setattr(MemoryRosterStore, "snapshot", slow_snapshot)

    qualify(pipeline)

    assert calls and not assigned(pipeline)
    assert outcome(pipeline, "deferred") == 1.0


def test_a_lead_the_routing_agent_holds_is_left_to_it(make_pipeline):
    pipeline = make_pipeline()
    qualify(pipeline)
    pipeline_b = make_pipeline()  # the same MQL on a fresh worker, its routing agent busy with the lead
    qualify(pipeline_b)
    (sent,) = pipeline_b.channel("mqls").sent
    del pipeline_b.tables["lead_to_assignment"][LEAD.encode()]
    listener = pipeline_b.followers["mqls"][0]

    async def while_held() -> None:
        release = asyncio.Event()
        entered = asyncio.Event()

        async def routing_agent() -> None:
            locks = _locks_of(listener)
            async with locks.hold(LEAD):
                entered.set()
                await release.wait()

        task = asyncio.create_task(routing_agent())
        await entered.wait()
        await listener(pipeline_meta(pipeline_b, sent))
        release.set()
        await task

    asyncio.run(while_held())
    assert outcome(pipeline_b, "deferred") == 1.0 and len(assigned(pipeline_b)) == 1


def _locks_of(listener):
    """The KeyedLocks the routing agent and its fast path share (a closure cell of the listener's
    functions)."""
    import inspect

    from streams.keyed_lock import KeyedLocks

    seen, todo = set(), [listener]
    while todo:
        fn = todo.pop()
        for cell in fn.__closure__ or ():
            value = cell.cell_contents
            if isinstance(value, KeyedLocks):
                return value
            if inspect.isfunction(value) and id(value) not in seen:
                seen.add(id(value))
                todo.append(value)
    raise AssertionError("the listener holds no KeyedLocks")


def test_a_bug_in_the_fast_path_is_logged_and_left_to_the_routing_agent(make_pipeline, monkeypatch, caplog):
    pipeline = make_pipeline()
    monkeypatch.setattr(MemoryRosterStore, "fail", RuntimeError("bug in the store"))

    with caplog.at_level(logging.ERROR):
        qualify(pipeline)

    assert "in-process routing failed; the routing agent routes it" in caplog.text
    assert outcome(pipeline, "deferred") == 1.0 and not assigned(pipeline) and not pipeline.dead_letters


def test_an_unusable_roster_is_left_to_the_routing_agent_to_park_or_fall_back(make_pipeline, monkeypatch):
    pipeline = make_pipeline()
    from agents.routing.roster_store import RosterDataError

    async def unreadable(self):
        raise RosterDataError("roster document is not JSON", "roster_unreadable")

    monkeypatch.setattr(MemoryRosterStore, "snapshot", unreadable)
    qualify(pipeline)

    assert outcome(pipeline, "deferred") == 1.0 and not assigned(pipeline)
    assert not pipeline.tables["lead_to_assignment"]  # nothing parked by the fast path
    asyncio.run(pipeline.pump("mqls"))  # the routing agent applies roster_error (default: the fallback owner)
    (record,) = assigned(pipeline)
    assert record["is_fallback"] is True
