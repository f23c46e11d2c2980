"""`make chaos` without Kafka: the pinned workload, the pausable publisher, the comparison with
the baseline, recovery times and the results block of docs/reliability.md."""

from __future__ import annotations

import asyncio

import pytest

from leadflow.chaos.compare import RunOutputs, compare
from leadflow.chaos.report import BEGIN, END, line, update_doc
from leadflow.chaos.runner import ScenarioReport, recovery_time
from leadflow.chaos.workload import PacedPublisher, build_workload

ORIGIN = 1_800_000_000_000


def small(seed: int = 7, count: int = 400, speed: float = 60.0):
    return build_workload(seed, count, speed=speed, arrival_every_s=2.0, bad_share=0.003)


def test_workload_is_the_same_for_the_same_seed_and_compressed_by_speed():
    a, b = small(), small()
    assert a.fingerprint() == b.fingerprint()
    assert [e.event_id for e in a.events] == [e.event_id for e in b.events]
    assert small(seed=8).fingerprint() != a.fingerprint()
    assert list(a.offsets_ms) == sorted(a.offsets_ms) and a.offsets_ms[0] == 0
    assert {e.subject for e in small(count=3000).events} == {"form_submitted", "web_activity", "crm_status"}
    slower = small(speed=30.0)
    assert slower.span_s == pytest.approx(2 * a.span_s, rel=0.01)


def test_workload_rejects_nonsense():
    with pytest.raises(ValueError, match="events must be >= 1"):
        build_workload(7, 0, speed=60, arrival_every_s=2, bad_share=0)
    with pytest.raises(ValueError, match="speed must be > 0"):
        build_workload(7, 10, speed=0, arrival_every_s=2, bad_share=0)


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str | None, int]] = []
        self.flushed = 0

    async def send(self, event, *, now_ms):
        self.sent.append((event.event_id, now_ms))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def flush(self):
        self.flushed += 1


def test_paced_publisher_stamps_every_event_with_its_pinned_time_even_when_held():
    workload = small(count=200)
    fake, now = FakePublisher(), [ORIGIN / 1000]

    async def scenario():
        paced = PacedPublisher(fake, workload, ORIGIN, clock=lambda: now[0])
        real_sleep = asyncio.sleep

        async def fast_sleep(seconds):  # the clock moves by exactly what the publisher waits
            now[0] += seconds
            await real_sleep(0)

        asyncio.sleep = fast_sleep
        try:
            task = asyncio.create_task(paced.run())
            while paced.sent < 50:
                await real_sleep(0)
            await paced.pause(task)
            held_at = paced.sent
            now[0] += 5  # the outage: time passes, nothing is sent
            for _ in range(20):
                await real_sleep(0)
            assert paced.sent == held_at
            paced.resume()
            await task
        finally:
            asyncio.sleep = real_sleep
        return paced

    paced = asyncio.run(scenario())
    assert fake.flushed == 1
    assert fake.sent == [(e.event_id, ORIGIN + o) for e, o in zip(workload.events, workload.offsets_ms)]
    assert paced.held_max > 0


def record(subject: str, **fields):
    return subject, fields


def outputs(*records, origin_ms: int = ORIGIN, read_at_s: float = 100.0) -> RunOutputs:
    out = RunOutputs(origin_ms=origin_ms, read_at_s=read_at_s)
    for subject, value in records:
        out.add(subject, value)
    return out


MQL = record("lead_qualified", event_id="mql_a1", lead_id="ld_a", mql_number=1, score=62.0, upgrade_of=None)
ASSIGNED = record(
    "lead_assigned",
    event_id="asg_a1",
    lead_id="ld_a",
    mql_event_id="mql_a1",
    owner_id="ae-ana",
    replaces_assignment_id=None,
)
SCORED = record("lead_scored", lead_id="ld_a", stage="mql", score=62.0)
BREACH = record(
    "sla_breached", event_id="br_a1", lead_id="ld_a", assignment_id="asg_a1", tier=0, due_at=ORIGIN + 20_000
)


def test_identical_runs_do_not_diverge():
    base = outputs(MQL, ASSIGNED, SCORED, BREACH)
    d = compare(base, outputs(MQL, MQL, ASSIGNED, SCORED, BREACH), score_tolerance=0.01, breach_guard_s=5)
    assert d.failures() == {}  # a redelivered record with the same id is not a duplicate


