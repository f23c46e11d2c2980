"""Joining MQL handoffs with CRM outcomes, and the refusal below the minimum."""

from __future__ import annotations

import pytest

from agents.scoring.model import load_model
from leadflow.calibration.analysis import Options, TooFewOutcomes, calibrate, check_enough
from leadflow.calibration.cohort import Handoff, Outcome, build_cohort
from streams.settings import REPO_ROOT, Settings

DAY = 86_400_000


def mql(lead: str, n: int, at: int, score: float = 60.0, **points: float) -> Handoff:
    return Handoff(lead, f"{lead}-mql{n}", at, score, points or {"pricing_page_visit": 15.0}, "v1")


def crm(lead: str, at: int, status: str, disposition: str | None = None) -> Outcome:
    return Outcome(lead, f"{lead}-{status}-{at}", at, status, disposition)


def test_an_outcome_belongs_to_the_latest_mql_before_it():
    handoffs = [mql("a", 1, 0), mql("a", 2, 10 * DAY), mql("b", 1, 0)]
    outcomes = [
        crm("a", 2 * DAY, "rejected", "not_now"),  # ends the first MQL; the lead is recycled
        crm("a", 12 * DAY, "accepted"),
        crm("a", 13 * DAY, "sql"),  # converts the second one
        crm("b", DAY, "first_touch"),  # b: still open
    ]
    cohort = build_cohort(handoffs, outcomes, target="sql")
    labels = {r.handoff.mql_id: r.converted for r in cohort.rows}
    assert labels == {"a-mql1": False, "a-mql2": True}
    assert (cohort.handoffs, cohort.decided, cohort.converted, cohort.open) == (3, 2, 1, 1)
    assert cohort.dispositions == {"not_now": 1}


@pytest.mark.parametrize(
    "statuses, target, expected",
    [
        (["sql", "closed_lost"], "sql", True),  # reached SQL: converted for the MQL -> SQL target
        (["sql", "closed_lost"], "won", False),
        (["sql"], "won", None),  # still open for "won"
        (["converted"], "opportunity", True),
        (["rejected"], "opportunity", False),  # a rejection without a disposition still counts
        (["closed_won"], "sql", True),
        (["accepted", "meeting_booked"], "sql", None),
    ],
)
def test_targets(statuses, target, expected):
    outcomes = [crm("a", (i + 1) * DAY, s) for i, s in enumerate(statuses)]
    cohort = build_cohort([mql("a", 1, 0)], outcomes, target=target)
    assert (cohort.rows[0].converted if cohort.rows else None) == expected


def test_duplicates_count_once_and_erased_leads_are_dropped():
    outcomes = [
        crm("a", DAY, "sql"),
        crm("a", DAY, "sql"),
        crm("e", DAY, "sql"),
        crm("e", 2 * DAY, "erasure_requested"),
    ]
    cohort = build_cohort([mql("a", 1, 0), mql("a", 1, 0), mql("e", 1, 0)], outcomes)
    assert (cohort.handoffs, cohort.decided, cohort.erased_leads) == (1, 1, 1)


def test_window_and_outcomes_without_an_mql():
    handoffs = [mql("a", 1, 0), mql("b", 1, 5 * DAY), mql("c", 1, 9 * DAY)]
    outcomes = [crm("a", DAY, "sql"), crm("b", 6 * DAY, "rejected", "not_icp"), crm("z", DAY, "sql")]
    cohort = build_cohort(handoffs, outcomes, from_ms=DAY, to_ms=9 * DAY)
    assert [r.handoff.lead_id for r in cohort.rows] == ["b"]
    assert (cohort.window_from_ms, cohort.window_to_ms, cohort.handoffs) == (DAY, 9 * DAY, 1)
    assert cohort.outcomes_without_mql == 1  # z converted without any MQL: recall's blind spot


def test_refuses_below_the_minimum_with_the_setting_named():
    handoffs = [mql(f"l{i}", 1, i) for i in range(30)]
    outcomes = [crm(f"l{i}", i + DAY, "sql" if i % 3 == 0 else "rejected") for i in range(30)]
    cohort = build_cohort(handoffs, outcomes)
    model = load_model(REPO_ROOT / "config" / "scoring-model.yaml")
    minimum = Settings.model_fields["calibration_min_outcomes"].default
    assert minimum == 200  # the documented default (docs/deploying.md, docs/model-tuning.md)
    with pytest.raises(
        TooFewOutcomes, match=r"30 MQLs with a decided outcome .* minimum is 200 \(LEADFLOW_CALIBRATION_MIN_OUTCOMES\)"
    ):
        calibrate(cohort, model, Options(min_outcomes=minimum))
    assert calibrate(cohort, model, Options(min_outcomes=30)).cohort.decided == 30


def test_refuses_when_every_outcome_is_the_same():
    cohort = build_cohort([mql(f"l{i}", 1, i) for i in range(40)], [crm(f"l{i}", i + DAY, "sql") for i in range(40)])
    with pytest.raises(TooFewOutcomes, match="all of the 40 decided MQLs converted"):
        check_enough(cohort, 10)
