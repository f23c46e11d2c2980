"""What a CRM status does to a lead's scoring state, and the records it yields (pure).

The table of statuses and dispositions is ``agents.disposition.rules``; the scoring rules
(``agents.scoring.rules``) apply its effects here: the stage a status moves the lead to, the
score reset of a recycling rejection, and the ``lead_dispositioned`` / data-quality records
(a rejection without a valid reason is *not* applied, only reported; a form from a prospect
rejected for good is a ``returning_rejected_prospect`` issue). Conversions are published by
the disposition agent after it matched the account.
"""

from __future__ import annotations

from agents.disposition.rules import (
    REJECTION_WITH_INVALID_DISPOSITION,
    REJECTION_WITHOUT_DISPOSITION,
    RETURNING_REJECTED_PROSPECT,
    Decision,
    DispositionPolicy,
    decide,
    disposition_record,
    issue_record,
)
from agents.domain.events import LeadEvent
from agents.scoring.intake import normalize_domain
from agents.scoring.model import ScoringModel
from agents.scoring.outputs import DispositionedOutput, IssueOutput, Output
from agents.scoring.state import LeadState


def reset_score_in_place(lead: LeadState, at_ms: int) -> None:
    """``agents.scoring.rules.reset_score`` on ``lead`` itself (a recycling rejection applies it too)."""
    lead.signals = {}
    lead.score_reset_at_ms = max(at_ms, lead.score_reset_at_ms or at_ms)
    lead.as_of_ms = max(lead.as_of_ms, at_ms)
    lead.last_engaged_ms = max(at_ms, lead.last_engaged_ms or at_ms)
    lead.mql = False
    if lead.stage == "mql":
        lead.stage = "nurture"


def apply_crm_status(lead: LeadState, event: LeadEvent, model: ScoringModel, policy: DispositionPolicy) -> Decision:
    """Apply a CRM status's lifecycle effect. The score reset of a recycling rejection always
    applies (resets commute); the stage follows the newest status by (event time, event id),
    so a late, older status never overwrites a newer one. Permanent exclusions are recorded
    by intake (``crm_rejected:<reason>``) and enforced by ``agents.scoring.stages.transition``."""
    data = event.data
    decision = decide(
        data.get("status") or "unknown",
        data.get("disposition"),
        permanent=model.permanent_dispositions,
        policy=policy,
        invalid_disposition=data.get("disposition_invalid"),
    )
    if decision.score_reset:
        reset_score_in_place(lead, event.occurred_at_ms)
    if decision.stage is not None:
        order = [event.occurred_at_ms, event.event_id]
        if lead.crm_status is None or order > list(lead.crm_status[:2]):
            lead.stage = decision.stage
            lead.crm_status = [*order, decision.status, decision.disposition]
    return decision


def lifecycle_outputs(
    lead: LeadState,
    event: LeadEvent,
    decision: Decision | None,
    *,
    returning: bool,
) -> list[Output]:
    """lead_dispositioned / data_quality_issue records, built after the stage is final."""
    t, data = event.occurred_at_ms, event.data
    outputs: list[Output] = []
    if decision is not None:
        if decision.publishes_disposition and not decision.needs_account:  # conversions: the disposition agent
            outputs.append(
                DispositionedOutput(
                    lead.lead_id,
                    disposition_record(
                        decision,
                        lead_id=lead.lead_id,
                        crm_event_id=event.event_id,
                        occurred_at_ms=t,
                        new_stage=lead.stage,
                        rep_id=data.get("rep_id"),
                        account_id=data.get("account_id"),
                        account_domain=normalize_domain(data.get("account_domain")),
                    ),
                )
            )
        unapplied = (REJECTION_WITHOUT_DISPOSITION, REJECTION_WITH_INVALID_DISPOSITION)
        for code, detail in decision.issues:
            outputs.append(
                IssueOutput(
                    lead.lead_id,
                    issue_record(
                        code,
                        detail,
                        lead_id=lead.lead_id,
                        source_event_id=event.event_id,
                        occurred_at_ms=t,
                    ),
                    status=decision.status if code in unapplied else None,
                )
            )
    if returning:
        reasons = ", ".join(d.split(":", 1)[1] for d in lead.disqualifications if d.startswith("crm_rejected:"))
        kind = data.get("form_kind") or "unknown"
        outputs.append(
            IssueOutput(
                lead.lead_id,
                issue_record(
                    RETURNING_REJECTED_PROSPECT,
                    f"{kind} form from a prospect sales excluded for good ({reasons}); no MQL created, "
                    f"stage stays {lead.stage}",
                    lead_id=lead.lead_id,
                    source_event_id=event.event_id,
                    occurred_at_ms=t,
                ),
            )
        )
    return outputs
