"""Dispositions applied to the lead's state by the scoring rules: stages, score reset,
recycling, permanent exclusion, returning prospects, data-quality issues."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.disposition.rules import DispositionPolicy
from agents.scoring import apply_event
from tests.unit.agents.scoring.helpers import CORP, DAY, HOUR, T0, crm, director_form, form, of, page, run


def mql_lead():
    state, out = run([page(at=T0), director_form(at=T0 + 1)])
    assert state.stage == "mql" and of(out, "lead_qualified")
    return state


def test_accepted_and_sql_move_the_lead_to_sales_stages():
    state, out = run([crm(status="accepted", at=T0 + HOUR, rep_id="ae-ana")], mql_lead())
    [d] = of(out, "lead_dispositioned")
    assert state.stage == "sal" and (d.record["outcome"], d.record["new_stage"], d.record["rep_id"]) == (
        "accepted",
        "sal",
        "ae-ana",
    )
    state, out = run([crm(status="sql", at=T0 + 2 * HOUR)], state)
    assert state.stage == "sql" and of(out, "lead_dispositioned")[0].record["outcome"] == "sql"


def test_not_now_recycles_with_the_score_reset_and_checkpoints_and_can_qualify_again():
    lead = mql_lead()
    t = T0 + DAY
    state, out = run([crm(status="rejected", disposition="not_now", at=t)], lead)
    [d] = of(out, "lead_dispositioned")
    assert d.record["outcome"] == "recycled" and d.record["new_stage"] == "recycled"
    assert d.record["score_reset"] and d.record["checkpoints"] == [t + 30 * DAY, t + 60 * DAY, t + 90 * DAY]
    assert state.stage == "recycled" and not state.mql and state.signals == {}
    scored = of(out, "lead_scored")[0].record
    assert scored["engagement_score"] == 0 and scored["stage"] == "recycled"
    # Comes back later with new intent: the same lead, MQL number 2.
    state, out = run([page(at=t + 40 * DAY), director_form(at=t + 40 * DAY + 1, kind="chat")], state)
    [mql] = of(out, "lead_qualified")
    assert mql.record["mql_number"] == 2 and state.stage == "mql"


def test_configured_checkpoints_are_used(scoring_model):
    policy = DispositionPolicy(recycle={"no_response": (7 * DAY,)}, recapture={"competitor": (180 * DAY,)})
    state, out = apply_event(
        mql_lead(),
        crm(status="rejected", disposition="competitor", at=T0 + DAY),
        scoring_model,
        now_ms=T0 + DAY,
        dispositions=policy,
    )
    [d] = of(out, "lead_dispositioned")
    assert d.record["outcome"] == "recapture" and d.record["checkpoints"] == [T0 + 181 * DAY]
    assert state.stage == "recycled"


def test_missing_disposition_is_reported_and_not_applied():
    lead = mql_lead()
    state, out = run([crm(status="rejected", at=T0 + HOUR)], lead)
    assert of(out, "lead_dispositioned") == []
    [issue] = of(out, "data_quality_issue")
    assert issue.record["issue_code"] == "rejection_without_disposition" and issue.status == "rejected"
    assert issue.record["source_event_id"] and "@" not in issue.record["detail"]
    assert state.stage == "mql" and state.mql and state.signals == lead.signals


def test_invalid_disposition_passed_through_by_capture_is_reported():
    state, out = run([crm(status="rejected", at=T0 + HOUR, disposition_invalid="'they were rude'")], mql_lead())
    assert [i.record["issue_code"] for i in of(out, "data_quality_issue")] == ["rejection_with_invalid_disposition"]
    assert state.stage == "mql"


def test_bad_data_is_recycled_and_reported():
    state, out = run([crm(status="rejected", disposition="bad_data", at=T0 + HOUR)], mql_lead())
    assert of(out, "lead_dispositioned")[0].record["outcome"] == "recycled"
    [issue] = of(out, "data_quality_issue")
    assert issue.record["issue_code"] == "bad_contact_data" and issue.status is None


def test_permanent_rejection_excludes_and_a_later_form_is_flagged_as_returning():
    for reason in ("not_icp", "already_customer", "bot_or_test"):
        state, out = run([crm(status="rejected", disposition=reason, at=T0 + HOUR)], mql_lead())
        assert of(out, "lead_dispositioned")[0].record["outcome"] == "disqualified"
        assert state.stage == "disqualified" and state.excluded_at_ms == T0 + HOUR
        state, out = run([page(at=T0 + 5 * DAY), director_form(at=T0 + 5 * DAY + 1)], state)
        assert of(out, "lead_qualified") == [] and state.stage == "disqualified"
        [issue] = of(out, "data_quality_issue")
        assert issue.record["issue_code"] == "returning_rejected_prospect" and reason in issue.record["detail"]


def test_conversion_moves_to_opportunity_but_is_published_by_the_account_matcher():
    state, out = run([crm(status="converted", at=T0 + HOUR, account_id="acc-1", account_domain="acme.com")], mql_lead())
    assert state.stage == "opportunity" and of(out, "lead_dispositioned") == []


def test_a_late_older_status_does_not_overwrite_a_newer_stage():
    state, _ = run([crm(status="sql", at=T0 + 2 * HOUR)], mql_lead())
    state, out = run([crm(status="accepted", at=T0 + HOUR)], state)  # arrives late
    assert state.stage == "sql" and of(out, "lead_dispositioned")[0].record["new_stage"] == "sql"


def test_redelivered_disposition_emits_nothing():
    event = crm(status="rejected", disposition="not_now", at=T0 + HOUR)
    state, _ = run([event], mql_lead())
    again, out = run([event], state)
    assert again is state and out == []


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(range(5)))
def test_same_time_rejection_and_buyer_activity_give_one_state_in_any_order(order):
    t = T0 + 10 * DAY
    batch = [
        page(at=t, eid="p"),
        director_form(at=t, eid="f"),
        crm(status="rejected", disposition="not_now", at=t, eid="r"),
        crm(status="accepted", at=t, eid="a"),
        form(CORP, kind="chat", at=t, eid="c"),
    ]
    base = mql_lead()
    state, _ = run([batch[i] for i in order], base)
    reference, _ = run(batch, base)

    def strip(s):
        return {
            k: v
            for k, v in s.to_dict().items()
            if k not in ("recent_event_ids", "mql_number", "qualified_at_ms", "mql_history")
        }

    assert strip(state) == strip(reference)
