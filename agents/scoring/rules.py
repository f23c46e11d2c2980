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

Stages (``agents.scoring.stages``): new -> nurture (gate failed or below threshold) -> mql, and
disqualified (bot, disposable domain, or a CRM rejection with a permanent disposition) which
never qualifies again. Sales stages (sal, sql, opportunity) keep their stage: the ``mql``
flag is tracked but no new MQL is emitted.

Dispositions. CRM statuses move the lead through the table in ``agents.disposition.rules``
(accepted -> sal, sql -> sql, converted/closed -> opportunity, rejected -> recycled with the
score reset, or disqualified for good; applied by ``agents.scoring.disposition_effects``);
``lead_dispositioned`` and data-quality issues (a rejection without a valid reason is *not*
applied, only reported) are emitted here, except conversions, which the disposition agent
publishes after matching the existing account. A form submitted after a permanent rejection yields no MQL and a ``returning_rejected_prospect``
issue. A recycled lead that crosses the threshold again is MQL number n + 1.

Reviews. Quiet leads change without events: an MQL decays below the threshold, or the
inactivity penalty becomes due. ``next_review_at_ms`` gives the exact time of the next such
change (closed-form decay crossing, see decay.py); the wiring keeps a due-time index and calls
``review`` only for due leads. A review never qualifies a lead (a score rising only because
a negative signal decayed is not buyer intent); the next event will.
"""

from __future__ import annotations

from agents.disposition.rules import DEFAULT_POLICY, DispositionPolicy
from agents.domain.events import CRM_STATUS, EVENT_KINDS, FORM_SUBMITTED, LeadEvent
from agents.domain.lead_facts import PriorityPolicy
from agents.scoring.disposition_effects import apply_crm_status, lifecycle_outputs, reset_score_in_place
from agents.scoring.evaluation import evaluate, inactivity_due_ms, time_score_falls_to
from agents.scoring.exceptions import ScoringError
from agents.scoring.fit import assess_fit
from agents.scoring.handoff import SCORE_THRESHOLD_TRIGGER, build_handoff
from agents.scoring.intake import absorb
from agents.scoring.lead_facts import decide_priority, facts_fields
from agents.scoring.model import ScoringModel
from agents.scoring.outputs import Output, VisitorLinked, qualified_output, scored_output
from agents.scoring.stages import label_stage, may_upgrade, mql_undelivered, transition
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
    explain: bool = True,
) -> tuple[LeadState, list[Output]]:
    """Apply one identified event. A duplicate (id in the dedup window) returns ``(state, [])``
    with the very same state object; otherwise ``state`` is left untouched and a new one returned.

    ``dispositions`` is the recycling policy (``config/sla.yaml``, ``dispositions``);
    ``priority`` routing's priority policy (``config/routing.yaml``), see the module docstring.
    ``explain=False`` leaves out the LeadScored output (the same state and other outputs): for
    callers that only follow a path of states, as the reorder window's rebuild does."""
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
            transition(lead, evaluate(lead, model, t), may_qualify=False)

    returning = (
        event.kind == FORM_SUBMITTED and lead.excluded_at_ms is not None and t > lead.excluded_at_ms
    )  # strictly after: same-ms events are order-free
    absorbed = absorb(lead, event, model)
    decision = apply_crm_status(lead, event, model, dispositions) if event.kind == CRM_STATUS else None
    fit = assess_fit(lead, model)
    if fit.rejection and fit.rejection not in lead.disqualifications:
        lead.disqualifications = sorted({*lead.disqualifications, fit.rejection})
        fit = assess_fit(lead, model)  # re-run so the checks list shows the disqualification
    ev = evaluate(lead, model, lead.as_of_ms, fit)
    transition(lead, ev, may_qualify=True)  # event time: episodes, numbering
    lead.model_version = model.version

    # Delivery (processing time): decided on the score as of the later of the lead's clock and
    # now, so a crossing in the past that has since decayed is history, not a hot lead today.
    decided_at = max(lead.as_of_ms, now_ms)
    ev_now = ev if decided_at == lead.as_of_ms else evaluate(lead, model, decided_at, fit)
    live = not event.backfill
    send, previous_hint, ranked = False, None, None
    if live and mql_undelivered(lead) and ev_now.qualifies:
        ranked = decide_priority(lead, ev_now, priority)
        send = True
        lead.mql_sent, lead.sent_priority = lead.mql_number, ranked.priority if ranked is not None else None
        label_stage(lead)
    elif live and priority is not None and may_upgrade(lead, model, ev_now, age_ms=decided_at - t):
        ranked = decide_priority(lead, ev_now, priority)
        sent = lead.sent_priority  # not None: may_upgrade
        if ranked is not None and sent is not None and ranked.priority < sent:  # "P1" < "P2"
            send, previous_hint = True, lead.sent_priority
            lead.sent_priority = ranked.priority

    cause_kind = MERGE if event.data.get("merged_from_visitor") else event.kind
    outputs: list[Output] = []
    if explain:
        outputs.append(
            scored_output(
                lead,
                model,
                ev,
                cause_event_id=event.event_id,
                cause_kind=cause_kind,
                occurred_at_ms=t,
                now_ms=now_ms,
            )
        )
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
    outputs.extend(lifecycle_outputs(lead, event, decision, returning=returning))
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
    transition(lead, ev, may_qualify=False)
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
    reset_score_in_place(lead, at_ms)
    return lead


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
