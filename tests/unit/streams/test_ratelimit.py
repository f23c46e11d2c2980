"""LogSummary: first event of a kind logged at once, the rest as one summary line per interval."""

from __future__ import annotations

import logging

import pytest

from streams.ratelimit import LogSummary


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def summary(clock) -> LogSummary:
    return LogSummary(
        logging.getLogger("test.ratelimit"),
        "dead-lettered {total:,} events in the last {interval}",
        interval_s=10,
        clock=clock,
    )


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.ratelimit"]


def test_first_of_each_key_now_then_one_summary_per_interval(summary, clock, caplog):
    caplog.set_level(logging.WARNING, "test.ratelimit")
    assert summary.event("invalid_email", "dead-lettered t[0]@%d: %s", 1, "invalid_email") is True
    for offset in range(2, 1233):
        clock.now += 0.005
        assert summary.event("invalid_email", "dead-lettered t[0]@%d: %s", offset, "invalid_email") is False
    for offset in range(3):
        assert summary.event("too_large", "dead-lettered t[1]@%d: too_large", offset) is (offset == 0)
    assert _lines(caplog) == ["dead-lettered t[0]@1: invalid_email", "dead-lettered t[1]@0: too_large"]

    clock.now = 1010.0
    line = summary.flush()
    assert line == "dead-lettered 1,235 events in the last 10s: invalid_email=1,232, too_large=3"
    assert _lines(caplog)[-1] == line
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 3


def test_no_summary_before_the_interval_ends_or_when_nothing_was_held_back(summary, clock, caplog):
    caplog.set_level(logging.WARNING, "test.ratelimit")
    summary.event("too_large", "one")
    summary.event("too_large", "two")
    clock.now += 9.9
    assert summary.flush() is None
    clock.now += 0.1
    assert summary.flush() == "dead-lettered 2 events in the last 10s: too_large=2"
    summary.event("too_large", "three")  # still active: held back
    clock.now += 10
    assert summary.flush() == "dead-lettered 1 events in the last 10s: too_large=1"
    clock.now += 10
    assert summary.flush() is None  # a quiet interval: nothing to say
    assert _lines(caplog) == [
        "one",
        "dead-lettered 2 events in the last 10s: too_large=2",
        "dead-lettered 1 events in the last 10s: too_large=1",
    ]


def test_a_key_quiet_for_a_whole_interval_is_logged_individually_again(summary, clock, caplog):
    caplog.set_level(logging.WARNING, "test.ratelimit")
    assert summary.event("undecodable", "first") is True
    clock.now += 10
    summary.flush()  # interval with only the example: no summary
    clock.now += 10
    summary.flush()  # a whole quiet interval
    assert summary.event("undecodable", "after a pause") is True
    assert _lines(caplog) == ["first", "after a pause"]


def test_event_closes_an_ended_interval_without_a_timer(summary, clock, caplog):
    caplog.set_level(logging.WARNING, "test.ratelimit")
    summary.event("k", "first")
    summary.event("k", "held")
    clock.now += 25
    summary.event("k", "next interval")  # flushes the previous one first
    assert _lines(caplog) == ["first", "dead-lettered 2 events in the last 25s: k=2"]


def test_bounded_output_under_a_flood(summary, clock, caplog):
    """100,000 events over 60 s with 11 reasons: at most one line per reason and one summary per interval."""
    caplog.set_level(logging.WARNING, "test.ratelimit")
    reasons = [f"r{i}" for i in range(11)]
    for i in range(100_000):
        clock.now = 1000.0 + i * 0.0006
        summary.event(reasons[i % 11], "event %d", i)
    summary.flush(force=True)
    assert len(_lines(caplog)) <= 11 + 7


def test_force_flush_and_template_without_counts(clock, caplog):
    caplog.set_level(logging.INFO, "test.ratelimit")
    summary = LogSummary(
        logging.getLogger("test.ratelimit"), "{total} retries", interval_s=5, level=logging.INFO, clock=clock
    )
    summary.event("a", "a")
    summary.event("a", "a again")
    assert summary.flush(force=True) == "2 retries: a=2"
    with pytest.raises(ValueError):
        LogSummary(logging.getLogger("x"), "{total}", interval_s=0)
