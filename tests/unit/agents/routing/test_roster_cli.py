"""`leadflow roster load --dry-run` validates without Redis; errors name every bad entry."""

from __future__ import annotations

from click.testing import CliRunner

from leadflow.roster_cli import roster
from tests.unit.agents.routing.helpers import REPO


def test_dry_run_validates_the_default_roster(monkeypatch):
    monkeypatch.setenv("LEADFLOW_REDIS_URL", "redis://127.0.0.1:1/0")  # never contacted
    result = CliRunner().invoke(roster, ["load", "--dry-run", str(REPO / "config" / "roster.yaml")])
    assert result.exit_code == 0, result.output
    assert "valid (13 reps, 3 territories, 5 rules, 3 account owners); not loaded (--dry-run)" in result.output


def test_invalid_roster_is_refused_with_every_problem_named(tmp_path):
    bad = tmp_path / "roster.yaml"
    bad.write_text(
        "territories: [{id: na, countries: [US]}]\n"
        "reps:\n"
        "  - {id: a, name: A, role: AE, capacity: 0, territories: [apac]}\n"
        "  - {id: a, name: A2, role: AE, capacity: 5}\n"
        "  - {id: b, name: B, role: manager, active: false}\n"
        "  - {id: nurture-sequence, name: N, role: nurture}\n"
        "rules: [{name: r1, match: {territories: [mars]}, default_owner: b}]\n"
    )
    result = CliRunner().invoke(roster, ["load", str(bad)])
    assert result.exit_code == 1
    for expected in (
        "is invalid (5 problems)",
        "reps[1] (id 'a'): duplicate id (first at reps[0])",
        "reps[0] (id 'a').territories: unknown territory 'apac'",
        "reps[0] (id 'a').capacity: must be greater than 0 (max open leads), got 0",
        "rules[0] (name 'r1').match.territories: unknown territory 'mars'",
        "rules[0] (name 'r1').default_owner: 'b' is inactive",
    ):
        assert expected in result.output, result.output


def test_yaml_errors_and_missing_files_are_readable(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("reps: [\n")
    result = CliRunner().invoke(roster, ["load", "--dry-run", str(broken)])
    assert result.exit_code == 1 and "not valid YAML" in result.output
    result = CliRunner().invoke(roster, ["load", "--dry-run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1 and "cannot read" in result.output
