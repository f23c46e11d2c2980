"""The roster's runtime form: plain frozen dataclasses, times as epoch ms (no Redis, no validation).

It round-trips through ``to_dict``/``from_dict`` (the JSON document stored in Redis). The file
format and its validation are ``agents.routing.roster`` (``parse_roster``) and
``agents.routing.roster_validation``; both import this module, and ``agents.routing.roster``
re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

ROSTER_FORMAT = 1

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
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "team": self.team,
            "manager": self.manager,
            "active": self.active,
            "departed_at_ms": self.departed_at_ms,
            "out_of_office": [list(w) for w in self.out_of_office],
            "capacity": self.capacity,
            "territories": sorted(self.territories),
            "segments": sorted(self.segments),
            "round_robin": self.round_robin,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rep:
        return cls(
            id=d["id"],
            name=d["name"],
            role=d["role"],
            team=d.get("team"),
            manager=d.get("manager"),
            active=bool(d.get("active", True)),
            departed_at_ms=d.get("departed_at_ms"),
            out_of_office=tuple((int(a), int(b)) for a, b in d.get("out_of_office") or ()),
            capacity=d.get("capacity"),
            territories=frozenset(d.get("territories") or ()),
            segments=frozenset(d.get("segments") or ()),
            round_robin=bool(d.get("round_robin", True)),
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


MATCH_LIST_FIELDS = (
    "territories",
    "countries",
    "segments",
    "industries",
    "lead_types",
    "priorities",
    "roles",
    "fit_grades",
)


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
        d.update(
            min_company_size=self.min_company_size, max_company_size=self.max_company_size, min_score=self.min_score
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rule:
        return cls(
            name=d["name"],
            default_owner=d["default_owner"],
            members=tuple(d.get("members") or ()),
            **{name: frozenset(d.get(name) or ()) for name in MATCH_LIST_FIELDS},
            min_company_size=d.get("min_company_size"),
            max_company_size=d.get("max_company_size"),
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


# --- Times ----------------------------------------------------------------------------------


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
