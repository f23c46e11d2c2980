"""`leadflow shadow report`: the summary of shadow decisions over a window (pure) and its table."""

from __future__ import annotations

from click.testing import CliRunner
from rich.console import Console

from leadflow.cli import main
from leadflow.shadow_cli import render, summarize

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def decision(event_id: str, direction: str, *, source="paid_search", band="50-60", at=T0) -> dict:
    return {
        "event_id": event_id,
        "direction": direction,
        "first_touch_source": source,
        "score_band": band,
        "decided_at": at,
        "live_model_version": "v1",
        "candidate_model_version": "v2",
    }


RECORDS = [
    decision("a", "gained"),
    decision("a", "gained"),  # redelivered: the same record again
    decision("b", "lost", band="90+", at=T0 + 10),
    decision("c", "gained", source="organic", band="<50", at=T0 + 20),
    decision("d", "lost", at=T0 + 30),
    decision("e", "gained", at=T0 - 1),  # before the window
    decision("f", "gained", at=T0 + 40),  # at its end (exclusive)
]


def test_counts_by_source_and_band_within_the_window_each_decision_once():
    summary = summarize(RECORDS, from_ms=T0, to_ms=T0 + 40)

    assert summary.rows() == [
        ("organic", "<50", 1, 0),
        ("paid_search", "50-60", 1, 1),
        ("paid_search", "90+", 0, 1),  # bands low to high within a source
    ]
    assert (summary.total("gained"), summary.total("lost")) == (2, 2)
    assert (summary.first_ms, summary.last_ms) == (T0, T0 + 30)
    assert summary.skipped == {"redelivered": 1, "outside the window": 2}
    assert summary.versions == {("v1", "v2"): 4}


def test_without_bounds_everything_counts():
    summary = summarize(RECORDS)
    assert summary.total("gained") + summary.total("lost") == 6


def test_the_table_shows_rows_totals_net_and_window():
    console = Console(width=120, record=True)
    console.print(render(summarize(RECORDS, from_ms=T0), from_ms=T0, to_ms=None, topic="leadflow.out.shadow-decisions"))
    text = console.export_text()

    assert "paid_search" in text and "organic" in text and "90+" in text
    assert "total" in text and "+1" in text  # 3 gained - 2 lost
    assert "2026-01-01T00:00:00+00:00" in text and "v1 -> v2 (5)" in text


def test_a_bad_time_is_a_usage_error_before_any_connection():
    result = CliRunner().invoke(main, ["shadow", "report", "--from", "yesterday"])
    assert result.exit_code == 2 and "ISO 8601" in result.output
    result = CliRunner().invoke(
        main, ["shadow", "report", "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z"]
    )
    assert result.exit_code == 2 and "later than --from" in result.output
