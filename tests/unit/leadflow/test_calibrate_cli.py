"""`leadflow calibrate` on a CSV history (no Kafka): report, HTML page, written model, refusal."""

from __future__ import annotations

import os
import random
import re

import pytest
from click.testing import CliRunner

from agents.scoring.model import load_model
from leadflow.calibration.cohort import Handoff, Outcome
from leadflow.calibration.sources import HistoryError, read_csv, write_csv
from leadflow.cli import main

pytestmark = pytest.mark.usefixtures("restore_logging")  # CliRunner runs the entry point in-process
DAY = 86_400_000
T0 = 1_767_225_600_000


def _history(n: int, seed: int = 3) -> tuple[list[Handoff], list[Outcome]]:
    """MQLs whose ROI-calculator visit makes an SQL likely; pricing is noise."""
    rng = random.Random(seed)
    handoffs, outcomes = [], []
    for i in range(n):
        points = {"contact_request": 20.0, "senior_title": 10.0}
        if rng.random() < 0.4:
            points["roi_calculator_visit"] = 15.0
        if rng.random() < 0.5:
            points["pricing_page_visit"] = 15.0
        score = sum(points.values()) + rng.uniform(1, 25)
        lead, at = f"ld_{i:020x}", T0 + i * 3_600_000
        handoffs.append(Handoff(lead, f"mql-{i}", at, round(score, 2), points, "2025.1-default", "csv"))
        converted = rng.random() < (0.6 if "roi_calculator_visit" in points else 0.2)
        status = "sql" if converted else "rejected"
        outcomes.append(Outcome(lead, f"crm-{i}", at + DAY, status, None if converted else "not_now"))
    return handoffs, outcomes


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(extra)
    return env


def test_csv_round_trip(tmp_path):
    handoffs, outcomes = _history(20)
    path = tmp_path / "history.csv"
    assert write_csv(path, handoffs, outcomes) == 20
    back = read_csv(path)
    assert [(h.lead_id, h.occurred_at_ms, h.score, dict(h.points)) for h in back.handoffs] == [
        (h.lead_id, h.occurred_at_ms, h.score, dict(h.points)) for h in handoffs
    ]
    assert [(o.lead_id, o.status, o.disposition) for o in back.outcomes] == [
        (o.lead_id, o.status, o.disposition) for o in outcomes
    ]


@pytest.mark.parametrize(
    "text, error",
    [
        ("lead_id,score\nx,1\n", "missing column\\(s\\) handed_off_at"),
        ("lead_id,handed_off_at,score,email\n", "has an email column"),
        ("lead_id,handed_off_at,score\na@b.com,2026-01-01T00:00:00Z,60\n", "line 2: lead_id looks like an email"),
        ("lead_id,handed_off_at,score,outcome\nx,2026-01-01T00:00:00Z,60,won\n", "line 2: outcome 'won'"),
        ("lead_id,handed_off_at,score\nx,yesterday,60\n", "line 2: handed_off_at 'yesterday'"),
    ],
)
def test_csv_errors_name_the_line(tmp_path, text, error):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(HistoryError, match=error):
        read_csv(path)


def test_calibrate_from_csv_writes_report_html_and_model(tmp_path):
    path = tmp_path / "history.csv"
    write_csv(path, *_history(400))
    html, out = tmp_path / "report.html", tmp_path / "calibrated.yaml"
    result = CliRunner().invoke(
        main,
        ["calibrate", "--no-kafka", "--csv", str(path), "--refit", "--html", str(html), "--out", str(out),
         "--version", "2025.1-test", "--from", "2026-01-01", "--to", "2026-02-01"],
        env=_env(LEADFLOW_CALIBRATION_MIN_OUTCOMES="100"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = result.output
    for heading in ("Cohort", "Conversion by score band", "Candidate thresholds", "Lift per signal", "Refitted points"):
        assert heading in text
    assert "2026-01-01 00:00 UTC → 2026-02-01 00:00 UTC" in text
    assert re.search(r"Proposed MQL threshold: score > \d+", text)
    model = load_model(out)
    assert model.version == "2025.1-test"
    assert model.signals["roi_calculator_visit"].points > 15  # the predictive signal gains
    assert model.signals["pricing_page_visit"].points <= 15  # the noise does not
    page = html.read_text()
    assert page.count("<svg") >= 4 and "<script" not in page and "@" not in page
    assert not re.search(r"(src|href)=", page)  # self-contained: nothing fetched from elsewhere


def test_calibrate_refuses_too_few_outcomes(tmp_path):
    path = tmp_path / "history.csv"
    write_csv(path, *_history(50))
    result = CliRunner().invoke(main, ["calibrate", "--no-kafka", "--csv", str(path)], env=_env())
    assert result.exit_code == 1
    assert "too few outcomes to calibrate: 50 MQLs with a decided outcome" in result.output
    assert "the minimum is 200 (LEADFLOW_CALIBRATION_MIN_OUTCOMES)" in result.output
