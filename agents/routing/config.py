"""Routing configuration: ``config/routing.yaml`` (``LEADFLOW_ROUTING_CONFIG_PATH``), validated at load.

What lives here (static per worker, changed by editing the file and restarting):
- the priority table: per priority, the first-touch SLA and who takes it (a rep role, or the
  nurture owner for P3), with optional per-segment SLA overrides;
- lead types: which MQL evidence (form kinds, behavioural signals) makes a demo request, a
  pricing-plus-form lead, a webinar attendee...; each names its priority;
- "fit multiplies intent": the enterprise-fit bump (P2 -> P1) and the fast-track priority;
- company-size segments (enterprise / mid-market / SMB);
- the named owners of last resort: the nurture owner (P3) and the fallback owner.

What does *not* live here: people. Reps, territories, territory/attribute rules and account
owners are the roster (``agents.routing.roster``), kept in Redis and editable live.

The fallback owner is fully described here (id, name, role, team) so that a lead is never
left unassigned, even when the roster is missing from Redis or names no such entry; when
the roster has an entry with that id, its name/team are used instead.

Validation names the key and value (``priorities.P4: unknown priority``). Two passes, as for
the scoring model: pydantic for shape and types, then cross-key checks.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.domain.config_errors import ALLOWED_VALUES, EXPECTED, describe_error, removed_key_problems
from agents.domain.yamlio import read_yaml
from agents.routing.exceptions import RoutingConfigError

ROUTING_EXPECTED = {**EXPECTED, **ALLOWED_VALUES}

PRIORITIES = ("P1", "P2", "P3")  # P1 = most urgent
Priority = Literal["P1", "P2", "P3"]
MINUTE_MS = 60_000
DAY_S = 86_400
# Keys that existed once: a file still setting one fails at load saying what to do instead.
REMOVED_KEYS = {
    "default_lead_type.use_priority_hint": "routing alone decides the priority (lead_types, else "
    "default_lead_type.priority); scoring's hint is derived from this file (lead_qualified v3)",
}


def better(a: Priority, b: Priority) -> Priority:
    """The more urgent of two priorities ("P1" < "P2" < "P3")."""
    return min(a, b, key=PRIORITIES.index)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class PriorityRule(_Strict):
    first_touch_sla_minutes: float = Field(gt=0)
    role: str | None = Field(None, min_length=1, max_length=64)  # rep role that takes it
    nurture: bool = False  # True: goes to the nurture owner, not to a rep


class Segment(_Strict):
    name: str = Field(min_length=1, max_length=64)
    min_company_size: int = Field(ge=0)


class LeadType(_Strict):
    """A kind of lead, recognised from the MQL's evidence.

    Matches when (``form_kinds`` or ``signals`` are empty, or one of them is present) and
    every ``signals_all`` is present and (``requires_form`` is false, or the lead submitted
    a form).
    """

    name: str = Field(min_length=1, max_length=64)
    priority: Priority
    form_kinds: list[str] = []  # any of these form kinds
    signals: list[str] = []  # any of these behavioural signals
    signals_all: list[str] = []  # all of these signals
    requires_form: bool = False


class DefaultLeadType(_Strict):
    """The lead type of an MQL no configured type matches, and its priority."""

    name: str = Field(min_length=1, max_length=64)
    priority: Priority


class FitBump(_Strict):
    """Fit multiplies intent: a ``from_priority`` lead with one of these grades or segments
    becomes ``to_priority``."""

    from_priority: Priority
    to_priority: Priority
    fit_grades: list[Literal["A", "B", "C", "D", "E", "F"]] = []
    segments: list[str] = []


class AccountOwnerStep(_Strict):
    enabled: bool = True
    ignore_capacity: bool = True  # an account's owner keeps the account even when full


class RoundRobinStep(_Strict):
    enabled: bool = True


class ReassignmentStep(_Strict):
    """Where a lead goes when an SLA breach asks routing to reassign it (which tiers do is
    ``reassignment`` in sla.yaml; see ``agents.routing.reassign``).

    ``next_rep``: the lead's routing plan again (account owner, rule pool, territory, round
    robin, fallback) without the owner who missed the SLA nor anyone who already had this
    MQL - the next eligible rep of the same rule/pool first. ``manager``: the missing owner's
    manager (roster ``manager``) when available and not full, else as ``next_rep``."""

    to: Literal["next_rep", "manager"] = "next_rep"


class PriorityUpgrade(_Strict):
    """What routing does when an MQL it assigned is re-issued with a more urgent priority
    (a demo request from a P2 lead an SDR owns; see ``agents.routing.upgrades``).

    ``reroute``: route it again as a lead of the new priority (P1 -> an AE), unless the owner
    already has that role. ``keep_owner``: the available owner keeps it with the new
    priority's (tighter) SLA. Either way the first-touch clock restarts at the new SLA."""

    policy: Literal["reroute", "keep_owner"] = "reroute"


class RosterErrorPolicy(_Strict):
    """What routing does with an MQL when its data in Redis cannot be used - a corrupt roster
    document, a non-numeric roster version, round-robin cursor or open-lead count (not an
    outage: connection errors are waited out). See ``agents.routing.pending``.

    ``fallback``: the fallback owner takes it now, reason ``roster_unreadable`` (default: a
    hot lead gets a human at once). ``pending``: the lead is parked (durable) and routed
    normally once the roster is readable again - also when no roster is loaded; after
    ``max_pending_minutes`` (null: no limit) it goes to the fallback owner instead."""

    action: Literal["fallback", "pending"] = "fallback"
    max_pending_minutes: float | None = Field(None, gt=0)


