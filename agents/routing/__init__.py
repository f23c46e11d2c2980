"""Lead routing: priority (P1/P2/P3) and assignment to a named, active owner.

Pure modules (no Faust, Kafka, Redis or Prometheus imports; a unit test enforces it):
- ``config``: ``config/routing.yaml`` - priority table with first-touch SLAs (and per-segment
  overrides), lead types, fit bump, segments, nurture and fallback owners;
- ``roster`` / ``roster_validation``: reps, territories, territory/attribute rules, account
  owners; YAML validation whose errors name the entry (the roster lives in Redis and is
  editable live);
- ``facts``: what an MQL record's typed fields say about the lead (lead_qualified v3 facts;
  unknown firmographics for older records);
- ``priority``: the one priority policy (``classify``), also handed to scoring by the
  composition root (``priority_policy``) so the MQL's ``priority_hint`` is this policy's answer;
- ``rules``: the routing plan (account owner -> rules -> weighted round robin -> fallback,
  with an audit of every candidate skipped and why), the reference selection algorithm and
  the ``lead_assigned`` record;
- ``redelivery``: what the agent remembers per lead and which repeated MQLs it skips.

Wiring: ``agent.py`` (Faust agent ``route_mqls``), ``agents/routing/roster_store.py`` (Redis: live
roster, atomic Lua selection with open-lead sets, cursors and idempotency keys),
``leadflow/roster_cli.py`` (``leadflow roster load FILE`` / ``show``).
"""

from agents.routing.assignment import assignment_record
from agents.routing.config import RoutingConfig, load_routing_config, parse_routing_config
from agents.routing.exceptions import RosterError, RoutingConfigError, RoutingError
from agents.routing.facts import LeadFacts, PriorityDecision, classify, facts_from_mql
from agents.routing.roster import Rep, Roster, Rule, Territory, parse_roster
from agents.routing.rules import Decision, Plan, plan
from agents.routing.selection import select_reference

__all__ = [
    "Decision",
    "LeadFacts",
    "Plan",
    "PriorityDecision",
    "Rep",
    "Roster",
    "RosterError",
    "RoutingConfig",
    "RoutingConfigError",
    "RoutingError",
    "Rule",
    "Territory",
    "assignment_record",
    "classify",
    "facts_from_mql",
    "load_routing_config",
    "parse_roster",
    "parse_routing_config",
    "plan",
    "select_reference",
]
