"""What the demo has seen: counts, latencies, speed-to-lead and the feed of notable events."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from leadflow.simulator.harness import percentile


@dataclass
class FeedLine:
    serial: int
    at: float
    kind: str
    lead: str
    detail: str


@dataclass
class DemoState:
    speed: float
    started: float = field(default_factory=time.monotonic)
    published: int = 0
    crm_published: int = 0
    counts: Counter = field(default_factory=Counter)
    by_persona: dict[str, Counter] = field(default_factory=dict)
    mql_latency_ms: list[float] = field(default_factory=list)
    assign_latency_ms: list[float] = field(default_factory=list)
    speed_to_lead_ms: list[float] = field(default_factory=list)  # business time
    mql_cause: dict[str, int] = field(default_factory=dict)  # mql event id -> input broker time
    assignments: dict[str, dict[str, Any]] = field(default_factory=dict)  # assignment id -> facts
    feed: deque = field(default_factory=lambda: deque(maxlen=200))
    recent_rate: deque = field(default_factory=lambda: deque(maxlen=20))  # (monotonic, published)
    worker_pid: int | None = None
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, lead: str, detail: str) -> None:
        self.counts["feed_lines"] += 1
        self.feed.append(FeedLine(self.counts["feed_lines"], time.time(), kind, lead, detail))

    def persona_count(self, persona: str | None, what: str) -> None:
        self.by_persona.setdefault(persona or "other", Counter())[what] += 1

    def rate(self) -> float:
        now = time.monotonic()
        self.recent_rate.append((now, self.published))
        t0, n0 = self.recent_rate[0]
        return (self.published - n0) / (now - t0) if now - t0 > 0.2 else 0.0

    def sla_compliance(self, now_ms: int) -> tuple[int, int]:
        """(touched on time, assignments past their due time) - from the simulated reps."""
        due = [a for a in self.assignments.values() if a["due"] <= now_ms]
        on_time = sum(1 for a in due if a.get("touched") is not None and a["touched"] <= a["due"])
        return on_time, len(due)

    def summary(self) -> dict[str, Any]:
        on_time, due = self.sla_compliance(int(time.time() * 1000))

        def pct(values: list[float], q: float) -> float | None:
            v = percentile(values, q)
            return None if v is None else round(v, 1)

        return {
            "seconds": round(time.monotonic() - self.started, 1),
            "published": self.published,
            "crm_events": self.crm_published,
            **{k: v for k, v in sorted(self.counts.items()) if k != "feed_lines"},
            "event_to_mql_ms": {"p50": pct(self.mql_latency_ms, 50), "p95": pct(self.mql_latency_ms, 95)},
            "event_to_assignment_ms": {"p50": pct(self.assign_latency_ms, 50), "p95": pct(self.assign_latency_ms, 95)},
            "speed_to_lead_business_min": {
                "p50": _minutes(percentile(self.speed_to_lead_ms, 50)),
                "p95": _minutes(percentile(self.speed_to_lead_ms, 95)),
            },
            "sla_on_time": on_time,
            "sla_due": due,
            "by_persona": {k: dict(v) for k, v in sorted(self.by_persona.items())},
        }


def _minutes(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 60_000, 1)
