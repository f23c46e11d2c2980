"""The pure parts of ``make bench-recovery`` (``leadflow.bench.recovery``): realistic lead states,
their clones under new lead ids, the partition a state belongs to, the goals and the machine.

A *pool* of a few hundred lead states is made the way a worker makes them: simulator traffic
(``leadflow.simulator``) through capture's rules, the visitor buffer and scoring's reorder
window, live (each event processed as it happens), with the decay reviews the sweeper would run.
Cloning a pooled state under a new lead means a new email (same domain, so fit is unchanged),
its lead id (``lead_id_for_email``, with the workers' LEADFLOW_LEAD_ID_KEY) and every occurrence
of the old id and email in the state's JSON rewritten (the reorder window's snapshot and
events carry them too), then encoded as the worker stores it (``state_codec``). The bytes stay
exactly what the worker writes: ids have a fixed length and orjson escapes neither ids nor emails.
"""

from __future__ import annotations

import heapq
import os
import platform
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from agents.capture.exceptions import Rejected
from agents.capture.rules import CaptureLimits, to_lead_event
from agents.domain.events import FORM_SUBMITTED
from agents.domain.identity import lead_id_for_email
from agents.routing.priority import priority_policy
from agents.scoring import reorder, state_codec
from agents.scoring.outputs import VisitorLinked
from agents.scoring.state import LeadState, VisitorState
from agents.scoring.visitors import apply_visitor_event, link_visitor
from leadflow.bench.goals import Goal
from leadflow.simulator import SimEvent, TrafficSimulator
from streams.app import partition_for
from streams.settings import Settings

_DAY_MS = 86_400_000
_PROCESSING_DELAY_MS = 150  # a live worker scores an event this long after it happened


@dataclass(frozen=True)
class PooledState:
    lead_id: str
    email: str
    value: bytes  # orjson of LeadState.to_dict() (the worker stores it through state_codec.pack)
    event_count: int


@dataclass(frozen=True)
class Pool:
    states: list[PooledState]
    form: SimEvent  # a valid form submit of a human persona: the template of every probe
    events: int  # simulator events it took


def simulate_pool(settings: Settings, configs: Any, size: int, *, seed: int, end_ms: int) -> Pool:
    """``size`` lead states from simulator traffic, the first leads created (their journeys
    have had time to unfold: the run goes on until 1.5x ``size`` leads exist)."""
    model = configs.scoring
    window = reorder.ReorderWindow.from_seconds(settings.reorder_window_s, settings.live_event_bound_s)
    apply_kwargs = dict(
        window=window,
        dedup_window=settings.dedup_window,
        dispositions=configs.sla.dispositions,
        priority=priority_policy(configs.routing),
    )
    limits = CaptureLimits.from_settings(settings)
    sim = TrafficSimulator(seed, start_ms=end_ms - 30 * _DAY_MS, inline_crm=True, lead_id_key=limits.lead_id_key)
    leads: dict[str, LeadState] = {}  # insertion order: creation order
    visitors: dict[str, VisitorState] = {}
    due: list[tuple[int, str]] = []
    form: SimEvent | None = None

    def save(state: LeadState) -> None:
        leads[state.lead_id] = state
        at = reorder.next_review_at_ms(state, model)
        if at is not None:
            heapq.heappush(due, (at, state.lead_id))

    def score(event, now_ms: int) -> None:
        pending = [event]
        while pending:
            ev = pending.pop(0)
            old = leads.get(ev.lead_id)
            new, outputs = reorder.apply_event(old, ev, model, now_ms=now_ms, **apply_kwargs)
            if new is old:
                continue
            save(new)
            for out in outputs:
                if isinstance(out, VisitorLinked):
                    vstate, forwards = link_visitor(
                        visitors.get(out.visitor_id), out.lead_id, visitor_id=out.visitor_id
                    )
                    visitors[out.visitor_id] = vstate
                    pending.extend(forwards)

    def run_reviews(until_ms: int) -> None:
        while due and due[0][0] <= until_ms:
            at, lead_id = heapq.heappop(due)
            state = leads[lead_id]
            if reorder.next_review_at_ms(state, model) != at:
                continue  # rescheduled since (as the sweeper's stale due-index entries)
            new, _ = reorder.review(state, model, now_ms=at, **apply_kwargs)
            leads[lead_id] = new
            later = reorder.next_review_at_ms(new, model)
            if later is not None and later > at:
                heapq.heappush(due, (later, lead_id))

    n = 0
    for n, sim_event in enumerate(sim, 1):
        if len(leads) >= size * 3 // 2 or n > size * 400 or sim_event.at_ms > end_ms:
            break
        run_reviews(sim_event.at_ms)
        record = sim_event.record
        assert record is not None  # no bad events asked for
        now_ms = sim_event.at_ms + _PROCESSING_DELAY_MS
        try:
            event = to_lead_event(
                sim_event.subject,
                record,
                sim_event.encoding,
                raw=b"",
                received_at_ms=now_ms,
                now_ms=now_ms,
                limits=limits,
            )
        except Rejected:
            continue
        if form is None and sim_event.subject == FORM_SUBMITTED and _human_form(sim_event):
            form = sim_event
        if event.lead_id is not None:
            score(event, now_ms)
        elif event.visitor_id:
            vstate, forwards = apply_visitor_event(
                visitors.get(event.visitor_id), event, model, max_buffered=settings.visitor_buffer_max
            )
            visitors[event.visitor_id] = vstate
            for forward in forwards:
                score(forward, now_ms)
    run_reviews(end_ms)  # the sweeper kept running until now
    if form is None:
        raise RuntimeError("the simulator produced no valid form submit of a human persona")
    states = [
        PooledState(s.lead_id, s.email or f"{s.lead_id}@example.com", orjson.dumps(s.to_dict()), s.event_count)
        for s in list(leads.values())[:size]
    ]
    return Pool(states, form, n)


