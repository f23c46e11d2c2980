"""The structured facts a LeadQualified carries (``lead_qualified`` v3), and its priority.

- ``firmographics``: company size, industry and country from the lead's profile (the latest
  non-empty value of each, by event time), the company-size segment of routing's policy, and
  the fit grade;
- ``signals``: the behavioural signals with their points as of the decision, in model order
  (fit points and the inactivity penalty stay in ``breakdown`` only);
- ``form_kinds``: the distinct kinds of the forms among the lead's touches (``intake`` keeps
  the newest ``max(5, handoff.last_touches)``), sorted;
- ``lead_type`` and ``priority_hint``: the decision of *routing's* priority policy on those
  facts. Scoring has no priority rules of its own: the composition root hands it the policy
  (``agents.domain.lead_facts.PriorityPolicy``, built from ``config/routing.yaml``). Without
  one (a unit test, a tool) both are null and a sent MQL is never upgraded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.domain.lead_facts import IntentFacts, PriorityDecision, PriorityPolicy
from agents.scoring.evaluation import INACTIVITY_SIGNAL

if TYPE_CHECKING:
    from agents.scoring.evaluation import Evaluation
    from agents.scoring.state import LeadState

FORM_TOUCH_PREFIX = "form:"


def form_kinds(state: LeadState) -> frozenset[str]:
    return frozenset(
        t.kind.removeprefix(FORM_TOUCH_PREFIX) for t in state.touches if t.kind.startswith(FORM_TOUCH_PREFIX)
    )


def company_size(state: LeadState) -> int | None:
    size = state.profile.get("company_size")
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def intent_facts(state: LeadState, ev: Evaluation) -> IntentFacts:
    """What the priority is decided on: the same facts the record carries."""
    return IntentFacts(
        form_kinds=form_kinds(state),
        signals=ev.active_signals,
        fit_grade=ev.fit.grade,
        company_size=company_size(state),
        fast_track=ev.fast_track,
    )


def decide_priority(state: LeadState, ev: Evaluation, policy: PriorityPolicy | None) -> PriorityDecision | None:
    return None if policy is None else policy(intent_facts(state, ev))


def facts_fields(state: LeadState, ev: Evaluation, decision: PriorityDecision | None) -> dict[str, Any]:
    """The v3 fields of the LeadQualified record (``priority_hint`` is set with the others)."""
    profile = state.profile
    return {
        "firmographics": {
            "company_size": company_size(state),
            "industry": profile.get("industry"),
            "country": profile.get("country"),
            "segment": decision.segment if decision is not None else None,
            "fit_grade": ev.fit.grade,
        },
        "signals": [
            {"signal": item.signal, "points": item.points}
            for item in ev.engagement_items
            if item.signal != INACTIVITY_SIGNAL
        ],
        "form_kinds": sorted(form_kinds(state)),
        "lead_type": decision.lead_type if decision is not None else None,
    }
