"""Conversions have one owner: ``decide`` (agents.disposition.rules) says a conversion needs the
account, the disposition agent publishes it once the account is matched, and the scoring agent
only moves the lead to ``opportunity``. Both agents read the same CRM event, as in the worker."""

from __future__ import annotations

import asyncio

import pytest

from agents.disposition import agent as disposition
from agents.disposition.rules import DEFAULT_POLICY, decide
from agents.domain import wire
from agents.domain.events import CRM_STATUSES
from agents.domain.identity import lead_id_for_email
from agents.scoring import agent as scoring
from agents.scoring.state_codec import decode_state
from streams.testing import ManualClock
from tests.unit.agents.disposition.test_agent import HashRedis
from tests.unit.agents.scoring.helpers import T0, crm, director_form, page

EMAIL = "dana@acme.com"


@pytest.mark.parametrize("status", CRM_STATUSES)
def test_only_a_conversion_needs_the_account(scoring_model, status):
    decision = decide(
        status, "not_now" if status == "rejected" else None, permanent=scoring_model.permanent_dispositions
    )
    assert decision.needs_account is (status == "converted")


def test_one_conversion_one_record_from_the_account_matcher_and_the_stage_from_scoring(
    scoring_model, routing_priority, fake_pipeline
):
    pipeline = fake_pipeline(clock=ManualClock(T0 / 1000), redis=HashRedis())
    scoring.register(pipeline, model=scoring_model, dispositions=DEFAULT_POLICY, priority=routing_priority)
    disposition.register(pipeline, model=scoring_model)
    for event in (
        page(EMAIL, at=T0),
        director_form(EMAIL, at=T0 + 1),
        crm(EMAIL, "converted", at=T0 + 2, account_id="acc-1"),
    ):
        asyncio.run(pipeline.deliver("lead_events", wire.encode_lead_event(event), key=event.lead_id.encode()))

    lead = lead_id_for_email(EMAIL)
    [record] = [e.record for e in pipeline.emitted if e.subject == "lead_dispositioned"]
    assert (record["outcome"], record["new_stage"], record["account_id"]) == ("converted", "opportunity", "acc-1")
    assert decode_state(pipeline.tables["lead_to_state"][lead.encode()]).stage == "opportunity"
    assert (
        pipeline.metrics.registry.get_sample_value(
            "leadflow_dispositions_total", {"status": "converted", "disposition": "none"}
        )
        == 1.0
    )
    assert not pipeline.dead_letters