def _human_form(event: SimEvent) -> bool:
    record = event.record or {}
    return (
        event.persona not in ("bot", "competitor")
        and event.encoding == "avro"
        and not record.get("honeypot")
        and float(record.get("seconds_to_fill") or 0) >= 5
    )


def clone_email(email: str, index: int) -> str:
    """A distinct mailbox per clone, on the template's domain (fit depends on the domain)."""
    local, _, domain = email.rpartition("@")
    return f"{local}.{index:x}@{domain}"


def clone_state(template: PooledState, index: int, lead_id_key: bytes | None) -> tuple[str, str, bytes]:
    """(lead id, email, stored state bytes) of clone ``index`` of ``template``."""
    email = clone_email(template.email, index)
    lead_id = lead_id_for_email(email, lead_id_key)
    value = template.value.replace(template.lead_id.encode(), lead_id.encode())
    value = value.replace(orjson.dumps(template.email), orjson.dumps(email))
    return lead_id, email, state_codec.pack(value)


def probe_event(form: SimEvent, email: str, event_id: str, lead_id: str) -> SimEvent:
    """The template form submit, from ``email`` (a new or a prefilled lead), not linked to a visitor."""
    record = {**(form.record or {}), "email": email, "event_id": event_id, "visitor_id": None}
    return replace(form, record=record, key=lead_id.encode(), lead_id=lead_id, encoding="avro", iso_time=False)


def probe_email(run_id: str, n: int) -> str:
    return f"probe.{run_id}.{n}@northwind-industries.com"


def probe_for_partition(run_id: str, start: int, partition: int, partitions: int, key: bytes | None):
    """(next n, email, lead id): the first probe email from ``start`` whose lead lands on ``partition``."""
    n = start
    while True:
        email = probe_email(run_id, n)
        lead_id = lead_id_for_email(email, key)
        n += 1
        if partition_for(lead_id.encode(), partitions) == partition:
            return n, email, lead_id


def size_stats(sizes: list[int]) -> dict[str, float]:
    ordered = sorted(sizes)

    def pct(q: float) -> int:
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]

    return {
        "mean": round(statistics.fmean(ordered), 1),
        "p50": pct(50),
        "p95": pct(95),
        "max": ordered[-1],
        "count": len(ordered),
    }


# --- the goals (issue 14) ----------------------------------------------------------------------


GOALS = (
    Goal("cold_recovery_s", "cold recovery to processing", 60.0, "s"),
    Goal("failover_s", "failover to a standby replica", 15.0, "s"),
    Goal("worker_peak_rss_mib", "worker peak RSS", 1024.0, "MiB"),
    Goal("state_bytes_per_lead", "lead state per lead", 800.0, "B"),
)


def machine_info() -> dict[str, Any]:
    """Cores, RAM, CPU model and load: where the figures were measured."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux: the figures still stand, with less context
        pass
    return info
