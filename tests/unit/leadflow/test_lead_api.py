"""The lead API's pure parts: the view of a lead (score decayed to now, breakdown, owner, SLA,
MQL history), its rendering in words, the bearer check, owner resolution, and the settings."""

from __future__ import annotations

import orjson
import pytest
from yarl import URL

from agents.routing.redelivery import RoutingMemo
from agents.sla.rules import Clock, LeadClock, Tier
from leadflow.api.explain import explain, score_sum
from leadflow.api.view import lead_view
from streams.settings import SettingsError, load_settings
from streams.web import NotServed, authorized, owner_url
from tests.unit.agents.scoring.helpers import CORP, DAY, T0, director_form, page, run

NOW = T0 + 3 * DAY


@pytest.fixture
def mql_state(scoring_model):
    """A grade-A director: two pricing visits and a demo request on day 0 -> an MQL."""
    events = [page(page_type="pricing", at=T0), page(page_type="pricing", at=T0 + 1000), director_form(at=T0 + 2000)]
    state, _ = run(events, model=scoring_model)
    return state


def memo() -> RoutingMemo:
    record = {
        "owner_id": "ae-ana",
        "owner_name": "Ana",
        "owner_role": "AE",
        "team": "na-sales",
        "assigned_at": T0 + 3000,
        "rule": "enterprise-na",
        "reason": "P1 in NA: round robin among AEs",
        "is_fallback": False,
        "audit": [{"owner_id": "ae-ben", "decision": "at capacity"}, {"owner_id": "ae-ana", "decision": "chosen"}],
    }
    return RoutingMemo("mql-1", 1, "P1", record, ("ae-ana",), T0 + 3000)


def clock() -> LeadClock:
    tiers = (Tier(0, T0 + 3000 + 600_000, "AE", None), Tier(1, T0 + 3000 + 1_800_000, "manager", "mgr-1"))
    return LeadClock("ld", Clock("as-1", "mql-1", "ae-ana", "na-sales", "P1", T0 + 3000, T0 + 3000, 0, tiers, (0,)))


def test_the_view_decays_the_score_to_now_and_its_breakdown_adds_up(mql_state, scoring_model):
    at_day_0 = lead_view(mql_state, scoring_model, T0 + 2000)
    later = lead_view(mql_state, scoring_model, NOW)
    assert later["score"]["value"] < at_day_0["score"]["value"], "behavioural points decay with time"
    for view in (at_day_0, later):
        assert abs(sum(i["points"] for i in view["score"]["breakdown"]) - view["score"]["value"]) < 0.05
    pricing = next(i for i in later["score"]["breakdown"] if i["signal"] == "pricing_page_visit")
    assert pricing["occurrences"] == 2 and pricing["points_each"] == 15 and pricing["days_since_last"] == 3.0
    assert pricing["counted"] == pytest.approx(2 * 0.5 ** (3 / 90), abs=0.001)
    assert {i["kind"] for i in later["score"]["breakdown"]} == {"fit", "behaviour"}
    assert later["stage"] == "mql" and later["fit"]["grade"] == "A" and later["fit"]["gate_passed"]
    assert later["mql"]["history"] == [{"mql_number": 1, "qualified_at": T0 + 2000, "score": pytest.approx(70, abs=1)}]
    assert CORP not in orjson.dumps(later).decode(), "no email in the answer"


def test_the_view_shows_owner_audit_and_the_open_sla_clock(mql_state, scoring_model):
    view = lead_view(mql_state, scoring_model, T0 + 700_000, memo=memo(), clock=clock())
    owner, sla = view["owner"], view["sla"]
    assert owner["owner_id"] == "ae-ana" and owner["rule"] == "enterprise-na" and len(owner["audit"]) == 2
    assert sla["overdue"] and sla["breached_tiers"] == [0]
    assert sla["next_tier"] == {
        "tier": 1,
        "due_at": T0 + 3000 + 1_800_000,
        "escalate_to_role": "manager",
        "action": "escalate",
    }
    assert lead_view(mql_state, scoring_model, NOW)["owner"] is None


