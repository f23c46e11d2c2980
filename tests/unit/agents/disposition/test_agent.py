"""disposition's agent.py on the fake pipeline (streams.testing) with an in-memory Redis double:
conversions attach to the account already registered for the lead's domain, only form submits
and CRM statuses are read (typed events, no byte sniffing), Redis outages are waited out, and a
bug is dead-lettered as ``processing_error``."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.exceptions

from agents.disposition import agent as disposition
from agents.domain import wire
from agents.domain.identity import lead_id_for_email
from streams.testing import ManualClock
from tests.unit.agents.scoring.helpers import T0, crm, director_form, page

PREFIX = "leadflow"


class HashRedis:
    """The calls disposition makes (HGET, HSETNX, the HDEL-if script) on dicts. ``fail``: errors
    to raise, one per call, before answering."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.fail: list[Exception] = []
        self.calls = 0

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.fail:
            raise self.fail.pop(0)

    async def hget(self, key: str, field: str) -> bytes | None:
        self._maybe_fail()
        value = self.hashes.get(key, {}).get(field)
        return value.encode() if value is not None else None

    async def hsetnx(self, key: str, field: str, value: str) -> int:
        self._maybe_fail()
        entries = self.hashes.setdefault(key, {})
        if field in entries:
            return 0
        entries[field] = value
        return 1

    def register_script(self, lua: str):
        async def hdel_if(*, keys, args):
            self._maybe_fail()
            entries = self.hashes.get(keys[0], {})
            if entries.get(args[0]) == args[1]:
                del entries[args[0]]
                return 1
            return 0

        return hdel_if


@pytest.fixture
def redis_double():
    return HashRedis()


@pytest.fixture
def pipeline(scoring_model, fake_pipeline, redis_double):
    pipeline = fake_pipeline(clock=ManualClock(T0 / 1000), redis=redis_double)
    disposition.register(pipeline, model=scoring_model)
    return pipeline


def deliver(pipeline, event) -> None:
    asyncio.run(pipeline.deliver("lead_events", wire.encode_lead_event(event), key=event.lead_id.encode()))


def test_a_conversion_registers_its_account_and_a_second_one_is_attached_to_it(pipeline, redis_double):
    deliver(pipeline, director_form("dana@acme.com", at=T0))
    deliver(pipeline, crm("dana@acme.com", "converted", at=T0 + 1, account_id="acc-1"))
    assert redis_double.hashes[f"{PREFIX}:accounts:by_domain"] == {"acme.com": "acc-1"}

    deliver(pipeline, director_form("lee@acme.com", at=T0 + 2))
    deliver(pipeline, crm("lee@acme.com", "converted", at=T0 + 3, account_id="acc-2"))

    assert pipeline.subjects() == ["lead_dispositioned", "data_quality_issue", "lead_dispositioned"]
    first, issue, second = (e.record for e in pipeline.emitted)
    assert first["account_id"] == "acc-1" and first["lead_id"] == lead_id_for_email("dana@acme.com")
    assert issue["issue_code"] == "duplicate_account_prevented" and second["account_id"] == "acc-1"
    assert (
        pipeline.metrics.registry.get_sample_value(
            "leadflow_data_quality_issues_total", {"issue_code": "duplicate_account_prevented"}
        )
        == 1.0
    )
    assert not pipeline.dead_letters


def test_other_events_and_commands_on_the_topic_are_skipped_without_touching_redis(pipeline, redis_double):
    deliver(pipeline, page("dana@acme.com", at=T0))  # web activity
    deliver(pipeline, crm("dana@acme.com", "working", at=T0))  # a status that matches no account
    asyncio.run(pipeline.deliver("lead_events", wire.encode(wire.ReviewDue(0, 7)), key=b"sweep"))
    asyncio.run(pipeline.deliver("lead_events", None, key=b"tombstone"))

    assert redis_double.calls == 0 and not pipeline.emitted and not pipeline.dead_letters
    assert not pipeline.tables["lead_to_account_facts"]


def test_the_lead_erasure_removes_the_registry_entries_it_created(pipeline, redis_double):
    deliver(pipeline, director_form("dana@acme.com", at=T0))
    deliver(pipeline, crm("dana@acme.com", "converted", at=T0 + 1, account_id="acc-1"))
    deliver(pipeline, crm("dana@acme.com", "erasure_requested", at=T0 + 2))

    assert redis_double.hashes[f"{PREFIX}:accounts:by_domain"] == {}
    assert lead_id_for_email("dana@acme.com").encode() not in pipeline.tables["lead_to_account_facts"]


def test_redis_outages_are_waited_out_not_dead_lettered(pipeline, redis_double):
    deliver(pipeline, director_form("dana@acme.com", at=T0))
    redis_double.fail = [redis.exceptions.ConnectionError("down")]

    deliver(pipeline, crm("dana@acme.com", "converted", at=T0 + 1, account_id="acc-1"))

    assert pipeline.subjects() == ["lead_dispositioned"] and not pipeline.dead_letters
    assert pipeline.metrics.registry.get_sample_value("leadflow_redis_retries_total") == 1.0


def test_a_processing_error_is_dead_lettered_naming_disposition(pipeline, redis_double, caplog):
    redis_double.fail = [redis.exceptions.ResponseError("WRONGTYPE")]
    event = crm("dana@acme.com", "converted", at=T0, account_id="acc-1", account_domain="acme.com")
    with caplog.at_level(logging.ERROR):
        deliver(pipeline, event)

    (dead,) = pipeline.dead_letters
    assert (dead.reason_code, dead.reason) == ("processing_error", "ResponseError in disposition")
    assert f"disposition failed at {dead.meta.topic}[0]@0" in caplog.text
    assert not pipeline.emitted