class Fallback(_Strict):
    owner_id: str = Field(min_length=1, max_length=128)
    owner_name: str = Field(min_length=1, max_length=200)
    owner_role: str = Field("queue", min_length=1, max_length=64)
    team: str | None = None


class RoutingConfig(_Strict):
    """A validated, frozen routing configuration. Build it with ``load_routing_config``."""

    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    priorities: dict[Priority, PriorityRule]
    segments: list[Segment] = []
    segment_sla_overrides: dict[str, dict[Priority, float]] = {}
    lead_types: list[LeadType]
    default_lead_type: DefaultLeadType
    form_signals: list[str] = []  # behavioural signals that only a form submit produces
    fast_track_priority: Priority | None = None
    fit_bump: FitBump | None = None
    account_owner: AccountOwnerStep = AccountOwnerStep()
    territory_round_robin: RoundRobinStep = RoundRobinStep()
    round_robin: RoundRobinStep = RoundRobinStep()
    priority_upgrade: PriorityUpgrade = PriorityUpgrade()
    reassignment: ReassignmentStep = ReassignmentStep()
    roster_error: RosterErrorPolicy = RosterErrorPolicy()
    nurture_owner: str = Field(min_length=1, max_length=128)
    fallback: Fallback
    idempotency_ttl_days: float = Field(30, gt=0)

    # --- derived ----------------------------------------------------------------------

    @cached_property
    def segment_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.segments)

    @cached_property
    def segments_by_size(self) -> tuple[Segment, ...]:
        return tuple(sorted(self.segments, key=lambda s: -s.min_company_size))

    @cached_property
    def roles(self) -> frozenset[str]:
        """Rep roles the priority table routes to."""
        return frozenset(p.role for p in self.priorities.values() if p.role)

    @cached_property
    def form_signal_set(self) -> frozenset[str]:
        return frozenset(self.form_signals)

    @cached_property
    def idempotency_ttl_s(self) -> int:
        return int(self.idempotency_ttl_days * DAY_S)

    def segment_for(self, company_size: int | None) -> str | None:
        if company_size is None:
            return None
        for segment in self.segments_by_size:
            if company_size >= segment.min_company_size:
                return segment.name
        return None

    def first_touch_sla_ms(self, priority: str, segment: str | None) -> int:
        minutes = self.segment_sla_overrides.get(segment or "", {}).get(priority)  # type: ignore[call-overload]
        if minutes is None:
            minutes = self.priorities[priority].first_touch_sla_minutes  # type: ignore[index]
        return round(minutes * MINUTE_MS)


# --- Loading ------------------------------------------------------------------------------


def load_routing_config(path: str | Path) -> RoutingConfig:
    """Read and validate ``routing.yaml``; raises RoutingConfigError naming every bad key."""
    return parse_routing_config(read_yaml(path, RoutingConfigError), source=str(path))


def parse_routing_config(raw: object, *, source: str = "routing config") -> RoutingConfig:
    if not isinstance(raw, dict):
        raise RoutingConfigError([f"expected a mapping at the top level, got {type(raw).__name__}"], source)
    removed = removed_key_problems(raw, REMOVED_KEYS)
    if removed:
        raise RoutingConfigError(removed, source)
    try:
        config = RoutingConfig.model_validate(raw)
    except ValidationError as exc:
        raise RoutingConfigError(
            [describe_error(err, expected=ROUTING_EXPECTED) for err in exc.errors()], source
        ) from None
    problems = _semantic_problems(config)
    if problems:
        raise RoutingConfigError(problems, source)
    return config


def _semantic_problems(config: RoutingConfig) -> list[str]:
    problems = []
    for priority in PRIORITIES:
        rule = config.priorities.get(priority)  # type: ignore[call-overload]
        if rule is None:
            problems.append(f"priorities.{priority}: required key is missing")
        elif bool(rule.role) == rule.nurture:
            problems.append(f"priorities.{priority}: set exactly one of 'role' (a rep role) or 'nurture: true'")
    seen: set[str] = set()
    for i, segment in enumerate(config.segments):
        if segment.name in seen:
            problems.append(f"segments[{i}] (name {segment.name!r}): duplicate segment name")
        seen.add(segment.name)
    for segment_name in config.segment_sla_overrides:
        if segment_name not in config.segment_names:
            problems.append(f"segment_sla_overrides.{segment_name}: unknown segment (not in segments)")
        for priority, minutes in config.segment_sla_overrides[segment_name].items():
            if minutes <= 0:
                problems.append(
                    f"segment_sla_overrides.{segment_name}.{priority}: must be greater than 0, got {minutes!r}"
                )
    names: set[str] = set()
    for i, lead_type in enumerate(config.lead_types):
        label = f"lead_types[{i}] (name {lead_type.name!r})"
        if lead_type.name in names:
            problems.append(f"{label}: duplicate lead type name")
        names.add(lead_type.name)
        if not (lead_type.form_kinds or lead_type.signals or lead_type.signals_all or lead_type.requires_form):
            problems.append(f"{label}: has no condition (set form_kinds, signals, signals_all or requires_form)")
    if config.fit_bump is not None:
        bump = config.fit_bump
        if PRIORITIES.index(bump.to_priority) >= PRIORITIES.index(bump.from_priority):
            problems.append(
                f"fit_bump.to_priority: {bump.to_priority!r} is not more urgent than {bump.from_priority!r}"
            )
        for segment_name in bump.segments:
            if segment_name not in config.segment_names:
                problems.append(f"fit_bump.segments: unknown segment {segment_name!r}")
    if config.nurture_owner == config.fallback.owner_id:
        problems.append("nurture_owner: must differ from fallback.owner_id (P3 leads would look like routing failures)")
    return problems