def test_explain_reads_as_a_sum_in_words(mql_state, scoring_model):
    view = lead_view(mql_state, scoring_model, NOW, memo=memo(), clock=clock())
    text = explain(view)
    score = view["score"]["value"]
    assert text.startswith(f"Lead {mql_state.lead_id}: stage mql, score {score:.1f}")
    assert "= company size 5 + icp industry 5 + senior title 10 + contact request 20 x 0.98 decayed = 19.5" in text
    assert "pricing page visit 15 x 1.95 decayed = 29.3 (2 events, last 3 days ago)" in text, text
    assert "Owner: Ana (ae-ana, AE, team na-sales), P1" in text and "ae-ben at capacity" in text
    assert "SLA: first touch" in text and "overdue" in text
    assert "MQL: 1 crossing(s), open now." in text


def test_negative_signals_are_subtracted_in_words():
    breakdown = [
        {"signal": "free_email", "kind": "fit", "points": -10.0, "detail": None},
        {"signal": "contact_request", "kind": "behaviour", "points": 20.0, "points_each": 20.0, "counted": 1.0,
         "occurrences": 1, "last_at": 0},
        {"signal": "inactivity", "kind": "inactivity", "points": -10.0, "detail": "no activity for 30+ days"},
    ]  # fmt: skip
    assert score_sum(breakdown, 2 * DAY) == (
        "-free email 10 + contact request 20 (1 event, 2 days ago) - inactivity 10 (no activity for 30+ days)"
    )
    assert score_sum([], 0) == "0 (no signals)"


@pytest.mark.parametrize(
    ("header", "ok"),
    [("Bearer s3cret", True), ("bearer s3cret", True), ("Bearer wrong", False), ("Basic s3cret", False), ("", False)],
)
def test_the_bearer_token_is_checked(header, ok):
    assert authorized({"Authorization": header}, "s3cret") is ok
    assert authorized({}, None), "no token configured: loopback only, no check"


class _Router:
    def __init__(self, url: str | None) -> None:
        self.url = url

    def key_store(self, table: str, key: bytes) -> URL:
        if self.url is None:
            raise KeyError(table)
        return URL(self.url)


class _App:
    def __init__(self, owner: str | None, *, rebalancing: bool = False) -> None:
        self.router = _Router(owner)
        self.rebalancing = rebalancing
        self.in_recovery = False
        self.conf = type("Conf", (), {"canonical_url": URL("http://10.0.0.1:6066")})()


def test_the_owner_is_this_worker_another_one_or_unknown():
    assert owner_url(_App("http://10.0.0.1:6066"), "t", b"k") is None
    assert owner_url(_App("http://10.0.0.2:6066"), "t", b"k") == URL("http://10.0.0.2:6066")
    with pytest.raises(NotServed):
        owner_url(_App(None), "t", b"k")
    with pytest.raises(NotServed):
        owner_url(_App("http://10.0.0.1:6066", rebalancing=True), "t", b"k")


def test_serving_the_api_beyond_loopback_needs_a_token(tmp_path):
    with pytest.raises(SettingsError, match="LEADFLOW_API_BIND"):
        load_settings(api_bind="0.0.0.0")
    assert load_settings(api_bind="0.0.0.0", api_token="t0ken", api_host="10.1.2.3").api_canonical_url == (
        "http://10.1.2.3:6066"
    )
    assert load_settings(api_bind="0.0.0.0", api_port=0).api_port == 0, "no API: nothing to protect"
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    assert load_settings(api_bind="::", api_token_file=str(token_file)).api_token_value == "from-a-file"
    with pytest.raises(SettingsError, match="LEADFLOW_API_TOKEN"):
        load_settings(api_token="a", api_token_file=str(token_file))
    assert load_settings().api_canonical_url == "http://127.0.0.1:6066"
