"""What the scoring rules hand back to the wiring: small frozen output records.

``ScoredOutput`` / ``QualifiedOutput`` carry a ``record`` dict whose keys are exactly the
Avro fields of ``schemas/lead_scored.v2.avsc`` / ``schemas/lead_qualified.v3.avsc`` (times
as int epoch ms; the v3 facts come from ``agents.scoring.lead_facts``). ``VisitorLinked`` is
an instruction for the visitor agent, not an Avro output: it tells the visitor buffer which
lead a visitor turned out to be.

Output ids are deterministic (``deterministic_id``) over what makes the output unique, so
a redelivered or replayed cause produces the same id:
- LeadScored: lead id + cause event id (a sweep's cause id names what became due);
- LeadQualified: lead id + mql number (one MQL per crossing, whichever event crossed); a
  priority upgrade of that MQL: lead id + mql number + the new priority hint (one per raise);
- LeadDispositioned / DataQualityIssueFound: lead id + the CRM (or form) event id, see
  ``agents.disposition.rules``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.domain.identity import deterministic_id
from agents.scoring.breakdown import BreakdownItem  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from agents.scoring.evaluation import Evaluation
    from agents.scoring.model import ScoringModel
    from agents.scoring.state import LeadState

LEAD_SCORED = "lead_scored"
LEAD_QUALIFIED = "lead_qualified"
VISITOR_LINKED = "visitor_linked"
LEAD_DISPOSITIONED = "lead_dispositioned"
DATA_QUALITY_ISSUE = "data_quality_issue"


@dataclass(frozen=True, slots=True)
class ScoredOutput:
    key: str  # lead id
    record: dict[str, Any]
    subject: str = LEAD_SCORED


@dataclass(frozen=True, slots=True)
class QualifiedOutput:
    key: str  # lead id
    record: dict[str, Any]
    subject: str = LEAD_QUALIFIED


@dataclass(frozen=True, slots=True)
class VisitorLinked:
    """Instruction: the anonymous ``visitor_id`` is ``lead_id`` (send to the visitor topic)."""

    visitor_id: str
    lead_id: str
    subject: str = VISITOR_LINKED

    @property
    def key(self) -> str:
        return self.visitor_id

    @property
    def record(self) -> dict[str, Any]:
        return {"visitor_id": self.visitor_id, "lead_id": self.lead_id}


@dataclass(frozen=True, slots=True)
class DispositionedOutput:
    """A ``lead_dispositioned`` record (fields of schemas/lead_dispositioned.v1.avsc)."""

    key: str  # lead id
    record: dict[str, Any]
    subject: str = LEAD_DISPOSITIONED


@dataclass(frozen=True, slots=True)
class IssueOutput:
    """A ``data_quality_issue`` record. ``status`` is set when the issue is a CRM status that
    could not be applied (a rejection without a valid reason): the wiring counts it in
    ``leadflow_dispositions_total{status, disposition="none"}`` (disposition completeness)."""

    key: str
    record: dict[str, Any]
    status: str | None = None
    subject: str = DATA_QUALITY_ISSUE


Output = ScoredOutput | QualifiedOutput | VisitorLinked | DispositionedOutput | IssueOutput


def scored_id(lead_id: str, cause_event_id: str) -> str:
    return deterministic_id(lead_id, "scored", cause_event_id, prefix="ls_")


def qualified_id(lead_id: str, mql_number: int) -> str:
    return deterministic_id(lead_id, "mql", mql_number, prefix="mql_")


def upgrade_id(lead_id: str, mql_number: int, priority: str) -> str:
    """The re-issued LeadQualified raising MQL ``mql_number`` to ``priority``: priorities only
    rise within an MQL, so (mql number, new priority) names the upgrade."""
    return deterministic_id(lead_id, "mql", mql_number, "upgrade", priority, prefix="mql_")


def source_of(touch_channel: str | None, state: LeadState, model: ScoringModel) -> str | None:
    """A known channel, else 'unknown' when a capture had no source, else None (no capture yet)."""
    if touch_channel is not None:
        return touch_channel
    return model.attribution.missing_channel if state.unattributed_capture else None


def account_key(state: LeadState, model: ScoringModel, email_domain: str | None) -> str | None:
    """The CRM's account domain when sales linked one, else the corporate email domain."""
    if state.crm_account_domain:
        return state.crm_account_domain
    if email_domain and email_domain not in model.free_email_domains and email_domain not in model.disposable_domains:
        return email_domain
    return state.crm_account_id


