"""Roster validation: the file's shape (pydantic) and the checks across entries.

Every problem names its entry (``reps[2] (id 'sdr-sam').capacity: ...``); all problems of a
file are reported together (shape errors first, since the checks need a well-formed file).
Soft issues become ``Roster.warnings``. Used through ``agents.routing.roster.parse_roster``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.domain.config_errors import ALLOWED_VALUES, EXPECTED, describe_error
from agents.routing.config import PRIORITIES
from agents.routing.exceptions import RosterError
from agents.routing.roster_model import Rep, Roster, Rule, Territory, iso, to_epoch_ms

if TYPE_CHECKING:
    from agents.routing.config import RoutingConfig

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$"
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")

# --- Input shape (pydantic) ---------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


TimeIn = datetime | date | str


class WindowIn(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True, allow_inf_nan=False)
    from_: TimeIn = Field(alias="from")
    until: TimeIn


class RepIn(_Strict):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=64)
    team: str | None = None
    manager: str | None = None
    active: bool = True
    departed_at: TimeIn | None = None
    out_of_office: list[WindowIn] = []
    capacity: int | None = None  # > 0, checked with the other semantic checks
    territories: list[str] = []
    segments: list[str] = []
    round_robin: bool = True


class TerritoryIn(_Strict):
    id: str = Field(pattern=_ID)
    name: str | None = None
    countries: list[str] = Field(min_length=1)


class MatchIn(_Strict):
    territories: list[str] = []
    countries: list[str] = []
    segments: list[str] = []
    industries: list[str] = []
    lead_types: list[str] = []
    priorities: list[str] = []
    roles: list[str] = []
    fit_grades: list[str] = []
    min_company_size: int | None = Field(None, ge=0)
    max_company_size: int | None = Field(None, ge=0)
    min_score: float | None = None


class RuleIn(_Strict):
    name: str = Field(pattern=_ID)
    match: MatchIn = MatchIn()
    members: list[str] = []
    default_owner: str


class RosterIn(_Strict):
    label: str = ""
    territories: list[TerritoryIn] = []
    reps: list[RepIn] = Field(min_length=1)
    rules: list[RuleIn] = []
    account_owners: dict[str, str] = {}


def validate_roster(
    raw: object,
    *,
    config: RoutingConfig | None = None,
    now_ms: int | None = None,
    source: str = "roster",
) -> Roster:
    if not isinstance(raw, dict):
        raise RosterError([f"expected a mapping at the top level, got {type(raw).__name__}"], source)
    try:
        shape = RosterIn.model_validate(raw)
    except ValidationError as exc:
        label = _labeller(raw)
        raise RosterError(
            [describe_error(err, label, {**EXPECTED, **ALLOWED_VALUES}) for err in exc.errors()], source
        ) from None
    problems: list[str] = []
    warnings: list[str] = []
    roster = _build(shape, problems)
    _check(roster, shape, config, now_ms, problems, warnings)
    if problems:
        raise RosterError(problems, source)
    return Roster(
        reps=roster.reps,
        territories=roster.territories,
        rules=roster.rules,
        account_owners=roster.account_owners,
        label=roster.label,
        warnings=tuple(warnings),
    )


def _labeller(raw: dict[str, Any]):
    """Key path with list entries named by their id/name: ``reps[2] (id 'sdr-sam').capacity``."""

    def label(loc: tuple[Any, ...]) -> str:
        out = ""
        node: Any = raw
        for part in loc:
            if isinstance(part, int):
                out += f"[{part}]"
                entry = node[part] if isinstance(node, list) and part < len(node) else None
                if isinstance(entry, dict):
                    for key in ("id", "name"):
                        if isinstance(entry.get(key), str):
                            out += f" ({key} {entry[key]!r})"
                            break
                node = entry
            else:
                out += f".{part}" if out else str(part)
                node = node.get(part) if isinstance(node, dict) else None
        return out or "<root>"

    return label


def _rep_label(i: int, rep: RepIn) -> str:
    return f"reps[{i}] (id {rep.id!r})"


def _rule_label(i: int, rule: RuleIn) -> str:
    return f"rules[{i}] (name {rule.name!r})"


def _build(shape: RosterIn, problems: list[str]) -> Roster:
    reps: dict[str, Rep] = {}
    first_at: dict[str, int] = {}
    for i, r in enumerate(shape.reps):
        label = _rep_label(i, r)
        if r.id in first_at:
            problems.append(f"{label}: duplicate id (first at reps[{first_at[r.id]}])")
            continue
        first_at[r.id] = i
        windows = []
        for j, w in enumerate(r.out_of_office):
            try:
                start, end = to_epoch_ms(w.from_), to_epoch_ms(w.until)
            except ValueError as exc:
                problems.append(f"{label}.out_of_office[{j}]: {exc}")
                continue
            if start >= end:
                problems.append(
                    f"{label}.out_of_office[{j}]: 'from' ({iso(start)}) must be before 'until' ({iso(end)})"
                )
                continue
            windows.append((start, end))
        departed = None
        if r.departed_at is not None:
            try:
                departed = to_epoch_ms(r.departed_at)
            except ValueError as exc:
                problems.append(f"{label}.departed_at: {exc}")
        reps[r.id] = Rep(
            id=r.id,
            name=r.name,
            role=r.role,
            team=r.team,
            manager=r.manager,
            active=r.active,
            departed_at_ms=departed,
            out_of_office=tuple(sorted(windows)),
            capacity=r.capacity,
            territories=frozenset(r.territories),
            segments=frozenset(r.segments),
            round_robin=r.round_robin,
        )
    territories = tuple(
        Territory(id=t.id, name=t.name or t.id, countries=frozenset(c.upper() for c in t.countries))
        for t in shape.territories
    )
    rules = tuple(
        Rule(
            name=r.name,
            default_owner=r.default_owner,
            members=tuple(r.members),
            territories=frozenset(r.match.territories),
            countries=frozenset(c.upper() for c in r.match.countries),
            segments=frozenset(r.match.segments),
            industries=frozenset(i.strip().lower() for i in r.match.industries),
            lead_types=frozenset(r.match.lead_types),
            priorities=frozenset(r.match.priorities),
            roles=frozenset(r.match.roles),
            fit_grades=frozenset(g.upper() for g in r.match.fit_grades),
            min_company_size=r.match.min_company_size,
            max_company_size=r.match.max_company_size,
            min_score=r.match.min_score,
        )
        for r in shape.rules
    )
    owners = {domain.strip().lower(): rep for domain, rep in shape.account_owners.items()}
    return Roster(reps=reps, territories=territories, rules=rules, account_owners=owners, label=shape.label)


def _check(
    roster: Roster,
    shape: RosterIn,
    config: RoutingConfig | None,
    now_ms: int | None,
    problems: list[str],
    warnings: list[str],
) -> None:
    reps = roster.reps
    territory_ids: dict[str, int] = {}
    country_owner: dict[str, str] = {}
    for i, t in enumerate(shape.territories):
        label = f"territories[{i}] (id {t.id!r})"
        if t.id in territory_ids:
            problems.append(f"{label}: duplicate id (first at territories[{territory_ids[t.id]}])")
        territory_ids.setdefault(t.id, i)
        for country in t.countries:
            code = country.upper()
            if not re.fullmatch(r"[A-Z]{2}", code):
                problems.append(f"{label}.countries: {country!r} is not an ISO-3166 alpha-2 code")
            elif code in country_owner and country_owner[code] != t.id:
                problems.append(f"{label}.countries: {code!r} already belongs to territory {country_owner[code]!r}")
            country_owner.setdefault(code, t.id)
    segments = config.segment_names if config else None
    for i, r in enumerate(shape.reps):
        label = _rep_label(i, r)
        for territory in r.territories:
            if territory not in territory_ids:
                problems.append(f"{label}.territories: unknown territory {territory!r}")
        for segment in r.segments:
            if segments is not None and segment not in segments:
                problems.append(
                    f"{label}.segments: unknown segment {segment!r} (routing config has {sorted(segments)})"
                )
        if r.manager is not None and r.manager not in reps:
            problems.append(f"{label}.manager: unknown rep {r.manager!r}")
        if r.manager == r.id:
            problems.append(f"{label}.manager: a rep cannot be their own manager")
        if r.capacity is not None and r.capacity <= 0:
            problems.append(f"{label}.capacity: must be greater than 0 (max open leads), got {r.capacity}")
        if config is not None and r.role in config.roles and r.capacity is None:
            problems.append(f"{label}.capacity: required for role {r.role!r} (max open leads, > 0)")
    lead_types = {t.name for t in config.lead_types} | {config.default_lead_type.name} if config else None
    names: dict[str, int] = {}
    for i, rule in enumerate(shape.rules):
        label = _rule_label(i, rule)
        if rule.name in names:
            problems.append(f"{label}: duplicate name (first at rules[{names[rule.name]}])")
        names.setdefault(rule.name, i)
        for territory in rule.match.territories:
            if territory not in territory_ids:
                problems.append(f"{label}.match.territories: unknown territory {territory!r}")
        for segment in rule.match.segments:
            if segments is not None and segment not in segments:
                problems.append(f"{label}.match.segments: unknown segment {segment!r}")
        for lead_type in rule.match.lead_types:
            if lead_types is not None and lead_type not in lead_types:
                problems.append(f"{label}.match.lead_types: unknown lead type {lead_type!r}")
        for priority in rule.match.priorities:
            if priority not in PRIORITIES:
                problems.append(f"{label}.match.priorities: unknown priority {priority!r}")
        m = rule.match
        if (
            m.min_company_size is not None
            and m.max_company_size is not None
            and m.min_company_size > m.max_company_size
        ):
            problems.append(
                f"{label}.match: min_company_size {m.min_company_size} > max_company_size {m.max_company_size}"
            )
        for member in rule.members:
            if member not in reps:
                problems.append(f"{label}.members: unknown rep {member!r}")
        owner = reps.get(rule.default_owner)
        if owner is None:
            problems.append(f"{label}.default_owner: unknown rep {rule.default_owner!r}")
        else:
            _require_active(f"{label}.default_owner", owner, now_ms, problems, warnings)
    for domain, rep_id in roster.account_owners.items():
        label = f"account_owners.{domain}"
        if not _DOMAIN.match(domain):
            problems.append(f"{label}: {domain!r} is not a domain name")
        rep = reps.get(rep_id)
        if rep is None:
            problems.append(f"{label}: unknown rep {rep_id!r}")
        elif (why := rep.unavailable_reason(now_ms if now_ms is not None else -1)) is not None:
            warnings.append(f"{label}: owner {rep_id!r} is {why}; leads of this account go to the next rule")
    if config is not None:
        check_config_owners(config, reps, now_ms, problems, warnings)
        for role in sorted(config.roles):
            if not any(rep.role == role and rep.active for rep in reps.values()):
                warnings.append(f"no active rep has role {role!r}: such leads go to the fallback owner")


def check_config_owners(
    config: RoutingConfig,
    reps: dict[str, Rep],
    now_ms: int | None,
    problems: list[str],
    warnings: list[str],
) -> None:
    """The routing config's named owners against a roster: at `roster load` and at worker start.

    The nurture owner must be an active rep; the fallback owner may be absent (the routing
    config describes it in full, so a lead is assigned even without a roster) but not inactive."""
    nurture = reps.get(config.nurture_owner)
    if nurture is None:
        problems.append(f"nurture owner {config.nurture_owner!r} (routing config nurture_owner): not in the roster")
    else:
        _require_active(f"nurture owner {config.nurture_owner!r}", nurture, now_ms, problems, warnings)
    fallback = reps.get(config.fallback.owner_id)
    if fallback is None:
        warnings.append(
            f"fallback owner {config.fallback.owner_id!r} is not in the roster; "
            f"the routing config's name {config.fallback.owner_name!r} is used"
        )
    elif not fallback.active:
        problems.append(f"fallback owner {config.fallback.owner_id!r} (routing config fallback.owner_id): is inactive")


def _require_active(label: str, rep: Rep, now_ms: int | None, problems: list[str], warnings: list[str]) -> None:
    if not rep.active:
        problems.append(f"{label}: {rep.id!r} is inactive")
    elif now_ms is not None and rep.departed_at_ms is not None and now_ms >= rep.departed_at_ms:
        problems.append(f"{label}: {rep.id!r} departed on {iso(rep.departed_at_ms)}")
    elif now_ms is not None and (why := rep.unavailable_reason(now_ms)) is not None:
        warnings.append(f"{label}: {rep.id!r} is {why} (routing skips them meanwhile)")
