"""Priority from the MQL's evidence, per the brief's table; fit multiplies intent."""

from __future__ import annotations

import pytest

from agents.routing.facts import classify, facts_from_mql
from tests.repo_config import default_routing_config
from tests.unit.agents.routing.helpers import legacy, mql


def priority_of(record) -> tuple[str, str]:
    config = default_routing_config()
    decision = classify(facts_from_mql(record, config), config)
    return decision.priority, decision.lead_type


@pytest.mark.parametrize(
    "form_kind,expected",
    [
        ("demo_request", ("P1", "demo_request")),
        ("contact_sales", ("P1", "demo_request")),
        ("chat", ("P1", "chat")),
        ("webinar_registration", ("P2", "webinar")),
        ("content_download", ("P2", "content_download")),
        ("event_badge_scan", ("P2", "event")),
        ("newsletter", ("P3", "newsletter")),
    ],
)
def test_form_kinds_follow_the_sla_table(form_kind, expected):
    assert priority_of(mql(form_kind=form_kind, fit_grade="C", company_size=500)) == expected


def test_pricing_visit_plus_any_form_is_p1():
    record = mql(
        form_kind="content_download",
        signals={"content_download": 8, "pricing_page_visit": 15},
        trigger="pricing_page_visit (pricing page)",
        fit_grade="C",
    )
    assert priority_of(record) == ("P1", "pricing_with_form")


def test_pricing_visit_without_a_form_is_not_p1_by_itself():
    record = mql(
        form_kind=None,
        signals={"pricing_page_visit": 15, "email_click": 10},
        trigger="pricing_page_visit (pricing page)",
        fit_grade="C",
        priority_hint="P2",
    )
    assert priority_of(record) == ("P2", "other")


def test_form_evidence_survives_touches_rolling_off_via_form_signals():
    record = mql(
        form_kind=None,
        touches=["page_view:blog"],
        signals={"newsletter_signup": 3, "pricing_page_visit": 15},
        trigger="pricing_page_visit (pricing page)",
        fit_grade="C",
    )
    assert priority_of(record) == ("P1", "pricing_with_form")


def test_webinar_attended_activity_is_p2():
    record = mql(
        form_kind=None,
        signals={"webinar_attended": 10},
        trigger="webinar_attended (webinar attended)",
        fit_grade="C",
        company_size=50,
    )
    assert priority_of(record) == ("P2", "webinar")


def test_most_urgent_type_wins_newsletter_plus_demo_is_p1():
    record = mql(form_kind="newsletter", signals={"newsletter_signup": 3, "contact_request": 20}, fit_grade="C")
    assert priority_of(record) == ("P1", "demo_request")


@pytest.mark.parametrize(
    "grade,size,expected",
    [
        ("A", 500, "P1"),  # A-grade fit bumps P2 -> P1
        ("C", 5000, "P1"),  # enterprise segment bumps P2 -> P1
        ("B", 500, "P2"),
        ("C", None, "P2"),
    ],
)
def test_fit_multiplies_intent(routing_config, grade, size, expected):
    record = mql(form_kind="webinar_registration", fit_grade=grade, company_size=size)
    decision = classify(facts_from_mql(record, routing_config), routing_config)
    assert decision.priority == expected
    if expected == "P1":
        assert "fit multiplies intent" in decision.reason


def test_fit_does_not_bump_p3():
    assert priority_of(mql(form_kind="newsletter", fit_grade="A", company_size=5000)) == ("P3", "newsletter")


def test_fast_track_is_p1():
    assert priority_of(mql(form_kind="newsletter", fast_track=True, fit_grade="C"))[0] == "P1"


def test_no_type_uses_the_default_type_whatever_the_record_hints():
    """Routing is the one owner of priority: the record's priority_hint is scoring's copy of this
    same policy's answer, never an input to it."""
    base = dict(
        form_kind=None, signals={"blog_visit": 5}, trigger="blog_visit (blog page)", fit_grade="C", company_size=50
    )
    assert priority_of(mql(priority_hint="P3", **base)) == ("P2", "other")
    assert priority_of(mql(priority_hint=None, **base)) == ("P2", "other")


def test_facts_are_read_from_the_v3_fields_never_from_display_text(routing_config):
    facts = facts_from_mql(mql(country="de", company_size=1200, industry="Financial Services"), routing_config)
    assert (facts.country, facts.company_size, facts.industry, facts.facts_known) == (
        "DE",
        1200,
        "financial services",
        True,
    )
    # The handoff's fit-check lines say otherwise: they are for people, and not read.
    record = mql(country="US", company_size=40, industry="Software")
    record["handoff"]["disqualifiers_checked"] = [
        "icp_geography: failed (RU is not served)",
        "icp_company_size: passed (9000 employees)",
    ]
    facts = facts_from_mql(record, routing_config)
    assert (facts.country, facts.company_size, facts.industry) == ("US", 40, "software")


def test_a_record_written_before_v3_has_unknown_firmographics_and_typed_evidence_only(routing_config):
    record = legacy(
        mql(form_kind="webinar_registration", country="US", company_size=5000, industry="Software", fit_grade="C")
    )
    assert "icp_geography: passed (US)" in record["handoff"]["disqualifiers_checked"]  # display text, not read
    facts = facts_from_mql(record, routing_config)
    assert (facts.country, facts.company_size, facts.industry, facts.facts_known) == (None, None, None, False)
    # Lead type from typed fields: the breakdown's signals and the handoff's form:<kind> touches.
    assert (facts.form_kinds, facts.signals) == ({"webinar_registration"}, {"webinar_registration"})
    decision = classify(facts, routing_config)
    assert (decision.priority, decision.lead_type, decision.segment) == ("P2", "webinar", None), (
        "no enterprise bump: size unknown"
    )
    assert (
        classify(
            facts_from_mql(mql(form_kind="webinar_registration", company_size=5000, fit_grade="C"), routing_config),
            routing_config,
        ).priority
        == "P1"
    ), "the control: the v3 record's size makes it enterprise"


def test_account_domain_prefers_the_account_key_then_the_email(routing_config):
    assert facts_from_mql(mql("a@x.com", account_key="acme.com"), routing_config).domain == "acme.com"
    assert facts_from_mql(mql("a@globex.io", account_key="001CRMID"), routing_config).domain == "globex.io"
