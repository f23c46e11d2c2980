"""config/sla.yaml: the shipped defaults, and errors that name the key and the value."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from agents.disposition.rules import DEFAULT_POLICY
from agents.scoring import load_model
from agents.sla.config import load_sla_config, parse_duration_ms, parse_sla_config, permanent_conflicts
from agents.sla.exceptions import SlaConfigError
from tests.repo_config import default_raw

REPO = Path(__file__).resolve().parents[4]
PATH = REPO / "config" / "sla.yaml"

H, D = 3_600_000, 86_400_000


def test_shipped_file_reproduces_the_brief():
    config = load_sla_config(PATH)
    p1 = config.escalation_for("P1")
    assert p1.anchor == "assigned"
    assert [(t.number, t.after_ms, t.role) for t in p1.tiers] == [
        (1, 2 * H, "rep"),
        (2, 4 * H, "manager"),
        (3, 24 * H, "head_of_sales"),
    ]
    assert config.escalation_for("P2").anchor == "due" and len(config.escalation_for("P2").tiers) == 3
    assert config.escalation_for("P3").tiers == ()
    assert config.dispositions.recycle["not_now"] == (30 * D, 60 * D, 90 * D)
    assert config.dispositions.recycle["no_response"] == (30 * D, 60 * D, 90 * D)
    assert "competitor" in config.dispositions.recapture
    assert config.reassignment.enabled is False and config.reassignment.priorities == {"P1"}
    assert config.reassignment.tiers == {0} and config.reassignment.max_per_mql == 1
    assert config.stop_statuses >= {"first_touch", "rejected", "accepted"}
    assert config.bucket_ms == 2000


def test_shipped_file_agrees_with_the_scoring_models_permanent_list():
    model = load_model(REPO / "config" / "scoring-model.yaml")
    assert permanent_conflicts(load_sla_config(PATH).dispositions, model.permanent_dispositions) == []
    assert permanent_conflicts(DEFAULT_POLICY, frozenset({"not_now"})) == [
        "dispositions.recycle.not_now: the scoring model lists 'not_now' as permanent "
        "(dispositions.permanent); a lead cannot be both excluded and recycled"
    ]


def test_contacts_resolve_roles():
    config = load_sla_config(PATH)
    assert config.contact_for("owner", "ae-ana", "na-sales") == "ae-ana"
    assert config.contact_for("rep", "ae-ana", "na-sales") == "ae-ana"
    assert config.contact_for("manager", "ae-ana", "na-sales") == "mgr-marco"
    assert config.contact_for("manager", "x", "unknown-team") is None
    assert config.contact_for("head_of_sales", "x", None) == "hos-hana"


@pytest.mark.parametrize(
    ("text", "ms"), [("90s", 90_000), ("10m", 600_000), ("2h", 2 * H), ("5d", 5 * D), (" 1.5h ", 5_400_000), ("0s", 0)]
)
def test_durations(text, ms):
    assert parse_duration_ms(text) == ms


def mutate(change):
    raw = copy.deepcopy(default_raw("sla.yaml"))
    change(raw)
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r["escalation"]["P1"]["tiers"][0].update(after="soon"),
            "escalation.P1.tiers[0].after: expected a duration such as '90s', '10m', '2h' or '5d', got 'soon'",
        ),
        (
            lambda r: r["escalation"]["P1"]["tiers"][1].update(after="1h"),
            "escalation.P1.tiers[1].after: tiers must be in increasing order, got '1h' after '2h'",
        ),
        (
            lambda r: r["escalation"]["P1"].update({"from": "lunch"}),
            "escalation.P1.from: expected one of the allowed values, got 'lunch'",
        ),
        (
            lambda r: r["escalation"].update(P4={"tiers": []}),
            "escalation.P4: unknown key (expected default, P1, P2 or P3)",
        ),
        (
            lambda r: r["escalation"]["P1"]["tiers"][0].update(role="Head Of Sales"),
            "escalation.P1.tiers[0].role: expected a role name such as 'manager' (lower case, digits, _), got 'Head Of Sales'",
        ),
        (
            lambda r: r["first_touch"].update(stop_statuses=["first_touch", "emailed"]),
            "first_touch.stop_statuses[1]: unknown CRM status 'emailed'",
        ),
        (
            lambda r: r["first_touch"].update(clock_skew_tolerance=5),
            "first_touch.clock_skew_tolerance: expected a string, got 5",
        ),
        (
            lambda r: r["dispositions"]["recycle"].update(maybe_later=["30d"]),
            "dispositions.recycle.maybe_later: unknown disposition 'maybe_later'",
        ),
        (
            lambda r: r["dispositions"]["recapture"].update(not_now=[]),
            "dispositions.recapture.not_now: 'not_now' is also listed under recycle",
        ),
        (
            lambda r: r["dispositions"]["recycle"].update(not_now=["60d", "30d"]),
            "dispositions.recycle.not_now: checkpoints must be increasing, got ['60d', '30d']",
        ),
        (
            lambda r: r["sweep"].update(bucket_seconds=0),
            "sweep.bucket_seconds: input should be greater than or equal to 1, got 0",
        ),
        (lambda r: r.update(escalaton={}), "escalaton: unknown key (value {})"),
        (
            lambda r: r["reassignment"].update(max_per_mql="two"),
            "reassignment.max_per_mql: expected an integer, got 'two'",
        ),
        (
            lambda r: r["reassignment"].update(enabled=True, tiers=[0, 4]),
            "reassignment.tiers[1]: P1 has tiers 1-3 (escalation), so tier 4 can never reassign",
        ),
        (
            lambda r: r["reassignment"].update(enabled=True, priorities=["P3"], tiers=[1]),
            "reassignment.tiers[0]: P3 has no escalation tiers (escalation), so tier 1 can never reassign",
        ),
        (lambda r: r["reassignment"].update(tiers=[2, 2]), "reassignment.tiers[1]: tier 2 is listed twice"),
        (
            lambda r: r["reassignment"].update(tiers=[-1]),
            "reassignment.tiers[0]: expected 0 (the first-touch deadline) or an escalation tier number (1..), got -1",
        ),
        (lambda r: r["reassignment"].update(enabled=True, tiers=[]), "reassignment.tiers: must list at least one tier"),
        (lambda r: r["reassignment"].update(tiers="2"), "reassignment.tiers: expected a list, got '2'"),
        (lambda r: r["contacts"].update(rep={"default": "x"}), "contacts.rep: 'rep' always means the lead's owner"),
        (lambda r: r.pop("version"), "version: required key is missing"),
    ],
)
def test_errors_name_the_key_and_the_value(change, message):
    with pytest.raises(SlaConfigError) as info:
        parse_sla_config(mutate(change), source="sla.yaml")
    assert any(p.startswith(message) for p in info.value.problems), info.value.problems
    assert str(info.value).startswith("invalid sla.yaml: ")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(SlaConfigError, match="cannot read"):
        load_sla_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("escalation: [unclosed")
    with pytest.raises(SlaConfigError, match="not valid YAML"):
        load_sla_config(bad)


def test_minimal_file_uses_the_brief_recycling_and_no_escalation():
    config = parse_sla_config({"version": "min"})
    assert config.dispositions == DEFAULT_POLICY
    assert all(config.escalation_for(p).tiers == () for p in ("P1", "P2", "P3"))
    assert config.bucket_ms is None


def test_default_escalation_applies_to_unlisted_priorities():
    config = parse_sla_config(
        {
            "version": "d",
            "escalation": {"default": {"tiers": [{"after": "1h", "role": "manager"}]}, "P3": {"tiers": []}},
        }
    )
    assert config.escalation_for("P1").tiers[0].after_ms == H
    assert config.escalation_for("P2").tiers[0].role == "manager"
    assert config.escalation_for("P3").tiers == ()
