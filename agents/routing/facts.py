"""What routing knows about a lead, read from its LeadQualified record, and its priority.

Evidence comes only from the MQL record (routing keeps no lead state of its own):
- form kinds: the trigger (``contact_request (demo_request form)``) and the last touches
  (``form:webinar_registration``);
- behavioural signals: the breakdown items with positive points, plus the trigger's signal;
- firmographics for territory/attribute rules: ``country``, ``company_size``, ``industry``
  when the record carries them; until then they are read from the fit checks the handoff
  lists (``icp_geography: passed (US)``, ``icp_company_size: passed (500 employees)``,
  ``icp_industry: failed (logistics)``);
- the account domain: ``account_key`` when it is a domain, else the email's domain.

Priority (``classify``): every configured lead type that matches is collected and the most
urgent wins (ties: first listed); no match -> the scoring model's ``priority_hint`` (if
``default_lead_type.use_priority_hint``) or the default type's priority. Then fast track
(score above the fast-track threshold) raises to ``fast_track_priority``, and "fit
multiplies intent": a ``fit_bump.from_priority`` lead with one of ``fit_grades`` or from one
of ``segments`` becomes ``fit_bump.to_priority`` (an enterprise-fit P2 becomes P1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agents.routing.config import PRIORITIES, LeadType, RoutingConfig, better
from agents.routing.exceptions import RoutingError

SCORE_THRESHOLD_TRIGGER = "score_threshold"
_TRIGGER_FORM = re.compile(r"\((\w+) form\)")
_CHECK = re.compile(r"^(\w+): (\w+)(?: \((.*)\))?$")
_COUNTRY = re.compile(r"^([A-Za-z]{2})\b")
_SIZE = re.compile(r"^(\d+) employees")


@dataclass(frozen=True, slots=True)
class LeadFacts:
    lead_id: str
    mql_event_id: str
    mql_number: int
    score: float
    fit_grade: str | None
    fast_track: bool
    priority_hint: str | None
    trigger: str
    domain: str | None  # account domain for account-owner lookup
    country: str | None
    company_size: int | None
    industry: str | None  # lower-case
    form_kinds: frozenset[str]
    signals: frozenset[str]
    has_form: bool


@dataclass(frozen=True, slots=True)
class PriorityDecision:
    priority: str
    lead_type: str
    segment: str | None
    reason: str  # e.g. "demo_request -> P1; fit grade A"


def facts_from_mql(record: dict[str, Any], config: RoutingConfig) -> LeadFacts:
    try:
        lead_id = record["lead_id"]
        event_id = record["event_id"]
    except KeyError as exc:
        raise RoutingError(f"lead_qualified record without {exc.args[0]}") from None
    handoff = record.get("handoff") or {}
    trigger = handoff.get("trigger") or SCORE_THRESHOLD_TRIGGER
    forms = set(_TRIGGER_FORM.findall(trigger))
    for touch in handoff.get("last_touches") or ():
        kind = touch.get("kind") or ""
        if kind.startswith("form:"):
            forms.add(kind[5:])
    signals = {item["signal"] for item in record.get("breakdown") or () if (item.get("points") or 0) > 0}
    trigger_signal = trigger.split(" ", 1)[0]
    if trigger_signal and trigger_signal != SCORE_THRESHOLD_TRIGGER:
        signals.add(trigger_signal)
    checks = _fit_checks(handoff.get("disqualifiers_checked") or ())
    country = record.get("country") or _country(checks.get("icp_geography"))
    size = record.get("company_size")
    if size is None:
        size = _size(checks.get("icp_company_size"))
    industry = record.get("industry") or _industry(checks.get("icp_industry"))
    return LeadFacts(
        lead_id=lead_id, mql_event_id=event_id, mql_number=int(record.get("mql_number") or 1),
        score=float(record.get("score") or 0.0), fit_grade=record.get("fit_grade"),
        fast_track=bool(record.get("fast_track")), priority_hint=record.get("priority_hint"),
        trigger=trigger, domain=_domain(record), country=country.upper() if country else None,
        company_size=size, industry=industry.strip().lower() if industry else None,
        form_kinds=frozenset(forms), signals=frozenset(signals),
        has_form=bool(forms) or bool(signals & config.form_signal_set),
    )


def matches(lead_type: LeadType, facts: LeadFacts) -> bool:
    if lead_type.form_kinds or lead_type.signals:
        if not (facts.form_kinds.intersection(lead_type.form_kinds) or facts.signals.intersection(lead_type.signals)):
            return False
    if not facts.signals.issuperset(lead_type.signals_all):
        return False
    return facts.has_form or not lead_type.requires_form


def classify(facts: LeadFacts, config: RoutingConfig) -> PriorityDecision:
    segment = config.segment_for(facts.company_size)
    matched = [t for t in config.lead_types if matches(t, facts)]
    if matched:
        best = min(matched, key=lambda t: PRIORITIES.index(t.priority))  # min() keeps the first on ties
        priority, lead_type = best.priority, best.name
        reason = f"{lead_type} -> {priority}"
    else:
        default = config.default_lead_type
        lead_type = default.name
        if default.use_priority_hint and facts.priority_hint in PRIORITIES:
            priority = facts.priority_hint
            reason = f"no lead type matched; scoring hint {priority}"
        else:
            priority = default.priority
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


# --- helpers ------------------------------------------------------------------------------


def _domain(record: dict[str, Any]) -> str | None:
    key = (record.get("account_key") or "").strip().lower()
    if "." in key and "@" not in key and " " not in key:
        return key
    email = (record.get("email") or "").strip().lower()
    return email.rpartition("@")[2] or None if "@" in email else None


def _fit_checks(described: Any) -> dict[str, tuple[str, str | None]]:
    """``["icp_geography: passed (US)", ...]`` -> ``{"icp_geography": ("passed", "US")}``."""
    out = {}
    for text in described:
        m = _CHECK.match(str(text))
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def _country(check: tuple[str, str | None] | None) -> str | None:
    if not check or not check[1]:
        return None
    m = _COUNTRY.match(check[1])
    return m.group(1) if m else None


def _size(check: tuple[str, str | None] | None) -> int | None:
    if not check or not check[1]:
        return None
    m = _SIZE.match(check[1])
    return int(m.group(1)) if m else None


def _industry(check: tuple[str, str | None] | None) -> str | None:
    if not check or not check[1]:
        return None
    return check[1].removesuffix(" is excluded")
