"""Issue 14's goals in `leadflow bench`: evaluated in both directions (met, not met, not
measured), their figures taken from a run's results, and the --goal-rates option."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from leadflow.bench import run as bench_run
from leadflow.bench.goals import Goal, evaluate_goals, goal_rows
from leadflow.bench.options import parse_rates
from leadflow.bench.results import PIPELINE_GOALS, add_goals, goal_latency_rows
from leadflow.cli import main

AT_LEAST = Goal("events_per_s", "throughput", 2500.0, "events/s", ">=")
AT_MOST = Goal("cpu_us", "CPU per event", 400.0, "µs")


@pytest.mark.parametrize(
    ("goal", "value", "met"),
    [
        (AT_LEAST, 2500.0, True),
        (AT_LEAST, 2499.9, False),
        (AT_LEAST, None, None),
        (AT_MOST, 400.0, True),
        (AT_MOST, 400.1, False),
        (AT_MOST, None, None),
    ],
)
def test_a_goal_is_met_up_to_its_limit_in_its_direction_and_unmeasured_is_neither(goal, value, met):
    [evaluated] = evaluate_goals([goal], {goal.figure: value})
    assert evaluated["met"] is met
    assert (evaluated["figure"], evaluated["limit"], evaluated["measured"]) == (goal.figure, goal.limit, value)
    [(label, limit, measured, verdict)] = goal_rows([goal], [evaluated])
    assert limit.startswith(goal.direction)
    assert verdict == {True: "met", False: "NOT MET", None: "n/a"}[met]
    assert (measured == "not measured") is (value is None)


def _latency_phase(rate: float, p99: float) -> dict:
    block = {"count": 40, "p50_ms": 10.0, "p95_ms": 30.0, "p99_ms": p99, "max_ms": p99}
    return {
        "rate_events_per_s": rate,
        "achieved_rate": rate - 1,
        "event_to_scored": block,
        "event_to_assignment": block,
        "missing_outputs": {"lead_scored": 3, "assignment": 1},
    }


def _results(**extra) -> dict:
    return {
        "pipeline": {"events": 10_000, "events_per_s": 3000.0, "worker_cpu_s": 5.0},
        "faust_passthrough": {"faust": {"events_per_s": 6000.0}},
        "goal_latency": [_latency_phase(200.0, 49.0), _latency_phase(1000.0, 975.0)],
        **extra,
    }


def test_the_pipeline_goals_read_their_figures_from_the_run():
    results = _results()
    add_goals(results)
    goals = {g["figure"]: g for g in results["goals"]}
    assert [g["figure"] for g in results["goals"]] == [g.figure for g in PIPELINE_GOALS]
    assert goals["pipeline_events_per_s"]["met"] is True
    assert goals["pipeline_over_faust_pct"]["measured"] == 50.0 and goals["pipeline_over_faust_pct"]["met"] is True
    assert goals["worker_cpu_us_per_event"]["measured"] == 500.0 and goals["worker_cpu_us_per_event"]["met"] is False
    assert goals["p99_event_to_assignment_ms_at_200"]["met"] is True
    assert goals["p99_event_to_assignment_ms_at_1000"]["measured"] == 975.0
    assert goals["p99_event_to_assignment_ms_at_1000"]["met"] is False
    rows = goal_latency_rows(results)
    assert len(rows) == 4 and "1 missing" in rows[1][1] and "achieved 999" in rows[3][0]


def test_a_phase_whose_outputs_did_not_all_come_is_held_to_the_wait_not_to_the_ones_that_came():
    """A saturated worker: 10 of 50 MQLs never assigned within the 30 s wait. Their delay is
    over 30 s, so the p99 is at least that; a p99 of the 40 that came would flatter it."""
    saturated = {**_latency_phase(1000.0, 60.0), "output_wait_s": 30.0}
    saturated["missing_outputs"] = {"lead_scored": 0, "assignment": 10}
    results = _results(goal_latency=[saturated])
    add_goals(results)
    goal = {g["figure"]: g for g in results["goals"]}["p99_event_to_assignment_ms_at_1000"]
    assert goal["measured"] == 30_000.0 and goal["met"] is False


def test_goals_not_measured_in_a_run_say_so():
    """--no-faust-floor, no worker CPU figure, goal phases at other rates than the goals'."""
    results = _results(goal_latency=[_latency_phase(50.0, 20.0)])
    del results["faust_passthrough"]
    results["pipeline"]["worker_cpu_s"] = 0.0
    add_goals(results)
    goals = {g["figure"]: g for g in results["goals"]}
    for figure in (
        "pipeline_over_faust_pct",
        "worker_cpu_us_per_event",
        "p99_event_to_assignment_ms_at_200",
        "p99_event_to_assignment_ms_at_1000",
    ):
        assert goals[figure]["measured"] is None and goals[figure]["met"] is None
    assert results["goal_figures"]["p99_event_to_assignment_ms_at_50"] == 20.0


def test_rates_parse_from_a_comma_separated_list():
    assert parse_rates("200,1000") == (200.0, 1000.0)
    assert parse_rates(" 50 , 100 ") == (50.0, 100.0)
    assert parse_rates("") == ()
    for bad in ("fast", "200,", "0", "-5", "nan", "inf"):
        with pytest.raises(ValueError):
            parse_rates(bad)


class _Stopped(Exception):
    pass


@pytest.mark.usefixtures("restore_logging")  # CliRunner runs the entry point in-process
@pytest.mark.parametrize(("given", "rates"), [(None, (200.0, 1000.0)), ("", ()), ("1000,200", (1000.0, 200.0))])
def test_the_goal_rates_option_reaches_the_bench(monkeypatch, given, rates):
    seen = []

    def fake_run_bench(settings, opts, **kwargs):
        seen.append(opts)
        raise _Stopped

    monkeypatch.setattr(bench_run, "run_bench", fake_run_bench)
    args = ["bench", "--no-stack"] + ([] if given is None else ["--goal-rates", given])
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, _Stopped), result.output
    assert seen[0].goal_rates == rates


@pytest.mark.usefixtures("restore_logging")
def test_a_bad_goal_rate_fails_naming_the_option():
    result = CliRunner().invoke(main, ["bench", "--goal-rates", "200,fast"])
    assert result.exit_code == 2
    assert "--goal-rates" in result.output and "'fast'" in result.output
