"""LeadEvent.to_dict (the hot path's own copy, not dataclasses.asdict): a round trip through
from_dict, and a dict the caller owns."""

from __future__ import annotations

import pytest

from agents.domain.events import FORM_SUBMITTED, LeadEvent


def form_event(*, backfill: bool = False) -> LeadEvent:
    return LeadEvent(
        event_id="ev-1",
        kind=FORM_SUBMITTED,
        lead_id="ld_1",
        visitor_id="v-1",
        occurred_at_ms=1_767_225_600_000,
        received_at_ms=1_767_225_600_250,
        source="avro",
        data={"email": "jane@acme.com", "company_size": 250, "consent_email": True, "seconds_to_fill": 14.5},
        backfill=backfill,
    )


@pytest.mark.parametrize("backfill", [False, True])
def test_to_dict_round_trips_through_from_dict(backfill):
    event = form_event(backfill=backfill)
    raw = event.to_dict()
    assert LeadEvent.from_dict(raw) == event
    assert ("backfill" in raw) is backfill  # live events keep their wire bytes


def test_changing_the_returned_dict_does_not_change_the_event():
    event = form_event()
    raw = event.to_dict()
    raw["event_id"] = "ev-2"
    raw["data"]["email"] = "someone@else.com"
    raw["data"]["merged_from_visitor"] = True
    assert event.event_id == "ev-1"
    assert event.data == {"email": "jane@acme.com", "company_size": 250, "consent_email": True, "seconds_to_fill": 14.5}
    assert event.to_dict()["data"] is not event.to_dict()["data"]
