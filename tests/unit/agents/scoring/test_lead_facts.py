"""One owner of priority: scoring's priority_hint and lead_type are routing's policy applied to
the facts the LeadQualified carries (lead_qualified v3), never a second set of rules."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.routing.config import parse_routing_config, read_yaml
from agents.routing.exceptions import RoutingConfigError
from agents.routing.facts import classify, facts_from_mql
from agents.routing.priority import priority_policy
from agents.scoring import apply_event
from tests.repo_config import default_scoring_model
from tests.unit.agents.scoring.helpers import CORP, HOUR, REPO, T0, activity, form, of, run
from tests.unit.agents.scoring.test_scoring_properties import lead_events

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WEBINAR_LEAD = dict(job_title="Marketing Manager", company_size=500, industry="Retail", country="US")


def _routing(**changes):
    raw = read_yaml(REPO / "config" / "routing.yaml", RoutingConfigError)
    raw.update(changes)
    return parse_routing_config(raw)


def _webinar_mql(priority):
    """A grade-B webinar lead that qualifies (58 points, no lead type above P2 by default)."""
    events = [
        form(CORP, kind="webinar_registration", at=T0, eid="w-reg", **WEBINAR_LEAD),
        activity(CORP, "webinar_attended", at=T0 + 1, eid="w-1"),
        activity(CORP, "webinar_attended", at=T0 + 2, eid="w-2"),
        form(CORP, kind="event_badge_scan", at=T0 + 3, eid="b-1"),
        form(CORP, kind="event_badge_scan", at=T0 + 4, eid="b-2"),
        activity(CORP, "content_download", at=T0 + 5, eid="dl-1", content_title="Events playbook"),
    ]
    state, outputs = None, []
    for event in events:
        state, out = apply_event(state, event, default_scoring_model(), now_ms=event.occurred_at_ms, priority=priority)
        outputs.extend(out)
    return state, [o.record for o in of(outputs, "lead_qualified")]


@PROPERTY_SETTINGS
@given(st.lists(lead_events(positive_only=True), min_size=1, max_size=12))
def test_every_mql_carries_routings_own_decision_on_its_facts(routing_config, events):
    _, outputs = run(sorted(events, key=lambda e: e.occurred_at_ms))
    for out in of(outputs, "lead_qualified"):
        record = out.record
        decision = classify(facts_from_mql(record, routing_config), routing_config)
        assert (record["priority_hint"], record["lead_type"]) == (decision.priority, decision.lead_type)
        assert record["firmographics"]["segment"] == decision.segment
        assert record["firmographics"]["fit_grade"] == record["fit_grade"]


def test_the_hint_follows_routings_configuration(routing_config):
    _, (default,) = _webinar_mql(priority_policy(routing_config))
    assert (default["priority_hint"], default["lead_type"]) == ("P2", "webinar")
    lead_types = [
        {**t, "priority": "P1"} if t["name"] == "webinar" else t
        for t in read_yaml(REPO / "config" / "routing.yaml", RoutingConfigError)["lead_types"]
    ]
    _, (changed,) = _webinar_mql(priority_policy(_routing(lead_types=lead_types)))
    assert (changed["priority_hint"], changed["lead_type"]) == ("P1", "webinar")
    no_fit_bump = _routing(fit_bump=None, segments=[{"name": "big", "min_company_size": 100}], segment_sla_overrides={})
    _, (segmented,) = _webinar_mql(priority_policy(no_fit_bump))
    assert segmented["firmographics"]["segment"] == "big"


def test_without_routings_policy_the_mql_is_sent_without_a_priority_and_never_upgraded(scoring_model, routing_config):
    state, (mql,) = _webinar_mql(None)
    assert (mql["priority_hint"], mql["lead_type"], mql["firmographics"]["segment"]) == (None, None, None)
    assert mql["firmographics"]["country"] == "US" and mql["form_kinds"] == ["event_badge_scan"]  # the 5 newest touches
    assert state.stage == "mql" and state.sent_priority is None
    _, out = apply_event(
        state, form(CORP, kind="demo_request", at=T0 + HOUR, eid="demo"), scoring_model, now_ms=T0 + HOUR
    )
    assert of(out, "lead_qualified") == []
    _, out = apply_event(
        state,
        form(CORP, kind="demo_request", at=T0 + HOUR, eid="demo"),
        scoring_model,
        now_ms=T0 + HOUR,
        priority=priority_policy(routing_config),
    )
    assert [o.record["priority_hint"] for o in of(out, "lead_qualified")] == [], "no sent priority to raise"
