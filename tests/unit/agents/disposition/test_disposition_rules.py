"""Disposition table, records and account matching (pure)."""

from __future__ import annotations

import pytest

from agents.disposition.rules import (
    BAD_CONTACT_DATA,
    CONVERSION_WITHOUT_ACCOUNT,
    DEFAULT_POLICY,
    DUPLICATE_ACCOUNT_PREVENTED,
    REJECTION_WITH_INVALID_DISPOSITION,
    REJECTION_WITHOUT_DISPOSITION,
    DispositionPolicy,
    account_issue,
    decide,
    disposition_id,
    disposition_record,
    issue_record,
    match_account,
    normalize_company,
)
from agents.domain.events import CRM_STATUSES, DISPOSITIONS

DAY = 86_400_000
PERMANENT = frozenset({"not_icp", "already_customer", "bot_or_test"})


@pytest.mark.parametrize(
    ("status", "disposition", "outcome", "stage", "reset"),
    [
        ("accepted", None, "accepted", "sal", False),
        ("sql", None, "sql", "sql", False),
        ("converted", None, "converted", "opportunity", False),
        ("closed_won", None, "closed", "opportunity", False),
        ("closed_lost", "competitor", "closed", "opportunity", False),
        ("rejected", "not_now", "recycled", "recycled", True),
        ("rejected", "no_response", "recycled", "recycled", True),
        ("rejected", "bad_data", "recycled", "recycled", True),
        ("rejected", "competitor", "recapture", "recycled", True),
        ("rejected", "not_icp", "disqualified", "disqualified", False),
        ("rejected", "already_customer", "disqualified", "disqualified", False),
        ("rejected", "bot_or_test", "disqualified", "disqualified", False),
        ("first_touch", None, None, None, False),
        ("working", None, None, None, False),
        ("meeting_booked", None, None, None, False),
    ],
)
def test_table(status, disposition, outcome, stage, reset):
    d = decide(status, disposition, permanent=PERMANENT)
    assert (d.outcome, d.stage, d.score_reset) == (outcome, stage, reset)
    assert d.publishes_disposition is (outcome is not None)


def test_every_status_and_reason_has_an_answer():
    for status in CRM_STATUSES:
        for disposition in (*DISPOSITIONS, None):
            decide(status, disposition, permanent=PERMANENT)


def test_every_valid_rejection_is_either_disqualified_or_recycled():
    """Recycle rate: 100 % of rejected leads are disqualified or recycled, whatever the config."""
    empty = DispositionPolicy(recycle={}, recapture={})
    for policy in (DEFAULT_POLICY, empty):
        for disposition in DISPOSITIONS:
            assert decide("rejected", disposition, permanent=PERMANENT, policy=policy).outcome in (
                "disqualified",
                "recycled",
                "recapture",
            )


def test_not_now_and_no_response_get_30_60_90_day_checkpoints():
    for reason in ("not_now", "no_response"):
        d = decide("rejected", reason, permanent=PERMANENT)
        record = disposition_record(
            d, lead_id="ld_1", crm_event_id="crm-1", occurred_at_ms=1000, new_stage="recycled", rep_id="ae-ana"
        )
        assert record["checkpoints"] == [1000 + 30 * DAY, 1000 + 60 * DAY, 1000 + 90 * DAY]
        assert record["score_reset"] is True and record["disposition"] == reason


def test_rejection_without_a_valid_reason_is_a_data_quality_issue_and_not_applied():
    d = decide("rejected", None, permanent=PERMANENT)
    assert d.outcome is None and d.stage is None and not d.score_reset
    assert [code for code, _ in d.issues] == [REJECTION_WITHOUT_DISPOSITION]
    d = decide("rejected", None, permanent=PERMANENT, invalid_disposition="'too pricey'")
    assert [code for code, _ in d.issues] == [REJECTION_WITH_INVALID_DISPOSITION]
    assert "'too pricey'" in d.issues[0][1]


def test_bad_data_is_recycled_and_reported():
    d = decide("rejected", "bad_data", permanent=PERMANENT)
    assert d.outcome == "recycled" and [code for code, _ in d.issues] == [BAD_CONTACT_DATA]


def test_ids_are_deterministic():
    assert disposition_id("ld_1", "e1") == disposition_id("ld_1", "e1") != disposition_id("ld_1", "e2")
    a = issue_record("x", "d", lead_id="ld_1", source_event_id="e1", occurred_at_ms=1)
    b = issue_record("x", "other words", lead_id="ld_1", source_event_id="e1", occurred_at_ms=2)
    assert a["event_id"] == b["event_id"]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Acme, Inc.", "acme"),
        ("ACME inc", "acme"),
        ("acme", "acme"),
        ("The Acme Company", "acme"),
        ("Globex GmbH", "globex"),
        ("Procter & Gamble Co.", "procter and gamble"),
        ("Inc.", None),
        ("", None),
        (None, None),
        ("A", None),
    ],
)
def test_company_names_normalize(name, key):
    assert normalize_company(name) == key


def test_conversion_on_a_new_domain_registers_the_proposed_account():
    m = match_account("acc-1", domain="acme.com", company_key="acme", by_domain=None, by_company=None)
    assert (m.account_id, m.matched_by, m.duplicate_prevented, m.register_domain, m.register_company) == (
        "acc-1",
        None,
        False,
        True,
        True,
    )
    assert account_issue(m, proposed_id="acc-1", domain="acme.com") is None


def test_conversion_on_a_known_domain_attaches_to_the_existing_account():
    m = match_account("acc-2", domain="acme.com", company_key="acme", by_domain="acc-1", by_company="acc-1")
    assert (m.account_id, m.matched_by, m.duplicate_prevented) == ("acc-1", "domain", True)
    code, detail = account_issue(m, proposed_id="acc-2", domain="acme.com")
    assert code == DUPLICATE_ACCOUNT_PREVENTED and "acc-1" in detail and "acc-2" in detail


def test_domain_wins_over_company_name_and_company_name_is_the_fallback():
    assert (
        match_account(None, domain="acme.com", company_key="acme", by_domain="acc-1", by_company="acc-7").account_id
        == "acc-1"
    )
    m = match_account(None, domain="acme.io", company_key="acme", by_domain=None, by_company="acc-7")
    assert (m.account_id, m.matched_by, m.duplicate_prevented, m.register_domain) == ("acc-7", "company", False, True)


def test_replayed_conversion_finds_its_own_account_and_reports_nothing():
    m = match_account("acc-1", domain="acme.com", company_key=None, by_domain="acc-1", by_company=None)
    assert not m.duplicate_prevented and account_issue(m, proposed_id="acc-1", domain="acme.com") is None


def test_conversion_without_any_account_is_reported():
    m = match_account(None, domain=None, company_key=None, by_domain=None, by_company=None)
    assert m.account_id is None
    assert account_issue(m, proposed_id=None, domain=None)[0] == CONVERSION_WITHOUT_ACCOUNT