def test_lost_mql_and_missing_assignment_fail():
    d = compare(outputs(MQL, ASSIGNED, SCORED), outputs(SCORED), score_tolerance=0.01, breach_guard_s=5)
    assert d.failures() == {"mql_lost": 1, "mql_ids_lost": 1, "assign_missing": 1}
    assert "MQL lost: (('ld_a', 1), 62.0)" in d.examples


def test_assignment_with_two_owners_is_a_duplicate_but_another_owner_than_the_baseline_is_not():
    other_owner = record("lead_assigned", **{**ASSIGNED[1], "owner_id": "ae-ben"})
    d = compare(outputs(ASSIGNED), outputs(other_owner), score_tolerance=0.01, breach_guard_s=5)
    assert d.failures() == {} and d.owner_changed == 1
    d = compare(outputs(ASSIGNED), outputs(ASSIGNED, other_owner), score_tolerance=0.01, breach_guard_s=5)
    assert d.failures() == {"assign_duplicated": 1}


def test_final_state_compares_stage_exactly_and_score_within_the_tolerance():
    close = record("lead_scored", lead_id="ld_a", stage="mql", score=62.004)
    far = record("lead_scored", lead_id="ld_a", stage="mql", score=61.0)
    other_stage = record("lead_scored", lead_id="ld_a", stage="nurture", score=62.0)
    base = outputs(SCORED)
    assert compare(base, outputs(close), score_tolerance=0.01, breach_guard_s=5).failures() == {}
    assert compare(base, outputs(far), score_tolerance=0.01, breach_guard_s=5).failures() == {"score_diverged": 1}
    assert compare(base, outputs(other_stage), score_tolerance=0.01, breach_guard_s=5).failures() == {
        "stage_diverged": 1
    }
    assert compare(base, outputs(), score_tolerance=0.01, breach_guard_s=5).failures() == {"leads_missing": 1}
    # The last record of a lead is its final state.
    assert compare(base, outputs(far, SCORED), score_tolerance=0.01, breach_guard_s=5).failures() == {}


def test_breaches_fail_only_when_duplicated_and_are_compared_within_the_common_horizon():
    second_id = record("sla_breached", **{**BREACH[1], "event_id": "br_a1-again"})
    d = compare(outputs(BREACH), outputs(BREACH, second_id), score_tolerance=0.01, breach_guard_s=5)
    assert d.failures() == {"breach_duplicated": 1}
    d = compare(outputs(BREACH), outputs(), score_tolerance=0.01, breach_guard_s=5)
    assert d.failures() == {} and d.breach_missing == 1
    # Due 20 s after the origin, but one run was read 22 s after it: too close to compare.
    d = compare(outputs(BREACH), outputs(read_at_s=22.0), score_tolerance=0.01, breach_guard_s=5)
    assert d.breach_missing == 0


def test_recovery_needs_small_lag_and_progress_after_the_fault():
    samples = [
        (0.0, 10, 1000),
        (1.0, 10, 1000),  # fault ends at 1.5: the worker is gone
        (2.0, 10, 1000),
        (3.0, None, None),
        (4.0, 400, 1000),
        (5.0, 40, 1400),
        (6.0, 0, 1450),
    ]
    assert recovery_time(samples, 1.5, threshold=50) == 3.5  # small lag at 2.0 does not count: no progress
    assert recovery_time(samples, 1.5, threshold=20) == 4.5
    assert recovery_time(samples[:5], 1.5, threshold=50) is None
    assert recovery_time(samples, 10.0, threshold=50) is None


def test_report_line_and_results_block(tmp_path):
    base, run = outputs(MQL, ASSIGNED, SCORED), outputs(SCORED)
    report = ScenarioReport(
        "kill9",
        "worker kill -9 x5",
        published=10,
        drained_s=1.0,
        recover_s=[2.0, None],
        divergence=compare(base, run, score_tolerance=0.01, breach_guard_s=5),
    )
    text = line(report)
    assert "MQLs lost 1" in text and "recover never" in text and "FAIL" in text and "not_recovered=1" in text
    doc = tmp_path / "reliability.md"
    doc.write_text(f"# Reliability\n\nprose\n\n{BEGIN}\nold\n{END}\n\nmore prose\n")
    update_doc(doc, f"{BEGIN}\nnew\n{END}")
    assert doc.read_text() == f"# Reliability\n\nprose\n\n{BEGIN}\nnew\n{END}\n\nmore prose\n"
