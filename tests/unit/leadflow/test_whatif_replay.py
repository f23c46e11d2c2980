"""The pure what-if replay (leadflow.whatif.replay) on a small constructed history.

Leads (their scores under config/scoring-model.yaml, MQL above 50, fast track above 80):
- ``near``: a director's demo request, 35 points - an MQL only with a threshold of 30;
- ``low``: an analyst's demo request, 25 points - never an MQL here;
- ``hot``: a director's demo request then pricing, ROI and demo pages - an MQL (P1) either way;
- ``p2``: a content download from a small company, then ROI, demo and email-click activity
  (60-odd points): an MQL as P2 (content_download lead type); fast track from 55 makes it P1;
- ``gone``: a demo request and pricing pages, then an erasure request: never replayed.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from agents.capture.rules import CaptureLimits
from agents.domain.erasure import erasure_request
from agents.domain.identity import lead_id_for_email
from agents.routing.roster import parse_roster
from agents.scoring.model import ScoringModel, parse_model
from leadflow.whatif.replay import InputRecord, ReplayRules, replay
from leadflow.whatif_cli import whatif
from tests.repo_config import default_raw

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000
EMAILS = {
    "near": "near.dir@acme-logistics.com",
    "low": "low.analyst@acme-logistics.com",
    "hot": "hot.dir@acme-logistics.com",
    "p2": "p2.analyst@tinyshop.example",
    "gone": "gone.dir@acme-logistics.com",
}
LEADS = {name: lead_id_for_email(email, None) for name, email in EMAILS.items()}


def _input(subject: str, record: dict[str, Any]) -> InputRecord:
    return InputRecord(subject, record, "json", orjson.dumps(record), int(record["occurred_at"]) + 50)


def _form(name: str, at: int, kind: str = "demo_request", **fields: Any) -> InputRecord:
    record = {
        "event_id": f"form-{name}-{at}",
        "occurred_at": T0 + at,
        "form_id": "f1",
        "form_kind": kind,
        "email": EMAILS[name],
        "job_title": "Director of Operations",
        "company": "Acme Logistics",
        "company_size": 500,
        "industry": "logistics",
        "country": "US",
        "seconds_to_fill": 25.0,
        "consent_email": True,
        **fields,
    }
    return _input("form_submitted", record)


def _page(name: str, at: int, page_type: str, kind: str = "page_view") -> InputRecord:
    record = {
        "event_id": f"web-{name}-{at}",
        "occurred_at": T0 + at,
        "email": EMAILS[name],
        "activity_kind": kind,
        "page_type": page_type if kind == "page_view" else None,
        "url": "https://example.com/x",
    }
    return _input("web_activity", record)


def history() -> list[InputRecord]:
    small = {"job_title": "Analyst", "company": "Tiny Shop", "company_size": 20, "industry": "retail"}
    events = [
        _form("near", 1 * MINUTE),
        _form("low", 2 * MINUTE, job_title="Analyst"),
        _form("hot", 3 * MINUTE),
        _page("hot", 4 * MINUTE, "pricing"),
        _page("hot", 5 * MINUTE, "roi_calculator"),
        _form("p2", 6 * MINUTE, kind="content_download", **small),
        _form("gone", 7 * MINUTE),
        _page("gone", 8 * MINUTE, "pricing"),
        _page("gone", 9 * MINUTE, "pricing"),
    ]
    events += [_page("p2", (10 + i) * MINUTE, kind) for i, kind in enumerate(["roi_calculator", "roi_calculator", "demo", "demo"])]  # fmt: skip
    events.append(_page("p2", 20 * MINUTE, "", kind="email_click"))
    gone = erasure_request(LEADS["gone"], requested_at_ms=T0 + 30 * MINUTE, event_id="erase-gone")
    events.append(_input("crm_status", gone))
    return list(reversed(events))  # arrival order must not matter: the replay sorts by event time


def model(version: str, **thresholds: float) -> ScoringModel:
    raw = copy.deepcopy(default_raw("scoring-model.yaml"))
    raw["version"] = version
    raw["thresholds"].update(thresholds)
    return parse_model(raw)


@pytest.fixture(scope="module")
def setup(routing_config) -> ReplayRules:
    roster = parse_roster(default_raw("roster.yaml"), config=routing_config)
    return ReplayRules(CaptureLimits(max_event_age_days=100 * 365), routing_config, roster)


def run(live: ScoringModel, candidate: ScoringModel, setup: ReplayRules, inputs=None, **kwargs):
    return replay(history() if inputs is None else inputs, live, candidate, setup, from_ms=T0, to_ms=T0 + 3_600_000, **kwargs)  # fmt: skip


def test_a_lower_threshold_gains_exactly_the_leads_between_the_thresholds(scoring_model, setup):
    result = run(scoring_model, model("cand-30", mql=30, mql_rearm_at=30), setup)
    assert result.live.mql_leads == {LEADS["hot"], LEADS["p2"]}
    assert result.gained == {LEADS["near"]}
    assert result.lost == frozenset()
    assert (result.live.mqls, result.candidate.mqls) == (2, 3)
    assert result.candidate.lead_priority[LEADS["near"]] == "P1"  # a demo request
    assert dict(result.candidate.priorities) == {**result.live.priorities, "P1": result.live.priorities["P1"] + 1}
    # The one new MQL is one more assignment for exactly one owner.
    ((owner, (live_n, cand_n)),) = result.rep_deltas().items()
    assert cand_n == live_n + 1
    assert result.to_dict()["mqls_gained"] == 1


def test_the_same_model_changes_nothing(scoring_model, setup):
    result = run(scoring_model, scoring_model, setup)
    assert result.live == result.candidate
    assert result.gained == result.lost == frozenset()
    assert result.priority_changes() == {} and result.rep_deltas() == {}
    assert result.live.mqls == 2


def test_a_lower_fast_track_raises_a_p2_to_p1_and_moves_it_to_an_ae(scoring_model, setup, routing_config):
    result = run(scoring_model, model("cand-ft", fast_track=55), setup)
    assert result.live.lead_priority[LEADS["p2"]] == "P2"
    assert result.candidate.lead_priority[LEADS["p2"]] == "P1"
    assert result.priority_changes() == {("P2", "P1"): 1}
    assert result.gained == result.lost == frozenset()
    deltas = result.rep_deltas()
    assert sorted(b - a for a, b in deltas.values()) == [-1, 1]  # one owner loses the lead, one gains it
    roster = setup.roster
    assert roster is not None
    gainer = next(o for o, (a, b) in deltas.items() if b > a)
    assert roster.reps[gainer].role == routing_config.priorities["P1"].role


def test_an_erased_lead_is_neither_replayed_nor_counted(scoring_model, setup):
    inputs = history()
    result = run(scoring_model, scoring_model, setup, inputs)
    assert LEADS["gone"] not in result.live.mql_leads
    assert result.erased_leads == 1
    assert result.events_replayed == len(inputs) - 4  # its form, two pages and the request itself
    without_request = [i for i in inputs if i.subject != "crm_status"]
    replayed = run(scoring_model, scoring_model, setup, without_request)
    assert LEADS["gone"] in replayed.live.mql_leads  # it would have been an MQL: the erasure is what drops it
    by_lead_erased = run(scoring_model, scoring_model, setup, without_request, erased={LEADS["gone"]})
    assert LEADS["gone"] not in by_lead_erased.live.mql_leads  # a lead_erased record alone is enough
    text = orjson.dumps(result.to_dict()).decode()
    assert "@" not in text and "ld_" not in text  # counts and rep ids only


def test_events_outside_the_window_are_not_replayed(scoring_model, setup):
    result = replay(history(), scoring_model, scoring_model, setup, from_ms=T0 + 5 * MINUTE, to_ms=T0 + 9 * MINUTE)
    assert result.inputs_read == len(history())
    assert result.events_replayed == 2  # hot's ROI page (5 min) and p2's form (6 min); gone's are erased
    assert result.live.mqls == 0


def test_a_bad_candidate_fails_naming_the_key_before_connecting(tmp_path):
    raw = copy.deepcopy(default_raw("scoring-model.yaml"))
    raw["thresholds"]["mql"] = "high"
    bad = tmp_path / "candidate.yaml"
    bad.write_text(yaml.safe_dump(raw))
    # No broker on this port: the model must fail first.
    env = {"LEADFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    result = CliRunner().invoke(whatif, ["--model", str(bad), "--from", "2026-01-01"], env=env)
    assert result.exit_code == 1
    assert "candidate model" in result.output and "thresholds.mql" in result.output
    assert "Kafka" not in result.output
