"""Routing's priority policy: the one place a lead's priority is decided (pure).

``classify(facts, config)``: every configured lead type that matches is collected and the
most urgent wins (ties: first listed); no match -> ``default_lead_type``. Then fast track
(score above the scoring model's fast-track threshold) raises to ``fast_track_priority``, and
"fit multiplies intent": a ``fit_bump.from_priority`` lead with one of ``fit_grades`` or from
one of ``segments`` becomes ``fit_bump.to_priority`` (an enterprise-fit P2 becomes P1).

A lead type matches on form kinds (``form_kinds``: any of them submitted), behavioural
signals adding points (``signals``: any; ``signals_all``: all) and ``requires_form`` (the lead
submitted some form: a form kind, or one of ``form_signals``).

Scoring applies the same function (``priority_policy(config)``, handed over by the
composition root) to the facts it puts in the LeadQualified, so ``priority_hint`` and
``lead_type`` in the record are this policy's answer, never a second one; routing classifies
the record's facts again with its configuration, and that decision is final.
"""

from __future__ import annotations

from functools import partial

from agents.domain.lead_facts import HasIntent, PriorityDecision, PriorityPolicy
from agents.routing.config import PRIORITIES, LeadType, RoutingConfig, better


def has_form(facts: HasIntent, config: RoutingConfig) -> bool:
    return bool(facts.form_kinds) or bool(facts.signals & config.form_signal_set)


def matches(lead_type: LeadType, facts: HasIntent, config: RoutingConfig) -> bool:
    if lead_type.form_kinds or lead_type.signals:
        if not (facts.form_kinds.intersection(lead_type.form_kinds) or facts.signals.intersection(lead_type.signals)):
            return False
    if not facts.signals.issuperset(lead_type.signals_all):
        return False
    return not lead_type.requires_form or has_form(facts, config)


def classify(facts: HasIntent, config: RoutingConfig) -> PriorityDecision:
    segment = config.segment_for(facts.company_size)
    matched = [t for t in config.lead_types if matches(t, facts, config)]
    if matched:
        best = min(matched, key=lambda t: PRIORITIES.index(t.priority))  # min() keeps the first on ties
        priority, lead_type = best.priority, best.name
        reason = f"{lead_type} -> {priority}"
    else:
        priority, lead_type = config.default_lead_type.priority, config.default_lead_type.name
        reason = f"no lead type matched -> {priority}"
    if config.fast_track_priority and facts.fast_track:
        raised = better(priority, config.fast_track_priority)
        if raised != priority:
            reason += f"; fast track {priority} -> {raised}"
            priority = raised
    bump = config.fit_bump
    if bump is not None and priority == bump.from_priority:
        why = None
        if facts.fit_grade and facts.fit_grade in bump.fit_grades:
            why = f"fit grade {facts.fit_grade}"
        elif segment and segment in bump.segments:
            why = f"{segment} segment"
        if why:
            reason += f"; {why}: {priority} -> {bump.to_priority} (fit multiplies intent)"
            priority = bump.to_priority
    return PriorityDecision(priority=priority, lead_type=lead_type, segment=segment, reason=reason)


def priority_policy(config: RoutingConfig) -> PriorityPolicy:
    """``classify`` bound to ``config``: what the composition root hands to scoring."""
    return partial(classify, config=config)
