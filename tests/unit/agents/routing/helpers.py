"""Builders shared by the routing unit tests: small rosters and MQL records, built against the
default routing config (tests.repo_config) unless given another one."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from agents.domain.identity import lead_id_for_email
from agents.routing.assignment import assignment_record
from agents.routing.config import RoutingConfig
from agents.routing.roster import Roster, parse_roster
from agents.routing.rules import Decision, Plan, plan
from agents.routing.selection import select_reference
from tests.repo_config import default_routing_config

REPO = Path(__file__).resolve().parents[4]
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000

_n = itertools.count(1)
FORM_SIGNALS = {  # config/scoring-model.yaml event_signals.form_kinds
    "demo_request": "contact_request",
    "contact_sales": "contact_request",
    "pricing_form": "contact_request",
    "chat": "contact_request",
    "content_download": "content_download",
    "webinar_registration": "webinar_registration",
    "event_badge_scan": "event_badge_scan",
    "newsletter": "newsletter_signup",
}

QUEUES = [
    {"id": "nurture-sequence", "name": "Nurture", "role": "nurture", "round_robin": False},
    {"id": "revops-triage", "name": "RevOps triage", "role": "queue", "round_robin": False},
]


def rep(rep_id: str, role: str = "AE", capacity: int = 10, **fields: Any) -> dict[str, Any]:
    return {"id": rep_id, "name": rep_id.title(), "role": role, "capacity": capacity, **fields}


def roster(
    reps: list[dict[str, Any]],
    *,
    rules: list[dict[str, Any]] | None = None,
    territories: list[dict[str, Any]] | None = None,
    account_owners: dict[str, str] | None = None,
    config: RoutingConfig | None = None,
    now_ms: int | None = NOW,
) -> Roster:
    raw = {
        "territories": territories
        if territories is not None
        else [
            {"id": "na", "countries": ["US", "CA"]},
            {"id": "emea", "countries": ["GB", "DE", "FR"]},
        ],
        "reps": reps + QUEUES,
        "rules": rules or [],
        "account_owners": account_owners or {},
    }
    return parse_roster(raw, config=config or default_routing_config(), now_ms=now_ms)


def mql(
    email: str | None = None,
    *,
    form_kind: str | None = "demo_request",
    signals: dict[str, float] | None = None,
    trigger: str | None = None,
    fit_grade: str | None = "B",
    country: str | None = "US",
    company_size: int | None = 500,
    industry: str | None = "Software",
    score: float = 60.0,
    fast_track: bool = False,
    priority_hint: str | None = None,
    mql_number: int = 1,
    event_id: str | None = None,
    account_key: str | None = None,
    touches: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A LeadQualified v3 record as scoring emits it: the structured facts (firmographics,
    signals, form_kinds) next to the handoff's display text. ``legacy(record)`` makes it a v2 one."""
    email = email or f"lead{next(_n)}@corp{next(_n)}.example.com"
    lead_id = lead_id_for_email(email)
    signal = FORM_SIGNALS.get(form_kind or "")
    if signals is None:
        signals = {signal: 10.0} if signal else {}
    if trigger is None:
        trigger = f"{signal} ({form_kind} form)" if form_kind else "score_threshold"
    checks = ["free_email: passed", "competitor_domain: passed"]
    if company_size is not None:
        checks.append(f"icp_company_size: passed ({company_size} employees)")
    if industry is not None:
        checks.append(f"icp_industry: passed ({industry})")
    if country is not None:
        checks.append(f"icp_geography: passed ({country})")
    touch_kinds = touches if touches is not None else ([f"form:{form_kind}"] if form_kind else [])
    record = {
        "event_id": event_id or f"mql_{lead_id}_{mql_number}",
        "lead_id": lead_id,
        "email": email,
        "occurred_at": NOW - 1000,
        "qualified_at": NOW - 500,
        "mql_number": mql_number,
        "score": score,
        "fit_grade": fit_grade,
        "fast_track": fast_track,
        "breakdown": [{"signal": s, "points": p, "detail": None} for s, p in signals.items()],
        "model_version": "test",
        "handoff": {
            "trigger": trigger,
            "problem_hypothesis": "Evaluating",
            "disqualifiers_checked": checks,
            "last_touches": [{"kind": k, "detail": None, "occurred_at": NOW - 1000} for k in touch_kinds],
            "recommended_opener": "Hi",
        },
        "first_touch_source": "paid_search",
        "last_touch_source": "paid_search",
        "account_key": account_key if account_key is not None else email.rpartition("@")[2],
        "company": "Corp",
        "job_title": "Director",
        "priority_hint": priority_hint,
        "firmographics": {
            "company_size": company_size,
            "industry": industry,
            "country": country,
            "segment": default_routing_config().segment_for(company_size),
            "fit_grade": fit_grade,
        },
        "signals": [{"signal": s, "points": p} for s, p in signals.items()],
        "form_kinds": sorted(
            {
                *([form_kind] if form_kind else []),
                *(k.removeprefix("form:") for k in touch_kinds if k.startswith("form:")),
            }
        ),
        "lead_type": None,
    }
    record.update(extra)
    return record


V3_FIELDS = ("firmographics", "signals", "form_kinds", "lead_type")


def legacy(record: dict[str, Any]) -> dict[str, Any]:
    """The same record as written before lead_qualified v3 (no structured facts)."""
    return {k: v for k, v in record.items() if k not in V3_FIELDS}


def route(
    record: dict[str, Any],
    r: Roster | None,
    *,
    open_leads=None,
    cursors=None,
    now_ms: int = NOW,
    config: RoutingConfig | None = None,
) -> tuple[Plan, Decision, dict[str, Any], Any]:
    """Plan + reference selection + record, like the agent does with Redis."""
    config = config or default_routing_config()
    p = plan(record, r, config, now_ms=now_ms, roster_version=1)
    d = select_reference(
        p,
        open_leads if open_leads is not None else {},
        cursors if cursors is not None else {},
        lead_id=record["lead_id"],
        now_ms=now_ms,
    )
    a = assignment_record(p, d, record, r, config)
    return p, d, a.record, a
