"""The scoring model file: defaults reproduce the brief, errors name the key and the value."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from agents.scoring import ModelError, load_model, parse_model
from tests.repo_config import default_raw


def _broken(mutate) -> str:
    raw = copy.deepcopy(default_raw("scoring-model.yaml"))
    mutate(raw)
    with pytest.raises(ModelError) as caught:
        parse_model(raw)
    return str(caught.value)


def test_default_model_reproduces_the_brief_table_and_thresholds(scoring_model):
    m = scoring_model
    assert (m.thresholds.mql, m.thresholds.fast_track, m.decay.half_life_days) == (50, 80, 90)
    assert (m.inactivity.after_days, m.inactivity.points) == (30, -10)
    assert m.fit_signals.senior_title.points == 10 and m.seniority.senior_from == "director"
    assert (m.fit_signals.company_size.points, m.fit_signals.company_size.above) == (5, 100)
    assert m.fit_signals.competitor_domain.points == -20
    s = m.signals
    assert s["pricing_page_visit"].points == 15
    assert s["contact_request"].points == 20
    assert all(m.event_signals.form_kinds[k] == "contact_request" for k in ("demo_request", "contact_sales"))
    assert (s["email_open"].points, s["email_open"].every) == (8, 3)
    assert s["email_click"].points == 10 and s["unsubscribe"].points == -15
    assert 8 <= len(m.attribution.channels) <= 15


def test_model_is_frozen(scoring_model):
    with pytest.raises(ValidationError, match="frozen"):
        scoring_model.version = "changed"  # type: ignore[misc]


def test_wrong_type_names_key_and_value():
    message = _broken(lambda r: r["signals"]["pricing_page_visit"].update(points="abc"))
    assert "signals.pricing_page_visit.points: expected a number, got 'abc'" in message


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["thresholds"].update(mql_threshold=50), "thresholds.mql_threshold: unknown key (value 50)"),
        (lambda r: r["decay"].pop("half_life_days"), "decay.half_life_days: required key is missing"),
        (lambda r: r["decay"].update(half_life_days=0), "decay.half_life_days: input should be greater than 0, got 0"),
        (lambda r: r["fit_gate"].update(min_grade="Z"), "fit_gate.min_grade:"),
        (
            lambda r: r["thresholds"].update(fast_track=40),
            "thresholds.fast_track: expected >= thresholds.mql (50), got 40",
        ),
        (
            lambda r: r["signals"]["blog_visit"].update(cap=2),
            "signals.blog_visit.cap: expected the sign of points (5) and at least its size, got 2",
        ),
        (lambda r: r["signals"]["unsubscribe"].update(cap=15), "signals.unsubscribe.cap:"),
        (
            lambda r: r["event_signals"]["page_types"].update(pricing="pricing_visit"),
            "event_signals.page_types.pricing: unknown signal 'pricing_visit'",
        ),
        (
            lambda r: r["event_signals"]["form_kinds"].update(fax="contact_request"),
            "event_signals.form_kinds.fax: unknown form kind",
        ),
        (lambda r: r["icp"].update(min_seniority="overlord"), "icp.min_seniority: unknown seniority level 'overlord'"),
        (lambda r: r["icp"]["countries"].append(False), "icp.countries[20]: expected a string, got False"),
        (
            lambda r: r["attribution"]["medium_rules"][0].update(channel="tv"),
            "attribution.medium_rules[0].channel: not in attribution.channels, got 'tv'",
        ),
        (
            lambda r: r["attribution"]["source_aliases"]["partner"].append("google"),
            "'google' is already an alias of 'organic_search'",
        ),
        (
            lambda r: r["handoff"]["openers"].update(default="Hi {frist_name}"),
            "handoff.openers.default: unknown placeholder {frist_name}",
        ),
        (
            lambda r: r["dispositions"].update(permanent=["maybe"]),
            "dispositions.permanent: unknown disposition 'maybe'",
        ),
        (
            lambda r: r["domains"]["free_email"].append("not a domain"),
            "domains.free_email: expected a domain like example.com, got 'not a domain'",
        ),
        (lambda r: r.update(version=""), "version:"),
    ],
)
def test_invalid_values_are_reported_with_key_and_value(mutate, expected):
    assert expected in _broken(mutate)


def test_all_problems_are_reported_at_once():
    def two_problems(r):
        r["signals"]["blog_visit"]["cap"] = 2
        r["handoff"]["openers"]["nope"] = "Hi"  # (was priority_hints.by_signal, a removed section)

    message = _broken(two_problems)
    assert "signals.blog_visit.cap" in message and "handoff.openers.nope: unknown signal" in message


def test_the_removed_priority_hints_section_fails_at_load_naming_it():
    """The priority is routing's (lead_qualified v3): a model file that still sets scoring's own
    hints fails at start with what to do, rather than being half-applied."""
    message = _broken(lambda r: r.update(priority_hints={"default": "P2"}))
    assert "priority_hints: removed, delete it" in message
    assert "config/routing.yaml" in message and "lead_types" in message


def test_load_model_reports_yaml_problems_with_the_file(tmp_path):
    bad = tmp_path / "model.yaml"
    bad.write_text("version: x\nversion: y\n")
    with pytest.raises(ModelError, match="duplicate key 'version'"):
        load_model(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(ModelError, match="expected a mapping at the top level"):
        load_model(bad)
    with pytest.raises(ModelError, match="cannot read"):
        load_model(tmp_path / "missing.yaml")


def test_a_recalibrated_model_applies_to_existing_state_without_replay(scoring_raw):
    from agents.scoring import evaluate
    from tests.unit.agents.scoring.helpers import T0, page, run

    state, _ = run([page(at=T0)])
    raw = copy.deepcopy(scoring_raw)
    raw["version"] = "2025.2-calibrated"
    raw["signals"]["pricing_page_visit"]["points"] = 25
    assert evaluate(state, parse_model(raw), T0).engagement_score == pytest.approx(25)
