"""A lead's marketing-owned lifecycle stage and MQL episode (pure): new -> nurture -> mql,
recycled after a recycling rejection, disqualified for good; sales-owned stages (sal, sql,
opportunity) keep their stage while the ``mql`` flag is still tracked.

``agents.scoring.rules`` moves the lead through them: ``transition`` after each evaluation
(event time: episodes and their numbering), ``label_stage`` once delivery is decided
(processing time), ``mql_undelivered`` / ``may_upgrade`` to decide what is sent.
"""

from __future__ import annotations

from agents.scoring.evaluation import Evaluation
from agents.scoring.model import ScoringModel
from agents.scoring.state import MQL_HISTORY_KEPT, LeadState

MQL_ELIGIBLE_STAGES = frozenset({"new", "nurture", "recycled", "mql"})
DISQUALIFIED = "disqualified"


def transition(lead: LeadState, ev: Evaluation, *, may_qualify: bool) -> bool:
    """Update stage and MQL flag from an evaluation; True when this is a new MQL crossing."""
    if lead.disqualified:
        lead.mql, lead.stage = False, DISQUALIFIED
        return False
    if lead.stage not in MQL_ELIGIBLE_STAGES:  # sales-owned: track the flag, never re-qualify
        lead.mql = ev.holds_mql if lead.mql else ev.qualifies
        return False
    crossed = False
    if lead.mql:
        lead.mql = ev.holds_mql
    elif may_qualify and ev.qualifies:
        lead.mql, crossed = True, True
        lead.mql_number += 1
        lead.qualified_at_ms = ev.at_ms
        lead.mql_history = [*lead.mql_history, [lead.mql_number, ev.at_ms, round(ev.score, 2)]][-MQL_HISTORY_KEPT:]
    label_stage(lead)
    return crossed


def label_stage(lead: LeadState) -> None:
    """Marketing-owned stage: ``mql`` only while an episode is open *and* was sent to sales; a
    historical (unsent) episode leaves the lead resting (nurture, or recycled). Sales-owned
    and disqualified leads keep their stage."""
    if lead.stage not in MQL_ELIGIBLE_STAGES or lead.disqualified:
        return
    lead.stage = "mql" if lead.mql_delivered else _resting_stage(lead)


def mql_undelivered(lead: LeadState) -> bool:
    """An open MQL episode whose LeadQualified has not been sent (a marketing-owned lead)."""
    return lead.mql and lead.mql_sent < lead.mql_number and not lead.disqualified and lead.stage in MQL_ELIGIBLE_STAGES


def may_upgrade(lead: LeadState, model: ScoringModel, ev_now: Evaluation, *, age_ms: int) -> bool:
    """A sent, open MQL that still holds at processing time, and an event recent enough to
    re-prioritise it (``mql_upgrades``)."""
    return (
        model.mql_upgrades.enabled
        and lead.stage == "mql"
        and lead.sent_priority is not None
        and age_ms <= model.upgrade_max_event_age_ms
        and ev_now.holds_mql
    )


def _resting_stage(lead: LeadState) -> str:
    """Marketing-owned stage of a lead that is not an MQL: a function of its history, not of
    the path (a transient MQL crossing between same-time events must not change the label)."""
    rejected = lead.crm_status is not None and lead.crm_status[2] == "rejected"
    return "recycled" if rejected else "nurture"
