"""The answer to "why this score, why this rep" for one lead, from its tables (pure).

Built from what each capability keeps per lead: scoring's LeadState, routing's memo of the last
assignment (with its audit) and the SLA clock. The score is decayed to the moment of the
request with the live model, so it can differ from the last LeadScored. JSON-safe; no email
and no personal names (the lead id, company and job title are what a rep needs to explain).
"""

from __future__ import annotations

from typing import Any

from agents.routing.redelivery import RoutingMemo
from agents.scoring.decay import decay_factor
from agents.scoring.evaluation import INACTIVITY_SIGNAL, evaluate
from agents.scoring.model import ScoringModel
from agents.scoring.state import LeadState, SourceTouch
from agents.sla.rules import LeadClock

LAST_TOUCHES_SHOWN = 10
DAY_MS = 86_400_000


def lead_view(
    state: LeadState,
    model: ScoringModel,
    now_ms: int,
    *,
    memo: RoutingMemo | None = None,
    clock: LeadClock | None = None,
) -> dict[str, Any]:
    """Everything the API answers for a lead (see docs/model-tuning.md, "Lead API")."""
    at_ms = max(now_ms, state.as_of_ms)  # never before the lead's own clock (events from the future)
    evaluation = evaluate(state, model, at_ms)
    fit = evaluation.fit
    return {
        "lead_id": state.lead_id,
        "stage": state.stage,
        "as_of": at_ms,
        "created_at": state.created_at_ms,
        "last_activity_at": state.last_engaged_ms,
        "company": state.profile.get("company"),
        "job_title": state.profile.get("job_title"),
        "score": {
            "value": round(evaluation.score, 2) + 0.0,
            "fit_points": round(evaluation.fit_score, 2) + 0.0,
            "engagement_points": round(evaluation.engagement_score, 2) + 0.0,
            "mql_threshold": model.thresholds.mql,
            "fast_track_threshold": model.thresholds.fast_track,
            "qualifies_now": evaluation.qualifies,
            "model_version": model.version,
            "half_life_days": model.decay.half_life_days,
            "breakdown": _fit_items(evaluation) + _behaviour_items(state, model, at_ms) + _inactivity(evaluation),
        },
        "fit": {
            "grade": fit.grade,
            "gate_passed": fit.passed,
            "gate_failures": [failure.to_record() for failure in fit.gate_failures],
            "checks": [{"name": c.name, "status": c.status, "detail": c.detail} for c in fit.checks],
            "disqualifications": list(state.disqualifications),
            "bot_signals": list(state.bot_signals),
        },
        "sources": {"first_touch": _source(state.first_touch), "last_touch": _source(state.last_touch)},
        "owner": _owner(memo),
        "sla": _sla(clock, now_ms),
        "last_touches": [
            {"kind": t.kind, "detail": t.detail, "at": t.occurred_at_ms}
            for t in reversed(state.touches[-LAST_TOUCHES_SHOWN:])
        ],
        "mql": {
            "open": state.mql_delivered,
            "episodes": state.mql_number,
            "sent": state.mql_sent,
            "qualified_at": state.qualified_at_ms,
            "history": [{"mql_number": n, "qualified_at": at, "score": score} for n, at, score in state.mql_history],
        },
    }


def _fit_items(evaluation: Any) -> list[dict[str, Any]]:
    return [
        {"signal": item.signal, "kind": "fit", "points": item.points, "detail": item.detail}
        for item in evaluation.fit.items
    ]


def _behaviour_items(state: LeadState, model: ScoringModel, at_ms: int) -> list[dict[str, Any]]:
    """Each behavioural signal as points = per-occurrence points x counted occurrences, decayed."""
    items = []
    order = model.signal_order
    for name in sorted((n for n in state.signals if n in order), key=order.__getitem__):
        rule, total = model.signals[name], state.signals[name]
        factor = decay_factor(at_ms - total.last_ms, model.half_life_ms)
        units = min(model.cap_units[name], total.units * decay_factor(at_ms - total.at_ms, model.half_life_ms))
        points = round(units * rule.points, 2) + 0.0
        if points == 0:
            continue
        items.append(
            {
                "signal": name,
                "kind": "behaviour",
                "points": points,
                "points_each": rule.points,
                "every": rule.every,
                "occurrences": total.count,
                "counted": round(units, 3),  # occurrences still counting after decay and the cap
                "cap_points": rule.cap,
                "last_at": total.last_ms,
                "days_since_last": round((at_ms - total.last_ms) / DAY_MS, 1),
                "decay_since_last": round(factor, 3),
            }
        )
    return items


def _inactivity(evaluation: Any) -> list[dict[str, Any]]:
    return [
        {"signal": item.signal, "kind": "inactivity", "points": item.points, "detail": item.detail}
        for item in evaluation.engagement_items
        if item.signal == INACTIVITY_SIGNAL
    ]


def _source(touch: SourceTouch | None) -> dict[str, Any] | None:
    if touch is None:
        return None
    return {
        "channel": touch.channel,
        "source": touch.source,
        "medium": touch.medium,
        "campaign": touch.campaign,
        "at": touch.occurred_at_ms,
    }


def _owner(memo: RoutingMemo | None) -> dict[str, Any] | None:
    """The current owner and the routing audit of how they were chosen."""
    if memo is None:
        return None
    record = memo.record
    return {
        "owner_id": record.get("owner_id"),
        "owner_name": record.get("owner_name"),
        "owner_role": record.get("owner_role"),
        "team": record.get("team"),
        "priority": memo.priority,
        "mql_number": memo.mql_number,
        "assigned_at": record.get("assigned_at"),
        "rule": record.get("rule"),
        "reason": record.get("reason"),
        "is_fallback": record.get("is_fallback"),
        "reassigned_from": record.get("reassigned_from"),
        "previous_owners": list(memo.owners[:-1]),
        "audit": list(record.get("audit") or []),
    }


def _sla(lead_clock: LeadClock | None, now_ms: int) -> dict[str, Any] | None:
    """The open speed-to-lead clock: deadline, breached tiers and the next tier due."""
    if lead_clock is None or lead_clock.clock is None or not lead_clock.is_open:
        return None
    clock = lead_clock.clock
    upcoming = min(clock.pending, key=lambda t: (t.due_ms, t.number))
    return {
        "owner_id": clock.owner_id,
        "priority": clock.priority,
        "assigned_at": clock.assigned_at_ms,
        "first_touch_due_at": clock.due_at_ms,
        "overdue": now_ms > clock.due_at_ms,
        "breached_tiers": sorted(clock.fired),
        "next_tier": {
            "tier": upcoming.number,
            "due_at": upcoming.due_ms,
            "escalate_to_role": upcoming.role,
            "action": upcoming.action,
        },
    }
