"""The pure scoring state machine the Faust wiring calls (no framework imports).

    apply_event(state, event, model, now_ms=..., dedup_window=512) -> (state, outputs)
    review(state, model, now_ms=...)                              -> (state, outputs)
    next_review_at_ms(state, model)                               -> int | None
    reset_score(state, at_ms)                                     -> state
    apply_visitor_event / link_visitor                            (see visitors.py)

Time. Each lead has its own clock, ``state.as_of_ms``: the newest event time applied (or
the last review time). An event is scored as of ``max(event time, clock)``; a late event
adds its points already decayed to the clock. The lead's *state* is kept in event time: the
same events give the same signals, score, MQL episodes and output ids whenever they are
processed (replays agree).

MQL episodes (event time). A lead crosses into MQL when it passes the fit gate and its score
at its clock is > the threshold: ``mql`` turns true and ``mql_number`` counts the crossing
(historical ones included, so a replay numbers the same). The episode ends when the score
falls to ``mql_rearm_at`` or the gate fails; a later crossing is a new episode. Before an
event is applied the lead's clock is moved to the event's time and an episode that decayed
away meanwhile is ended first, so the outcome does not depend on whether a review ran.

Delivery (processing time). Sending is decided on the score as of ``D = max(clock, now_ms)``,
the later of the event time and the processing time: after each *live* event, an open episode
whose LeadQualified has not been sent yet is sent when, at D, the gate passes and the score
is > ``thresholds.mql`` (strictly); ``fast_track``, the priority hint, and the record's score
and breakdown are those as of D. The priority is not scoring's: ``priority`` (routing's policy,
handed over by the composition root; ``agents.scoring.lead_facts``) decides it on the facts
the record carries; without it the record has no hint and is never upgraded. Exactly one
LeadQualified per episode: id from lead id + mql_number, whichever event sent it. The ledger
``mql_sent`` (highest mql_number sent) and ``sent_priority`` is the only processing-time part
of the state. A crossing whose score has
decayed to <= the threshold by D (a backfill, an offline upload, a replay, a CRM import, a
publisher's retry queue) is *historical*: counted, never sent. Its lead_scored says what the
state says: ``stage`` nurture (recycled after a recycling rejection), ``mql`` false, and the
event-time score. It is not an MQL, and no review is scheduled for it. A later live event
while the episode is still open sends that episode's LeadQualified (same mql_number) if the
score at *its* processing time qualifies; after the episode ended, a live event qualifies the
lead as usual (next mql_number, the same number a run that sent the history would use). There
is no lateness cliff: only decay of the score decides, so re-applying events a few seconds
later (a restart) changes a decision only for a score within ~1e-5 points of a threshold.

Backfill. An event with ``backfill`` set (input header ``leadflow-backfill: 1``, see
``agents.domain.events``; ``leadflow replay --backfill``, ``leadflow publish --backfill``)
updates the state exactly like a live one but never sends a LeadQualified (MQL or upgrade),
so no assignment or SLA clock follows. Crossings in it are historical episodes as above.

Priority upgrades. While an MQL that was sent is open (stage ``mql``) and still holds at D, a
live event not older than ``mql_upgrades.max_event_age_days`` at D after which its priority
(routing's policy on the facts as of D) is more urgent than ``sent_priority`` re-issues the
LeadQualified: same mql_number, the new ``priority_hint``, ``previous_priority_hint`` and
``upgrade_of`` (the MQL's id), id from lead id + mql_number + the new priority - one per
raise, the same id on redelivery. Routing re-routes or upgrades it (``config/routing.yaml``, ``priority_upgrade``).

Stages handled here: new -> nurture (gate failed or below threshold) -> mql, and
disqualified (bot, disposable domain, or a CRM rejection with a permanent disposition) which
never qualifies again. Sales stages (sal, sql, opportunity) keep their stage: the ``mql``
flag is tracked but no new MQL is emitted.

Dispositions. CRM statuses move the lead through the table in ``agents.disposition.rules``
(accepted -> sal, sql -> sql, converted/closed -> opportunity, rejected -> recycled with the
score reset, or disqualified for good); ``lead_dispositioned`` and data-quality issues
(a rejection without a valid reason is *not* applied, only reported) are emitted here, except
conversions, which the disposition agent publishes after matching the existing account. A
form submitted after a permanent rejection yields no MQL and a ``returning_rejected_prospect``
issue. A recycled lead that crosses the threshold again is MQL number n + 1.

Reviews. Quiet leads change without events: an MQL decays below the threshold, or the
inactivity penalty becomes due. ``next_review_at_ms`` gives the exact time of the next such
change (closed-form decay crossing, see decay.py); the wiring keeps a due-time index and calls
``review`` only for due leads. A review never qualifies a lead (a score rising only because
a negative signal decayed is not buyer intent); the next event will.
"""

