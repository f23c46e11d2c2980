"""The roster questions routing asks: which rules match a lead, which reps a rule without
members draws on, and who an owner id names.

Pure (no framework imports); ``agents.routing.rules`` plans with these: ``rule_mismatch`` says
why a rule does not apply (the audit's "not matched" line), ``describe_match`` why one does,
``serves`` which reps of the role a rule without ``members`` uses, ``owner_of`` the name, role
and team written into the assignment record.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.routing.config import RoutingConfig
from agents.routing.facts import LeadFacts, PriorityDecision
from agents.routing.roster import Rep, Roster, Rule


def serves(rep: Rep, rule: Rule, territory: str | None, segment: str | None) -> bool:
    """A rule without ``members`` uses the reps of the role who serve the lead: a rep who lists
    territories (segments) serves those; one who lists none serves any - except for a rule
    about territory (segment), which needs reps who name it."""
    by_territory = bool(rule.territories or rule.countries)
    territory_ok = territory in rep.territories if rep.territories else not by_territory
    segment_ok = segment in rep.segments if rep.segments else not rule.segments
    return territory_ok and segment_ok


def rule_mismatch(
    rule: Rule, facts: LeadFacts, priority: PriorityDecision, role: str, territory: str | None
) -> str | None:
    """Why ``rule`` does not match this lead (None = it matches)."""
    checks = (
        ("territory", rule.territories, territory),
        ("country", rule.countries, facts.country),
        ("segment", rule.segments, priority.segment),
        ("industry", rule.industries, facts.industry),
        ("lead type", rule.lead_types, priority.lead_type),
        ("priority", rule.priorities, priority.priority),
        ("role", rule.roles, role),
        ("fit grade", rule.fit_grades, facts.fit_grade),
    )
    for label, allowed, value in checks:
        if allowed and value not in allowed:
            return f"{label} {value or 'unknown'} not in {sorted(allowed)}"
    size = facts.company_size
    if rule.min_company_size is not None and (size is None or size < rule.min_company_size):
        return f"company size {size if size is not None else 'unknown'} < {rule.min_company_size}"
    if rule.max_company_size is not None and (size is None or size > rule.max_company_size):
        return f"company size {size if size is not None else 'unknown'} > {rule.max_company_size}"
    if rule.min_score is not None and facts.score < rule.min_score:
        return f"score {facts.score:g} < {rule.min_score:g}"
    return None


def describe_match(rule: Rule, facts: LeadFacts, priority: PriorityDecision, territory: str | None) -> str:
    parts = []
    if rule.territories:
        parts.append(f"territory {territory}")
    if rule.countries:
        parts.append(f"country {facts.country}")
    if rule.segments:
        parts.append(f"segment {priority.segment}")
    if rule.industries:
        parts.append(f"industry {facts.industry}")
    if rule.lead_types:
        parts.append(f"lead type {priority.lead_type}")
    if rule.priorities:
        parts.append(f"priority {priority.priority}")
    if rule.fit_grades:
        parts.append(f"fit grade {facts.fit_grade}")
    if rule.min_company_size is not None or rule.max_company_size is not None:
        parts.append(f"company size {facts.company_size}")
    if rule.min_score is not None:
        parts.append(f"score {facts.score:g}")
    return ", ".join(parts) or "matches every lead"


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    name: str
    role: str
    team: str | None


def owner_of(owner_id: str, roster: Roster | None, config: RoutingConfig) -> Owner:
    rep = roster.reps.get(owner_id) if roster else None
    if rep is not None:
        return Owner(rep.id, rep.name, rep.role, rep.team)
    fb = config.fallback
    if owner_id == fb.owner_id:
        return Owner(fb.owner_id, fb.owner_name, fb.owner_role, fb.team)
    return Owner(owner_id, owner_id, "unknown", None)  # replay of a rep since removed from the roster
