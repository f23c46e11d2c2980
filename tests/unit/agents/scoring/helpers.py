"""Builders shared by the scoring unit tests: readable event factories, and ``run`` over the
default model and priority policy (tests.repo_config) unless given another model."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

from agents.domain.events import LeadEvent
from agents.domain.identity import lead_id_for_email
from agents.scoring import ScoringModel, apply_event, parse_model
from tests.repo_config import default_priority, default_raw, default_scoring_model

REPO = Path(__file__).resolve().parents[4]


def model_with(**changes):
    """The default model with some keys changed: ``fit_gate__free_email_fails_gate=False``."""
    raw = copy.deepcopy(default_raw("scoring-model.yaml"))
    for dotted, value in changes.items():
        node = raw
        *path, last = dotted.split("__")
        for key in path:
            node = node[key]
        node[last] = value
    return parse_model(raw)


DAY = 86_400_000
HOUR = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z
CORP = "dana@acme.com"

_ids = itertools.count(1)


def _eid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def form(email: str = CORP, *, kind: str = "demo_request", at: int = T0, eid: str | None = None, **fields) -> LeadEvent:
    data = {
        "form_id": f"f-{kind}",
        "form_kind": kind,
        "email": email,
        "first_name": None,
        "last_name": None,
        "job_title": None,
        "company": None,
        "company_size": None,
        "industry": None,
        "country": None,
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
        "hidden_lead_source": None,
        "page_url": None,
        "consent_email": True,
        "consent_tracking": True,
        "honeypot_filled": False,
        "seconds_to_fill": 12.0,
        "visitor_id": None,
    }
    data.update(fields)
    return LeadEvent(
        eid or _eid("form"), "form_submitted", lead_id_for_email(email), data.get("visitor_id"), at, at, "json", data
    )


def director_form(email: str = CORP, **overrides) -> LeadEvent:
    """Director at a 500-person software company in the US (grade A)."""
    fields = {
        "first_name": "Dana",
        "job_title": "Director of Revenue Operations",
        "company": "Acme",
        "company_size": 500,
        "industry": "Software",
        "country": "US",
    }
    fields.update(overrides)
    return form(email, **fields)


def activity(
    email: str = CORP,
    kind: str = "page_view",
    *,
    page_type: str | None = None,
    at: int = T0,
    eid: str | None = None,
    visitor_id: str | None = None,
    **fields,
) -> LeadEvent:
    data = {
        "activity_kind": kind,
        "page_type": page_type,
        "url": None,
        "content_title": None,
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
        "email": email,
    }
    data.update(fields)
    lead_id = lead_id_for_email(email) if email else None
    return LeadEvent(eid or _eid("web"), "web_activity", lead_id, visitor_id, at, at, "json", data)


def page(email: str = CORP, page_type: str = "pricing", **kw) -> LeadEvent:
    return activity(email, "page_view", page_type=page_type, **kw)


def anonymous_page(visitor_id: str, page_type: str, *, at: int, eid: str | None = None, **fields) -> LeadEvent:
    return activity(None, "page_view", page_type=page_type, at=at, eid=eid, visitor_id=visitor_id, **fields)


def crm(email: str = CORP, status: str = "first_touch", *, at: int = T0, eid: str | None = None, **fields) -> LeadEvent:
    data = {
        "rep_id": "rep-1",
        "status": status,
        "touch_channel": None,
        "disposition": None,
        "account_id": None,
        "account_domain": None,
    }
    data.update(fields)
    return LeadEvent(eid or _eid("crm"), "crm_status", lead_id_for_email(email), None, at, at, "json", data)


def run(events, state=None, *, model: ScoringModel | None = None, now_ms: int | None = None, dedup_window: int = 512):
    """Apply events in order; returns (state, all outputs)."""
    model = model or default_scoring_model()
    outputs = []
    for event in events:
        state, out = apply_event(
            state,
            event,
            model,
            now_ms=now_ms or event.occurred_at_ms,
            dedup_window=dedup_window,
            priority=default_priority(),
        )
        outputs.extend(out)
    return state, outputs


def of(outputs, subject: str) -> list:
    return [o for o in outputs if o.subject == subject]


def breakdown(record) -> dict[str, float]:
    return {item["signal"]: item["points"] for item in record["breakdown"]}