from __future__ import annotations

from agents.disposition.rules import (
    DEFAULT_POLICY,
    REJECTION_WITH_INVALID_DISPOSITION,
    REJECTION_WITHOUT_DISPOSITION,
    RETURNING_REJECTED_PROSPECT,
    Decision,
    DispositionPolicy,
    decide,
    disposition_record,
    issue_record,
)
from agents.domain.events import CRM_STATUS, EVENT_KINDS, FORM_SUBMITTED, LeadEvent
from agents.domain.lead_facts import PriorityPolicy
from agents.scoring.evaluation import Evaluation, evaluate, inactivity_due_ms, time_score_falls_to
from agents.scoring.exceptions import ScoringError
from agents.scoring.fit import assess_fit
from agents.scoring.handoff import SCORE_THRESHOLD_TRIGGER, build_handoff
from agents.scoring.intake import absorb, normalize_domain
from agents.scoring.lead_facts import decide_priority, facts_fields
from agents.scoring.model import ScoringModel
from agents.scoring.outputs import (
    DispositionedOutput,
    IssueOutput,
    Output,
    VisitorLinked,
    qualified_output,
    scored_output,
)
from agents.scoring.state import LeadState
from agents.scoring.visitors import apply_visitor_event, link_visitor

__all__ = [
    "apply_event",
    "review",
    "next_review_at_ms",
    "reset_score",
    "apply_visitor_event",
    "link_visitor",
    "DEFAULT_DEDUP_WINDOW",
]

DEFAULT_DEDUP_WINDOW = 512
MAX_LINKED_VISITORS = 20
MQL_ELIGIBLE_STAGES = frozenset({"new", "nurture", "recycled", "mql"})
DISQUALIFIED = "disqualified"
SWEEP, MERGE = "sweep", "merge"


def dedup_key_of(event: LeadEvent) -> str:
    """Publisher event ids are unique per source system, not across them: a CRM event "123"
    must not be mistaken for a form event "123"."""
    return f"{event.kind}:{event.event_id}"


