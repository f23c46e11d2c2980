"""The roster: who can take leads, where, and how many. Pure model + validation (no Redis).

A roster file (``config/roster.yaml``, loaded into Redis by ``leadflow roster load FILE``)::

    label: "2025-06 default"            # free text shown by `leadflow roster show`
    territories:
      - {id: na, name: North America, countries: [US, CA]}
    reps:
      - id: ae-ana                      # unique, stable (used in open-lead counters)
        name: Ana Ortiz
        role: AE                        # the roles routing.yaml routes to (AE, SDR), or any other
        team: na-sales
        manager: mgr-mia                # another rep's id
        active: true                    # false = never routed to
        departed_at: null               # from this instant on the rep has left (never routed to)
        out_of_office: [{from: 2025-12-22T00:00:00Z, until: 2026-01-05T00:00:00Z}]
        capacity: 40                    # max open leads; must be > 0 (omit only for queues)
        territories: [na]               # used by rules that do not list members
        segments: [enterprise]          # (empty = all segments)
        round_robin: true               # part of the round-robin pool for its role
    rules:                              # territory / attribute rules, first match wins
      - name: na-pricing
        match: {territories: [na], lead_types: [pricing_with_form]}
        members: []                     # empty = reps of the lead's role serving the territory/segment
        default_owner: mgr-mia          # must exist and be active
    account_owners:                     # email/account domain -> rep id
      acme-logistics.com: ae-ana

Times are ISO-8601 (a zone is recommended; naive times and plain dates are UTC); an
out-of-office window is ``[from, until)``. Everything is validated at once and each problem
names its entry, e.g. ``reps[3] (id 'ae-ana'): duplicate id (first at reps[0])``,
``rules[1] (name 'emea').match.territories: unknown territory 'apac'``,
``rules[0] (name 'na-enterprise').default_owner: 'ae-old' is inactive``,
``reps[2] (id 'sdr-sam').capacity: input should be greater than 0, got 0``.
With a routing config, the roster is also checked against it (segments, lead types, the
nurture owner must exist and be active, roles that have nobody are warned about).

Soft issues (an account owner who is inactive, a default owner out of office today) are
``Roster.warnings``: routing copes with them (skips, with an audit line), RevOps should fix them.

The runtime form (``Roster``) is plain frozen dataclasses with times as epoch ms; it round-trips
through ``to_dict``/``from_dict`` (the JSON document stored in Redis).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.routing.config import PRIORITIES, describe_error
from agents.routing.exceptions import RosterError

if TYPE_CHECKING:
    from agents.routing.config import RoutingConfig

ROSTER_FORMAT = 1
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$"
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")

# --- Input shape (pydantic) ---------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


TimeIn = datetime | date | str


class WindowIn(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)
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
    capacity: int | None = Field(None, gt=0)
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


# --- Runtime model ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rep:
    id: str
    name: str
    role: str
    team: str | None = None
    manager: str | None = None
    active: bool = True
    departed_at_ms: int | None = None
    out_of_office: tuple[tuple[int, int], ...] = ()  # [from, until) epoch ms
    capacity: int | None = None  # None = unlimited (queues)
    territories: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    round_robin: bool = True

    def unavailable_reason(self, now_ms: int) -> str | None:
        """Why this rep cannot take a lead at ``now_ms`` (None = available)."""
        if not self.active:
            return "inactive"
        if self.departed_at_ms is not None and now_ms >= self.departed_at_ms:
            return f"departed on {iso(self.departed_at_ms)}"
        for start, end in self.out_of_office:
            if start <= now_ms < end:
                return f"out of office until {iso(end)}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "role": self.role, "team": self.team,
            "manager": self.manager, "active": self.active, "departed_at_ms": self.departed_at_ms,
            "out_of_office": [list(w) for w in self.out_of_office], "capacity": self.capacity,
            "territories": sorted(self.territories), "segments": sorted(self.segments),
            "round_robin": self.round_robin,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rep:
        return cls(
            id=d["id"], name=d["name"], role=d["role"], team=d.get("team"), manager=d.get("manager"),
            active=bool(d.get("active", True)), departed_at_ms=d.get("departed_at_ms"),
            out_of_office=tuple((int(a), int(b)) for a, b in d.get("out_of_office") or ()),
            capacity=d.get("capacity"), territories=frozenset(d.get("territories") or ()),
            segments=frozenset(d.get("segments") or ()), round_robin=bool(d.get("round_robin", True)),
        )


@dataclass(frozen=True, slots=True)
class Territory:
    id: str
    name: str
    countries: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "countries": sorted(self.countries)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Territory:
        return cls(id=d["id"], name=d.get("name") or d["id"], countries=frozenset(d["countries"]))


MATCH_LIST_FIELDS = ("territories", "countries", "segments", "industries", "lead_types", "priorities", "roles", "fit_grades")


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    default_owner: str
    members: tuple[str, ...] = ()
    # Match conditions (empty = any). Countries upper-case, industries lower-case.
    territories: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    industries: frozenset[str] = frozenset()
    lead_types: frozenset[str] = frozenset()
    priorities: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    fit_grades: frozenset[str] = frozenset()
    min_company_size: int | None = None
    max_company_size: int | None = None
    min_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "default_owner": self.default_owner, "members": list(self.members)}
        for name in MATCH_LIST_FIELDS:
            d[name] = sorted(getattr(self, name))
        d.update(min_company_size=self.min_company_size, max_company_size=self.max_company_size,
                 min_score=self.min_score)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rule:
        return cls(
            name=d["name"], default_owner=d["default_owner"], members=tuple(d.get("members") or ()),
            **{name: frozenset(d.get(name) or ()) for name in MATCH_LIST_FIELDS},
            min_company_size=d.get("min_company_size"), max_company_size=d.get("max_company_size"),
            min_score=d.get("min_score"),
        )


@dataclass(frozen=True)
class Roster:
    reps: dict[str, Rep]  # in file order
    territories: tuple[Territory, ...] = ()
    rules: tuple[Rule, ...] = ()
    account_owners: dict[str, str] = field(default_factory=dict)  # domain -> rep id
    label: str = ""
    warnings: tuple[str, ...] = ()

    def territory_for(self, country: str | None) -> Territory | None:
        if not country:
            return None
        country = country.upper()
        for territory in self.territories:
            if country in territory.countries:
                return territory
        return None

    def reps_with_role(self, role: str) -> list[Rep]:
        return [rep for rep in self.reps.values() if rep.role == role]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": ROSTER_FORMAT,
            "label": self.label,
            "territories": [t.to_dict() for t in self.territories],
            "reps": [r.to_dict() for r in self.reps.values()],
            "rules": [r.to_dict() for r in self.rules],
            "account_owners": dict(sorted(self.account_owners.items())),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Roster:
        reps = [Rep.from_dict(r) for r in d.get("reps") or ()]
        return cls(
            reps={r.id: r for r in reps},
            territories=tuple(Territory.from_dict(t) for t in d.get("territories") or ()),
            rules=tuple(Rule.from_dict(r) for r in d.get("rules") or ()),
            account_owners=dict(d.get("account_owners") or {}),
            label=d.get("label") or "",
            warnings=tuple(d.get("warnings") or ()),
        )


# --- Parsing and validation ---------------------------------------------------------------


def to_epoch_ms(value: datetime | date | str) -> int:
    """ISO-8601 string, datetime or date -> epoch ms (naive and dates are UTC)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {text!r}") from None
    if not isinstance(value, datetime):  # a plain date: midnight UTC
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_roster(
    raw: object, *, config: RoutingConfig | None = None, now_ms: int | None = None, source: str = "roster",
) -> Roster:
    """Validate a roster mapping (what the YAML holds); raises RosterError listing every problem.

    ``config`` adds the checks against the routing configuration; ``now_ms`` (the load time)
    adds the "departed already" and "out of office right now" checks.
    """
    if not isinstance(raw, dict):
        raise RosterError([f"expected a mapping at the top level, got {type(raw).__name__}"], source)
    try:
        shape = RosterIn.model_validate(raw)
    except ValidationError as exc:
        label = _labeller(raw)
        raise RosterError([describe_error(err, label) for err in exc.errors()], source) from None
    problems: list[str] = []
    warnings: list[str] = []
    roster = _build(shape, problems)
    _check(roster, shape, config, now_ms, problems, warnings)
    if problems:
        raise RosterError(problems, source)
    return Roster(
        reps=roster.reps, territories=roster.territories, rules=roster.rules,
        account_owners=roster.account_owners, label=roster.label, warnings=tuple(warnings),
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
                problems.append(f"{label}.out_of_office[{j}]: 'from' ({iso(start)}) must be before 'until' ({iso(end)})")
                continue
            windows.append((start, end))
        departed = None
        if r.departed_at is not None:
            try:
                departed = to_epoch_ms(r.departed_at)
            except ValueError as exc:
                problems.append(f"{label}.departed_at: {exc}")
        reps[r.id] = Rep(
            id=r.id, name=r.name, role=r.role, team=r.team, manager=r.manager, active=r.active,
            departed_at_ms=departed, out_of_office=tuple(sorted(windows)), capacity=r.capacity,
            territories=frozenset(r.territories), segments=frozenset(r.segments), round_robin=r.round_robin,
        )
    territories = tuple(
        Territory(id=t.id, name=t.name or t.id, countries=frozenset(c.upper() for c in t.countries))
        for t in shape.territories
    )
    rules = tuple(
        Rule(
            name=r.name, default_owner=r.default_owner, members=tuple(r.members),
            territories=frozenset(r.match.territories),
            countries=frozenset(c.upper() for c in r.match.countries),
            segments=frozenset(r.match.segments),
            industries=frozenset(i.strip().lower() for i in r.match.industries),
            lead_types=frozenset(r.match.lead_types), priorities=frozenset(r.match.priorities),
            roles=frozenset(r.match.roles), fit_grades=frozenset(g.upper() for g in r.match.fit_grades),
            min_company_size=r.match.min_company_size, max_company_size=r.match.max_company_size,
            min_score=r.match.min_score,
        )
        for r in shape.rules
    )
    owners = {domain.strip().lower(): rep for domain, rep in shape.account_owners.items()}
    return Roster(reps=reps, territories=territories, rules=rules, account_owners=owners, label=shape.label)


def _check(
    roster: Roster, shape: RosterIn, config: RoutingConfig | None, now_ms: int | None,
    problems: list[str], warnings: list[str],
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
                problems.append(f"{label}.segments: unknown segment {segment!r} (routing config has {sorted(segments)})")
        if r.manager is not None and r.manager not in reps:
            problems.append(f"{label}.manager: unknown rep {r.manager!r}")
        if r.manager == r.id:
            problems.append(f"{label}.manager: a rep cannot be their own manager")
        if config is not None and r.role in config.roles and r.capacity is None:
            problems.append(f"{label}.capacity: required for role {r.role!r} (max open leads, > 0)")
    lead_types = {t.name for t in config.lead_types} | {config.default_lead_type.name} if config else None
    names: dict[str, int] = {}
    for i, r in enumerate(shape.rules):
        label = _rule_label(i, r)
        if r.name in names:
            problems.append(f"{label}: duplicate name (first at rules[{names[r.name]}])")
        names.setdefault(r.name, i)
        for territory in r.match.territories:
            if territory not in territory_ids:
                problems.append(f"{label}.match.territories: unknown territory {territory!r}")
        for segment in r.match.segments:
            if segments is not None and segment not in segments:
                problems.append(f"{label}.match.segments: unknown segment {segment!r}")
        for lead_type in r.match.lead_types:
            if lead_types is not None and lead_type not in lead_types:
                problems.append(f"{label}.match.lead_types: unknown lead type {lead_type!r}")
        for priority in r.match.priorities:
            if priority not in PRIORITIES:
                problems.append(f"{label}.match.priorities: unknown priority {priority!r}")
        m = r.match
        if m.min_company_size is not None and m.max_company_size is not None and m.min_company_size > m.max_company_size:
            problems.append(f"{label}.match: min_company_size {m.min_company_size} > max_company_size {m.max_company_size}")
        for member in r.members:
            if member not in reps:
                problems.append(f"{label}.members: unknown rep {member!r}")
        owner = reps.get(r.default_owner)
        if owner is None:
            problems.append(f"{label}.default_owner: unknown rep {r.default_owner!r}")
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
        nurture = reps.get(config.nurture_owner)
        if nurture is None:
            problems.append(f"nurture owner {config.nurture_owner!r} (routing config nurture_owner): not in the roster")
        else:
            _require_active(f"nurture owner {config.nurture_owner!r}", nurture, now_ms, problems, warnings)
        fallback = reps.get(config.fallback.owner_id)
        if fallback is None:
            warnings.append(f"fallback owner {config.fallback.owner_id!r} is not in the roster; "
                            f"the routing config's name {config.fallback.owner_name!r} is used")
        elif not fallback.active:
            problems.append(f"fallback owner {config.fallback.owner_id!r} (routing config fallback.owner_id): is inactive")
        for role in sorted(config.roles):
            if not any(rep.role == role and rep.active for rep in reps.values()):
                warnings.append(f"no active rep has role {role!r}: such leads go to the fallback owner")


def _require_active(label: str, rep: Rep, now_ms: int | None, problems: list[str], warnings: list[str]) -> None:
    if not rep.active:
        problems.append(f"{label}: {rep.id!r} is inactive")
    elif now_ms is not None and rep.departed_at_ms is not None and now_ms >= rep.departed_at_ms:
        problems.append(f"{label}: {rep.id!r} departed on {iso(rep.departed_at_ms)}")
    elif now_ms is not None and (why := rep.unavailable_reason(now_ms)) is not None:
        warnings.append(f"{label}: {rep.id!r} is {why} (routing skips them meanwhile)")
