"""SLA configuration: ``config/sla.yaml`` (``LEADFLOW_SLA_CONFIG_PATH``), validated at load.

What lives here and what does not:
- The first-touch deadline itself is computed by routing when it assigns a lead
  (``first_touch_due_at`` of ``lead_assigned``, from the per-priority table and the per-segment
  overrides of ``config/routing.yaml``): the segment is known there, and one table for the
  SLA durations avoids two files disagreeing. The SLA agent trusts that deadline.
- This file holds what happens around it: which CRM statuses stop the clock, the escalation
  ladder per priority (tiers anchored at the assignment or at the deadline), who a role
  means (``escalate_to_id``), which breaches reassign the lead (``reassignment``), the windowed
  timeout's bucket width, and the recycling policy of dispositions (re-engagement checkpoints
  per rejection reason). Which dispositions exclude a lead for good stays in the scoring model
  (``dispositions.permanent``), the single source the fit gate already uses.

Durations are strings with a unit: ``90s``, ``10m``, ``2h``, ``5d`` (tests use seconds; the
grammar is ``agents.domain.durations``, the one parser).
Validation runs in two passes like the scoring model - pydantic for shape and types, then
cross-key checks - and every message names the key and the bad value. Escalation schedules
are frozen into each clock when it opens, so a config change applies to new assignments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.disposition.rules import DEFAULT_POLICY, DispositionPolicy
from agents.domain.config_errors import ALLOWED_VALUES, EXPECTED, describe_error, echo
from agents.domain.durations import parse_duration_ms
from agents.domain.events import CRM_STATUSES, DISPOSITIONS
from agents.domain.yamlio import read_yaml
from agents.sla.exceptions import SlaConfigError

SLA_EXPECTED = {**EXPECTED, **ALLOWED_VALUES}

PRIORITIES = ("P1", "P2", "P3")
ANCHORS = ("assigned", "due")
# Roles that mean "the lead's owner" (escalate_to_id = owner id).
OWNER_ROLES = frozenset({"owner", "rep"})
# Roles that need no contact either: the consumer resolves them from the roster (the owner's
# ``manager`` field), so contacts.manager only overrides that per team.
ROSTER_ROLES = frozenset({"manager"})
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


# --- Shape (pass 1) -------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True, allow_inf_nan=False)


class SweepIn(_Strict):
    bucket_seconds: int | None = Field(None, ge=1, le=3600)
    max_buckets_per_command: int = Field(3600, ge=1)


class FirstTouchIn(_Strict):
    stop_statuses: list[str] = Field(default_factory=lambda: list(CRM_STATUSES))
    clock_skew_tolerance: str = "2m"
    breach_role: str = "owner"


class TierIn(_Strict):
    after: str
    role: str


class EscalationIn(_Strict):
    anchor: Literal["assigned", "due"] = Field("assigned", alias="from")
    tiers: list[TierIn] = []


class ContactIn(_Strict):
    default: str | None = None
    by_team: dict[str, str] = {}


class ReassignmentIn(_Strict):
    enabled: bool = False
    priorities: list[Literal["P1", "P2", "P3"]] = ["P1"]
    tiers: list[int] = Field(default_factory=lambda: [0])  # 0 = first-touch deadline, 1.. ladder tiers
    max_per_mql: int = Field(1, ge=1, le=20)
    role: str = "reassign"


class DispositionsIn(_Strict):
    recycle: dict[str, list[str]] = {}
    recapture: dict[str, list[str]] = {}


class SlaConfigIn(_Strict):
    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    sweep: SweepIn = SweepIn()
    first_touch: FirstTouchIn = FirstTouchIn()
    escalation: dict[str, EscalationIn] = {}
    contacts: dict[str, ContactIn] = {}
    reassignment: ReassignmentIn = ReassignmentIn()
    dispositions: DispositionsIn | None = None  # absent: the brief's defaults (DEFAULT_POLICY)


# --- The validated configuration --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TierSpec:
    number: int  # 1.. (0 is the first-touch deadline itself)
    after_ms: int
    role: str


@dataclass(frozen=True, slots=True)
class EscalationSpec:
    anchor: str  # "assigned": after the (first) assignment of the MQL; "due": after the deadline
    tiers: tuple[TierSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class ReassignmentSpec:
    """Which breaches ask routing to move the lead (``action: reassign``): tiers ``tiers`` of
    the clocks of ``priorities``, while the MQL has had fewer than ``max_per_mql``
    reassignments. Tier 0 (the first-touch deadline) then goes to ``role`` instead of the
    owner; a ladder tier keeps its role and contact (they are told, routing moves the lead)."""

    enabled: bool = False
    priorities: frozenset[str] = frozenset({"P1"})
    max_per_mql: int = 1
    role: str = "reassign"
    tiers: frozenset[int] = frozenset({0})

    def reassigns(self, priority: str, tier: int, reassignments: int) -> bool:
        return self.enabled and priority in self.priorities and tier in self.tiers and reassignments < self.max_per_mql


@dataclass(frozen=True)
class SlaConfig:
    version: str
    bucket_ms: int | None  # None: use LEADFLOW_SWEEP_BUCKET_S
    max_buckets_per_command: int
    stop_statuses: frozenset[str]
    clock_skew_ms: int
    breach_role: str
    escalation: dict[str, EscalationSpec]  # per priority (every priority present)
    contacts: dict[str, tuple[str | None, dict[str, str]]]  # role -> (default id, team -> id)
    reassignment: ReassignmentSpec
    dispositions: DispositionPolicy = DEFAULT_POLICY

    def escalation_for(self, priority: str) -> EscalationSpec:
        return self.escalation.get(priority) or EscalationSpec("assigned", ())

    def contact_for(self, role: str, owner_id: str, team: str | None) -> str | None:
        """Who ``role`` means for a lead owned by ``owner_id`` in ``team`` (None: unknown)."""
        if role in OWNER_ROLES:
            return owner_id
        default, by_team = self.contacts.get(role, (None, {}))
        return by_team.get(team or "", default)


def load_sla_config(path: str | Path) -> SlaConfig:
    """Read and validate ``sla.yaml``; raises SlaConfigError naming every bad key and value."""
    return parse_sla_config(read_yaml(path, SlaConfigError), source=str(path))


def parse_sla_config(raw: object, *, source: str = "sla config") -> SlaConfig:
    if not isinstance(raw, dict):
        raise SlaConfigError([f"expected a mapping at the top level, got {type(raw).__name__}"], source)
    try:
        shape = SlaConfigIn.model_validate(raw)
    except ValidationError as exc:
        raise SlaConfigError([describe_error(err, expected=SLA_EXPECTED) for err in exc.errors()], source) from None
    problems: list[str] = []
    config = _build(shape, problems)
    if problems:
        raise SlaConfigError(problems, source)
    return config


def permanent_conflicts(policy: DispositionPolicy, permanent: frozenset[str]) -> list[str]:
    """Cross-file check run at worker start: a disposition the scoring model excludes for good
    cannot also be recycled by ``sla.yaml``."""
    problems = []
    for section, table in (("recycle", policy.recycle), ("recapture", policy.recapture)):
        for disposition in sorted(set(table) & permanent):
            problems.append(
                f"dispositions.{section}.{disposition}: the scoring model lists {disposition!r} as "
                "permanent (dispositions.permanent); a lead cannot be both excluded and recycled"
            )
    return problems


# --- Pass 2: values and cross-key rules ---------------------------------------------------------


def _build(shape: SlaConfigIn, problems: list[str]) -> SlaConfig:
    def duration(key: str, text: str, *, allow_zero: bool = False) -> int:
        try:
            ms = parse_duration_ms(text)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
            return 0
        if ms <= 0 and not allow_zero:
            problems.append(f"{key}: must be greater than 0, got {text!r}")
        return ms

    def role(key: str, name: str) -> None:
        if not _ROLE.match(name):
            problems.append(f"{key}: expected a role name such as 'manager' (lower case, digits, _), got {name!r}")

    ft = shape.first_touch
    for i, status in enumerate(ft.stop_statuses):
        if status not in CRM_STATUSES:
            problems.append(
                f"first_touch.stop_statuses[{i}]: unknown CRM status {status!r} (one of {', '.join(CRM_STATUSES)})"
            )
    if not ft.stop_statuses:
        problems.append("first_touch.stop_statuses: must list at least one CRM status, got []")
    skew = duration("first_touch.clock_skew_tolerance", ft.clock_skew_tolerance, allow_zero=True)
    role("first_touch.breach_role", ft.breach_role)

    escalation: dict[str, EscalationSpec] = {}
    for key in shape.escalation:
        if key not in (*PRIORITIES, "default"):
            problems.append(f"escalation.{key}: unknown key (expected default, P1, P2 or P3)")
    for priority in PRIORITIES:
        name = priority if priority in shape.escalation else "default"
        spec_in = shape.escalation.get(name)
        if spec_in is None:
            escalation[priority] = EscalationSpec("assigned", ())
            continue
        tiers, last = [], -1
        for i, tier in enumerate(spec_in.tiers):
            key = f"escalation.{name}.tiers[{i}]"
            after = duration(f"{key}.after", tier.after, allow_zero=spec_in.anchor == "due")
            role(f"{key}.role", tier.role)
            if after <= last:
                problems.append(
                    f"{key}.after: tiers must be in increasing order, got {tier.after!r} "
                    f"after {spec_in.tiers[i - 1].after!r}"
                )
            last = max(last, after)
            tiers.append(TierSpec(i + 1, after, tier.role))
        escalation[priority] = EscalationSpec(spec_in.anchor, tuple(tiers))

    contacts = {}
    for name, contact in shape.contacts.items():
        role(f"contacts.{name}", name)
        if name in OWNER_ROLES:
            problems.append(f"contacts.{name}: {name!r} always means the lead's owner; remove this entry")
        contacts[name] = (contact.default, dict(contact.by_team))
    _check_contacts(shape, problems)

    ra = shape.reassignment
    role("reassignment.role", ra.role)
    if ra.enabled and not ra.priorities:
        problems.append("reassignment.priorities: must list at least one priority when enabled, got []")
    if ra.enabled and not ra.tiers:
        problems.append(
            "reassignment.tiers: must list at least one tier when enabled (0 = the first-touch "
            "deadline, 1.. the escalation tiers), got []"
        )
    for i, number in enumerate(ra.tiers):
        if number in ra.tiers[:i]:
            problems.append(f"reassignment.tiers[{i}]: tier {number} is listed twice")
        elif number < 0:
            problems.append(
                f"reassignment.tiers[{i}]: expected 0 (the first-touch deadline) or an escalation "
                f"tier number (1..), got {number}"
            )
        elif number > 0 and ra.enabled:
            for priority in sorted(set(ra.priorities)):
                count = len(escalation[priority].tiers)
                if number > count:
                    have = f"tiers 1-{count}" if count else "no escalation tiers"
                    problems.append(
                        f"reassignment.tiers[{i}]: {priority} has {have} (escalation), "
                        f"so tier {number} can never reassign"
                    )

    dispositions = (
        _dispositions(shape.dispositions, duration, problems) if shape.dispositions is not None else DEFAULT_POLICY
    )
    return SlaConfig(
        version=shape.version,
        bucket_ms=shape.sweep.bucket_seconds * 1000 if shape.sweep.bucket_seconds else None,
        max_buckets_per_command=shape.sweep.max_buckets_per_command,
        stop_statuses=frozenset(ft.stop_statuses),
        clock_skew_ms=skew,
        breach_role=ft.breach_role,
        escalation=escalation,
        contacts=contacts,
        reassignment=ReassignmentSpec(
            ra.enabled, frozenset(ra.priorities), ra.max_per_mql, ra.role, frozenset(ra.tiers)
        ),
        dispositions=dispositions,
    )


def _check_contacts(shape: SlaConfigIn, problems: list[str]) -> None:
    """Every role a breach goes to names someone for every lead, and every contact names someone:
    a breach whose escalate_to_id is null for lack of a contact reaches nobody. (reassignment.role
    needs none: that breach asks routing to move the lead.)"""
    for name, contact in shape.contacts.items():
        ids = {"default": contact.default, **{f"by_team.{team}": i for team, i in contact.by_team.items()}}
        for where, contact_id in ids.items():
            if contact_id is not None and not contact_id.strip():
                problems.append(f"contacts.{name}.{where}: expected a contact id, got {echo(contact_id)}")
        if contact.default is None and not contact.by_team:
            problems.append(f"contacts.{name}: names nobody (set default, by_team or both)")
    used = [("first_touch.breach_role", shape.first_touch.breach_role)]
    for name, spec in shape.escalation.items():
        used += [(f"escalation.{name}.tiers[{i}].role", tier.role) for i, tier in enumerate(spec.tiers)]
    for key, name in used:
        if name in OWNER_ROLES or name in ROSTER_ROLES or not _ROLE.match(name):
            continue  # by definition, or already reported as a bad name
        named = shape.contacts.get(name)
        if named is None:
            problems.append(
                f"{key}: role {name!r} names nobody: add contacts.{name} (roles that need none: "
                f"{', '.join(sorted(OWNER_ROLES | ROSTER_ROLES))})"
            )
        elif named.default is None:
            teams = ", ".join(sorted(named.by_team)[:5])
            problems.append(
                f"{key}: role {name!r} names nobody for leads of teams other than {echo(teams)}: "
                f"add contacts.{name}.default"
            )


def _dispositions(shape: DispositionsIn, duration, problems: list[str]) -> DispositionPolicy:
    tables: dict[str, dict[str, tuple[int, ...]]] = {}
    for section in ("recycle", "recapture"):
        table = {}
        for disposition, checkpoints in getattr(shape, section).items():
            key = f"dispositions.{section}.{disposition}"
            if disposition not in DISPOSITIONS:
                problems.append(f"{key}: unknown disposition {disposition!r} (one of {', '.join(DISPOSITIONS)})")
            offsets = tuple(duration(f"{key}[{i}]", c) for i, c in enumerate(checkpoints))
            if list(offsets) != sorted(set(offsets)):
                problems.append(f"{key}: checkpoints must be increasing, got {checkpoints!r}")
            table[disposition] = offsets
        tables[section] = table
    for disposition in sorted(set(tables["recycle"]) & set(tables["recapture"])):
        problems.append(f"dispositions.recapture.{disposition}: {disposition!r} is also listed under recycle")
    return DispositionPolicy(recycle=tables["recycle"], recapture=tables["recapture"])