def apply_event(
    state: LeadState | None,
    event: LeadEvent,
    model: ScoringModel,
    *,
    now_ms: int,
    dedup_window: int = DEFAULT_DEDUP_WINDOW,
    dispositions: DispositionPolicy = DEFAULT_POLICY,
    priority: PriorityPolicy | None = None,
) -> tuple[LeadState, list[Output]]:
    """Apply one identified event. A duplicate (id in the dedup window) returns ``(state, [])``
    with the very same state object; otherwise ``state`` is left untouched and a new one returned.

    ``dispositions`` is the recycling policy (``config/sla.yaml``, ``dispositions``);
    ``priority`` routing's priority policy (``config/routing.yaml``), see the module docstring."""
    lead_id = _check(state, event, dedup_window)
    dedup_key = dedup_key_of(event)
    if state is not None and dedup_key in state.recent_event_ids:
        return state, []
    t = event.occurred_at_ms
    lead = state.clone() if state is not None else LeadState(lead_id=lead_id, as_of_ms=t)
    lead.recent_event_ids = [*lead.recent_event_ids, dedup_key][-dedup_window:]
    lead.event_count += 1
    lead.created_at_ms = t if lead.created_at_ms is None else min(lead.created_at_ms, t)
    if t > lead.as_of_ms:
        lead.as_of_ms = t
        if lead.mql:  # end an MQL that decayed away before this event (review may have lagged)
            _transition(lead, evaluate(lead, model, t), may_qualify=False)

    returning = (
        event.kind == FORM_SUBMITTED and lead.excluded_at_ms is not None and t > lead.excluded_at_ms
    )  # strictly after: same-ms events are order-free
    absorbed = absorb(lead, event, model)
    decision = _apply_crm(lead, event, model, dispositions) if event.kind == CRM_STATUS else None
    fit = assess_fit(lead, model)
    if fit.rejection and fit.rejection not in lead.disqualifications:
        lead.disqualifications = sorted({*lead.disqualifications, fit.rejection})
        fit = assess_fit(lead, model)  # re-run so the checks list shows the disqualification
    ev = evaluate(lead, model, lead.as_of_ms, fit)
    _transition(lead, ev, may_qualify=True)  # event time: episodes, numbering
    lead.model_version = model.version

    # Delivery (processing time): decided on the score as of the later of the lead's clock and
    # now, so a crossing in the past that has since decayed is history, not a hot lead today.
    decided_at = max(lead.as_of_ms, now_ms)
    ev_now = ev if decided_at == lead.as_of_ms else evaluate(lead, model, decided_at, fit)
    live = not event.backfill
    send, previous_hint, ranked = False, None, None
    if live and _undelivered(lead) and ev_now.qualifies:
        ranked = decide_priority(lead, ev_now, priority)
        send = True
        lead.mql_sent, lead.sent_priority = lead.mql_number, ranked.priority if ranked is not None else None
        _label(lead)
    elif live and priority is not None and _may_upgrade(lead, model, ev_now, age_ms=decided_at - t):
        ranked = decide_priority(lead, ev_now, priority)
        sent = lead.sent_priority  # not None: _may_upgrade
        if ranked is not None and sent is not None and ranked.priority < sent:  # "P1" < "P2"
            send, previous_hint = True, lead.sent_priority
            lead.sent_priority = ranked.priority

    cause_kind = MERGE if event.data.get("merged_from_visitor") else event.kind
    outputs: list[Output] = [
        scored_output(
            lead,
            model,
            ev,
            cause_event_id=event.event_id,
            cause_kind=cause_kind,
            occurred_at_ms=t,
            now_ms=now_ms,
        )
    ]
    if send:
        trigger = absorbed.trigger if absorbed.signal else SCORE_THRESHOLD_TRIGGER
        outputs.append(
            qualified_output(
                lead,
                model,
                ev_now,
                handoff=build_handoff(lead, model, ev_now, trigger),
                facts=facts_fields(lead, ev_now, ranked),
                priority_hint=ranked.priority if ranked is not None else None,
                occurred_at_ms=t,
                now_ms=now_ms,
                # A merged anonymous page arrived long ago; its broker time says nothing about latency.
                cause_received_at_ms=None if cause_kind == MERGE else event.received_at_ms,
                previous_priority_hint=previous_hint,
            )
        )
    visitor = absorbed.visitor_id
    if visitor and visitor not in lead.linked_visitor_ids:
        lead.linked_visitor_ids = sorted([*lead.linked_visitor_ids, visitor])[-MAX_LINKED_VISITORS:]
        outputs.append(VisitorLinked(visitor_id=visitor, lead_id=lead.lead_id))
    outputs.extend(_lifecycle_outputs(lead, event, decision, returning=returning))
    return lead, outputs


def review(state: LeadState, model: ScoringModel, *, now_ms: int) -> tuple[LeadState, list[Output]]:
    """Re-evaluate a quiet lead at ``now_ms``: end a decayed MQL, apply a due inactivity penalty.

    Emits one LeadScored (cause_kind "sweep") when something changed, nothing otherwise. The
    lead's clock moves to ``now_ms`` either way, so the next review time moves forward too.
    """
    if state.disqualified or now_ms <= state.as_of_ms:
        return state, []
    lead = state.clone()
    lead.as_of_ms = now_ms
    ev = evaluate(lead, model, now_ms)
    _transition(lead, ev, may_qualify=False)
    reasons = []
    if state.mql_delivered and not lead.mql:  # an MQL never sent ends silently
        reasons.append(f"mql_ended:{state.mql_number}")
    due = inactivity_due_ms(state, model)
    if due is not None and model.inactivity.points and state.as_of_ms < due <= now_ms:
        reasons.append(f"inactive_since:{due - model.inactivity_ms}")
    if not reasons:
        return lead, []
    lead.model_version = model.version
    # The cause id names what became due (not when the sweep ran): a repeated sweep has the same id.
    cause = f"{SWEEP}:" + "+".join(reasons)
    return lead, [
        scored_output(lead, model, ev, cause_event_id=cause, cause_kind=SWEEP, occurred_at_ms=now_ms, now_ms=now_ms)
    ]