def scored_output(
    state: LeadState,
    model: ScoringModel,
    ev: Evaluation,
    *,
    cause_event_id: str,
    cause_kind: str,
    occurred_at_ms: int,
    now_ms: int,
) -> ScoredOutput:
    record = {
        "event_id": scored_id(state.lead_id, cause_event_id),
        "lead_id": state.lead_id,
        "cause_event_id": cause_event_id,
        "cause_kind": cause_kind,
        "occurred_at": occurred_at_ms,
        "scored_at": now_ms,
        "stage": state.stage,
        # The score that can qualify: 0 while the gate fails, so a bot never shows a hot 70.
        # The points it would have are ungated_score; gate_failures says why it is 0.
        "score": _points(ev.score) if ev.fit.passed else 0.0,
        "ungated_score": _points(ev.score),
        "gate_passed": ev.fit.passed,
        "gate_failures": [failure.to_record() for failure in ev.fit.gate_failures],
        "fit_score": _points(ev.fit_score),
        "engagement_score": _points(ev.engagement_score),
        "fit_grade": ev.fit.grade,
        "fit_passed": ev.fit.passed,
        "breakdown": [item.to_record() for item in ev.breakdown],
        "model_version": model.version,
        "event_count": state.event_count,
        "first_touch_source": source_of(state.first_touch.channel if state.first_touch else None, state, model),
        "last_touch_source": source_of(state.last_touch.channel if state.last_touch else None, state, model),
        "account_key": account_key(state, model, ev.fit.email_domain),
        "mql": state.mql_delivered,  # an MQL sales was sent; a suppressed historical crossing is not
    }
    return ScoredOutput(key=state.lead_id, record=record)


def qualified_output(
    state: LeadState,
    model: ScoringModel,
    ev: Evaluation,
    *,
    handoff: dict[str, Any],
    facts: dict[str, Any],
    priority_hint: str | None,
    occurred_at_ms: int,
    now_ms: int,
    cause_received_at_ms: int | None,
    previous_priority_hint: str | None = None,
) -> QualifiedOutput:
    """The MQL (``previous_priority_hint`` None) or a priority upgrade of it: same mql_number,
    its own id, ``upgrade_of`` = the MQL's id. ``ev`` is the evaluation the decision used
    (as of processing time), so score, breakdown and fast_track are the ones decided on.
    ``facts``: the v3 fields (firmographics, signals, form_kinds, lead_type)."""
    mql_id = qualified_id(state.lead_id, state.mql_number)
    upgrade = previous_priority_hint is not None
    record = {
        "event_id": upgrade_id(state.lead_id, state.mql_number, priority_hint or "") if upgrade else mql_id,
        "lead_id": state.lead_id,
        "email": state.email or "",
        "occurred_at": occurred_at_ms,
        "qualified_at": now_ms,
        "mql_number": state.mql_number,
        "score": _points(ev.score),
        "fit_grade": ev.fit.grade,
        "fast_track": ev.fast_track,
        "breakdown": [item.to_record() for item in ev.breakdown],
        "model_version": model.version,
        "handoff": handoff,
        "first_touch_source": source_of(state.first_touch.channel if state.first_touch else None, state, model),
        "last_touch_source": source_of(state.last_touch.channel if state.last_touch else None, state, model),
        "account_key": account_key(state, model, ev.fit.email_domain),
        "company": state.profile.get("company"),
        "job_title": state.profile.get("job_title"),
        "priority_hint": priority_hint,
        "cause_received_at": cause_received_at_ms,
        "upgrade_of": mql_id if upgrade else None,
        "previous_priority_hint": previous_priority_hint,
        "firmographics": facts["firmographics"],
        "signals": facts["signals"],
        "form_kinds": facts["form_kinds"],
        "lead_type": facts["lead_type"],
    }
    return QualifiedOutput(key=state.lead_id, record=record)


def _points(value: float) -> float:
    """Two decimals for readers; + 0.0 turns -0.0 into 0.0."""
    return round(value, 2) + 0.0
