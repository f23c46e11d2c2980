"""What a chaos run produced, and how a faulty run differs from the clean baseline (pure).

Keys that must match exactly between runs (ids derive from causes, so a correct pipeline
gives the same ones whatever happened to it):
- MQLs: (lead, mql_number) and the record id; priority upgrades by id;
- assignments: (lead, MQL id, replaced assignment) - one id and one owner per key in a run.
  Which owner a key gets may differ between runs (round-robin cursors see MQLs of different
  partitions in another order), so owner changes against the baseline are reported, not failed;
- final lead state: the stage of the last ``lead_scored`` of each lead and its score within
  ``score_tolerance`` points (decay between event time and processing time, see workload);
- SLA breaches: at most one id per (lead, assignment, tier). Breaches missing or extra against
  the baseline are reported only: deadlines follow the wall clock, so a fault that delays a
  CRM touch past a deadline legitimately breaches it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

Key = tuple[Any, ...]


@dataclass
class RunOutputs:
    """Outputs of one run, indexed for comparison. Feed records in partition order (``add``)."""

    origin_ms: int = 0
    read_at_s: float = 0.0  # when the outputs were read, seconds after the origin
    mqls: dict[Key, set[str]] = field(default_factory=lambda: defaultdict(set))  # (lead, n) -> ids
    mql_score: dict[Key, float] = field(default_factory=dict)
    upgrades: set[str] = field(default_factory=set)
    assignments: dict[Key, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))  # -> {(id, owner)}
    breaches: dict[Key, set[str]] = field(default_factory=lambda: defaultdict(set))  # (lead, assignment, tier) -> ids
    breach_due_s: dict[Key, float] = field(default_factory=dict)  # seconds after the origin
    final: dict[str, tuple[str, float]] = field(default_factory=dict)  # lead -> (stage, score)
    records: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # subject -> records read

    def add(self, subject: str | None, value: Any) -> None:
        self.records[subject or "undecodable"] += 1
        if subject is None or not isinstance(value, dict):
            return
        lead: Any = value.get("lead_id")  # every subject counted here has one
        if subject == "lead_qualified":
            if value.get("upgrade_of"):
                self.upgrades.add(value["event_id"])
            else:
                mql_key = (lead, value["mql_number"])
                self.mqls[mql_key].add(value["event_id"])
                self.mql_score.setdefault(mql_key, float(value["score"]))
        elif subject == "lead_assigned":
            assignment_key = (lead, value.get("mql_event_id"), value.get("replaces_assignment_id"))
            self.assignments[assignment_key].add((value["event_id"], value["owner_id"]))
        elif subject == "sla_breached":
            breach_key = (lead, value["assignment_id"], value["tier"])
            self.breaches[breach_key].add(value["event_id"])
            self.breach_due_s.setdefault(breach_key, (int(value["due_at"]) - self.origin_ms) / 1000)
        elif subject == "lead_scored":
            self.final[lead] = (value["stage"], float(value["score"]))

    def counts(self) -> dict[str, int]:
        return {
            "mqls": len(self.mqls),
            "upgrades": len(self.upgrades),
            "assignments": len(self.assignments),
            "breaches": len(self.breaches),
            "leads": len(self.final),
        }


@dataclass
class Divergence:
    """A scenario against the baseline. Lists hold up to ``SAMPLE`` examples; ``n_*`` the counts."""

    mql_lost: int = 0
    mql_extra: int = 0
    mql_ids_lost: int = 0
    mql_ids_extra: int = 0
    mql_multi_id: int = 0  # (lead, n) with more than one id in this run
    upgrades_lost: int = 0
    upgrades_extra: int = 0
    assign_missing: int = 0
    assign_extra: int = 0
    assign_duplicated: int = 0  # keys with more than one id or owner in this run
    owner_changed: int = 0  # same key, another owner than the baseline's (reported only)
    stage_diverged: int = 0
    score_diverged: int = 0
    leads_missing: int = 0
    breach_duplicated: int = 0
    breach_missing: int = 0  # reported only (wall-clock deadlines)
    breach_extra: int = 0
    examples: list[str] = field(default_factory=list)

    FAILING = (
        "mql_lost",
        "mql_extra",
        "mql_ids_lost",
        "mql_ids_extra",
        "mql_multi_id",
        "upgrades_lost",
        "upgrades_extra",
        "assign_missing",
        "assign_extra",
        "assign_duplicated",
        "stage_diverged",
        "score_diverged",
        "leads_missing",
        "breach_duplicated",
    )

    def failures(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.FAILING if getattr(self, name)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SAMPLE = 5


def compare(base: RunOutputs, run: RunOutputs, *, score_tolerance: float, breach_guard_s: float) -> Divergence:
    """``run`` against ``base``. Breaches are compared only where both runs had time to fire
    them: due at least ``breach_guard_s`` before the earlier of the two reads."""
    breach_horizon_s = min(base.read_at_s, run.read_at_s) - breach_guard_s
    d = Divergence()

    def note(kind: str, items) -> int:
        items = sorted(items, key=repr)
        d.examples.extend(f"{kind}: {item}" for item in items[:SAMPLE])
        return len(items)

    d.mql_lost = note("MQL lost", ((k, round(base.mql_score[k], 4)) for k in base.mqls.keys() - run.mqls.keys()))
    d.mql_extra = note("MQL extra", ((k, round(run.mql_score[k], 4)) for k in run.mqls.keys() - base.mqls.keys()))
    base_ids = set().union(*base.mqls.values()) if base.mqls else set()
    run_ids = set().union(*run.mqls.values()) if run.mqls else set()
    d.mql_ids_lost = note("MQL id lost", base_ids - run_ids)
    d.mql_ids_extra = note("MQL id extra", run_ids - base_ids)
    d.mql_multi_id = note("MQL with several ids", (k for k, ids in run.mqls.items() if len(ids) > 1))
    d.upgrades_lost = note("upgrade lost", base.upgrades - run.upgrades)
    d.upgrades_extra = note("upgrade extra", run.upgrades - base.upgrades)

    d.assign_missing = note("assignment missing", base.assignments.keys() - run.assignments.keys())
    d.assign_extra = note("assignment extra", run.assignments.keys() - base.assignments.keys())
    d.assign_duplicated = note(
        "assignment duplicated",
        (
            (k, sorted(v))
            for k, v in run.assignments.items()
            if len({i for i, _ in v}) > 1 or len({o for _, o in v}) > 1
        ),
    )
    d.owner_changed = sum(
        1
        for k in base.assignments.keys() & run.assignments.keys()
        if {o for _, o in base.assignments[k]} != {o for _, o in run.assignments[k]}
    )

    d.leads_missing = note("lead never scored", base.final.keys() - run.final.keys())
    stages, scores = [], []
    for lead in base.final.keys() & run.final.keys():
        (stage_a, score_a), (stage_b, score_b) = base.final[lead], run.final[lead]
        if stage_a != stage_b:
            stages.append((lead, stage_a, stage_b))
        elif abs(score_a - score_b) > score_tolerance:
            scores.append((lead, round(score_a, 4), round(score_b, 4)))
    d.stage_diverged = note("stage diverged", stages)
    d.score_diverged = note("score diverged", scores)

    d.breach_duplicated = note("breach duplicated", (k for k, ids in run.breaches.items() if len(ids) > 1))

    def in_horizon(outputs: RunOutputs) -> set[Key]:
        return {k for k, due in outputs.breach_due_s.items() if due <= breach_horizon_s}

    d.breach_missing = note("breach missing", in_horizon(base) - run.breaches.keys())
    d.breach_extra = note("breach extra", in_horizon(run) - base.breaches.keys())
    return d