def next_review_at_ms(state: LeadState, model: ScoringModel) -> int | None:
    """When ``review`` will next have something to do for this lead, or None (nothing pending).

    The earlier of: the inactivity penalty becoming due, and - for an MQL that was sent - the
    moment its decaying score falls to the re-arm level. A time <= the lead's clock means "due now".
    """
    if state.disqualified:
        return None
    candidates = []
    due = inactivity_due_ms(state, model)
    if due is not None and model.inactivity.points and due > state.as_of_ms:
        candidates.append(due)
    if state.mql_delivered:  # an episode never sent needs no review: nothing to tell anyone
        if not assess_fit(state, model).passed:  # e.g. a stricter model was deployed
            candidates.append(state.as_of_ms)
        falls = time_score_falls_to(state, model, model.rearm_at)
        if falls is not None:
            candidates.append(falls)
    return min(candidates, default=None)


def reset_score(state: LeadState, at_ms: int) -> LeadState:
    """Recycling hook: behavioural points start from zero at ``at_ms``; fit and history stay.

    Events at or before ``at_ms`` still arrive as touches but no longer score. The inactivity
    clock restarts at the reset. The MQL flag drops; the caller sets the stage (e.g. recycled),
    and the next crossing is a new MQL (mql_number + 1).
    """
    lead = state.clone()
    _reset_in_place(lead, at_ms)
    return lead


def _reset_in_place(lead: LeadState, at_ms: int) -> None:
    lead.signals = {}
    lead.score_reset_at_ms = max(at_ms, lead.score_reset_at_ms or at_ms)
    lead.as_of_ms = max(lead.as_of_ms, at_ms)
    lead.last_engaged_ms = max(at_ms, lead.last_engaged_ms or at_ms)
    lead.mql = False
    if lead.stage == "mql":
        lead.stage = "nurture"


# --- Dispositions (the table is agents.disposition.rules; the effects are applied here) ---------


def _apply_crm(lead: LeadState, event: LeadEvent, model: ScoringModel, policy: DispositionPolicy) -> Decision:
    """Apply a CRM status's lifecycle effect. The score reset of a recycling rejection always
    applies (resets commute); the stage follows the newest status by (event time, event id),
    so a late, older status never overwrites a newer one. Permanent exclusions are recorded
    by intake (``crm_rejected:<reason>``) and enforced by ``_transition``."""
    data = event.data
    decision = decide(
        data.get("status") or "unknown",
        data.get("disposition"),
        permanent=model.permanent_dispositions,
        policy=policy,
        invalid_disposition=data.get("disposition_invalid"),
    )
    if decision.score_reset:
        _reset_in_place(lead, event.occurred_at_ms)
    if decision.stage is not None:
        order = [event.occurred_at_ms, event.event_id]
        if lead.crm_status is None or order > list(lead.crm_status[:2]):
            lead.stage = decision.stage
            lead.crm_status = [*order, decision.status, decision.disposition]
    return decision


def _lifecycle_outputs(
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


def _transition(lead: LeadState, ev: Evaluation, *, may_qualify: bool) -> bool:
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
    _label(lead)
    return crossed


def _label(lead: LeadState) -> None:
    """Marketing-owned stage: ``mql`` only while an episode is open *and* was sent to sales; a
    historical (unsent) episode leaves the lead resting (nurture, or recycled). Sales-owned
    and disqualified leads keep their stage."""
    if lead.stage not in MQL_ELIGIBLE_STAGES or lead.disqualified:
        return
    lead.stage = "mql" if lead.mql_delivered else _resting_stage(lead)


def _undelivered(lead: LeadState) -> bool:
    """An open MQL episode whose LeadQualified has not been sent (a marketing-owned lead)."""
    return lead.mql and lead.mql_sent < lead.mql_number and not lead.disqualified and lead.stage in MQL_ELIGIBLE_STAGES


def _may_upgrade(lead: LeadState, model: ScoringModel, ev_now: Evaluation, *, age_ms: int) -> bool:
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


def _check(state: LeadState | None, event: LeadEvent, dedup_window: int) -> str:
    """The event's lead id, once the event is known to apply to ``state``."""
    if event.lead_id is None:
        raise ScoringError(f"event {event.event_id}: anonymous events go through apply_visitor_event")
    if event.kind not in EVENT_KINDS:
        raise ScoringError(f"event {event.event_id}: unknown kind {event.kind!r}")
    if state is not None and state.lead_id != event.lead_id:
        raise ScoringError(f"event {event.event_id} for {event.lead_id} applied to state of {state.lead_id}")
    if dedup_window < 1:
        raise ValueError("dedup_window must be >= 1")
    return event.lead_id
