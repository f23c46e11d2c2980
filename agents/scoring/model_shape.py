"""The scoring model's shape (validation pass 1) and the lookups derived from it.

Types only: ``agents.scoring.model`` loads and validates a file (pass 2 is
``model_checks.semantic_problems``, which reads these types); both import this module, and
``agents.scoring.model`` re-exports every name here.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.scoring.text import normalize_token, normalize_words

DAY_MS = 86_400_000
GRADES = ("A", "B", "C", "D", "E", "F")  # A = best fit; F = excluded / blocked

# --- Shape (pass 1) -------------------------------------------------------------------


class _Strict(BaseModel):
    # allow_inf_nan: a `.nan` threshold would make every comparison false (no lead could qualify).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Thresholds(_Strict):
    mql: float
    fast_track: float
    mql_rearm_at: float | None = None  # None -> same as mql


class Decay(_Strict):
    half_life_days: float = Field(gt=0)


class Inactivity(_Strict):
    after_days: float = Field(gt=0)
    points: float = Field(le=0)


class FitGate(_Strict):
    min_grade: Literal["A", "B", "C", "D", "E"]
    free_email_fails_gate: bool
    min_seconds_to_fill: float = Field(ge=0)


class FitPoints(_Strict):
    points: float


class CompanySizePoints(_Strict):
    points: float
    above: int = Field(ge=0)


class FitSignals(_Strict):
    senior_title: FitPoints
    company_size: CompanySizePoints
    icp_industry: FitPoints
    free_email: FitPoints
    competitor_domain: FitPoints


class SignalRule(_Strict):
    points: float
    cap: float
    every: int = Field(1, ge=1)


class EventSignals(_Strict):
    form_kinds: dict[str, str | None]
    activity_kinds: dict[str, str | None]
    page_types: dict[str, str | None]


class SizeRange(_Strict):
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class Icp(_Strict):
    company_size: SizeRange
    industries: list[str]
    excluded_industries: list[str] = []
    min_seniority: str
    countries: list[str]  # empty = every country matches
    excluded_countries: list[str] = []
    grades: dict[Literal["A", "B", "C", "D"], int]


class Seniority(_Strict):
    levels: dict[str, list[str]]  # highest level first
    senior_from: str
    ignore_if: list[str] = []


class Domains(_Strict):
    free_email: list[str]
    competitors: list[str]
    disposable: list[str]


class ChannelRule(_Strict):
    media: list[str] = Field(min_length=1)
    sources: list[str] = []
    channel: str


class Attribution(_Strict):
    channels: list[str]
    unrecognized_channel: str
    missing_channel: str
    not_sources: list[str]
    medium_rules: list[ChannelRule]
    source_aliases: dict[str, list[str]]


class Dispositions(_Strict):
    permanent: list[str]


class ProblemHypotheses(_Strict):
    page_types: dict[str, str]
    content: str
    default: str


class Handoff(_Strict):
    last_touches: int = Field(ge=1, le=20)
    problem_hypotheses: ProblemHypotheses
    openers: dict[str, str]


class MqlUpgrades(_Strict):
    """A raised priority on an MQL already sent (issue 11 item 5): re-issue its LeadQualified.

    Optional in a model file (older files keep working): the defaults below apply."""

    enabled: bool = True
    # An event older than this at processing time never re-prioritises a lead: a demo request
    # from last quarter delivered late by a retry queue is history, not a hot lead today.
    max_event_age_days: float = Field(14, gt=0)


class ScoringModel(_Strict):
    """A validated, frozen scoring model. Build it with ``load_model`` or ``parse_model``."""

    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    thresholds: Thresholds
    decay: Decay
    inactivity: Inactivity
    fit_gate: FitGate
    fit_signals: FitSignals
    signals: dict[str, SignalRule]
    event_signals: EventSignals
    icp: Icp
    seniority: Seniority
    domains: Domains
    attribution: Attribution
    dispositions: Dispositions
    handoff: Handoff
    mql_upgrades: MqlUpgrades = MqlUpgrades()

    # --- derived lookups (computed once per model) ------------------------------------

    @cached_property
    def half_life_ms(self) -> float:
        return self.decay.half_life_days * DAY_MS

    @cached_property
    def inactivity_ms(self) -> int:
        return round(self.inactivity.after_days * DAY_MS)

    @cached_property
    def upgrade_max_event_age_ms(self) -> int:
        return round(self.mql_upgrades.max_event_age_days * DAY_MS)

    @cached_property
    def rearm_at(self) -> float:
        rearm = self.thresholds.mql_rearm_at
        return self.thresholds.mql if rearm is None else rearm

    @cached_property
    def signal_order(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.signals)}

    @cached_property
    def cap_units(self) -> dict[str, float]:
        """Per signal, the cap expressed in occurrences (state stores occurrences, not points)."""
        return {name: rule.cap / rule.points for name, rule in self.signals.items()}

    @cached_property
    def free_email_domains(self) -> frozenset[str]:
        return frozenset(d.lower() for d in self.domains.free_email)

    @cached_property
    def competitor_domains(self) -> frozenset[str]:
        return frozenset(d.lower() for d in self.domains.competitors)

    @cached_property
    def disposable_domains(self) -> frozenset[str]:
        return frozenset(d.lower() for d in self.domains.disposable)

    @cached_property
    def icp_industries(self) -> frozenset[str]:
        return frozenset(filter(None, map(normalize_token, self.icp.industries)))

    @cached_property
    def excluded_industries(self) -> frozenset[str]:
        return frozenset(filter(None, map(normalize_token, self.icp.excluded_industries)))

    @cached_property
    def icp_countries(self) -> frozenset[str]:
        return frozenset(c.upper() for c in self.icp.countries)

    @cached_property
    def excluded_countries(self) -> frozenset[str]:
        return frozenset(c.upper() for c in self.icp.excluded_countries)

    @cached_property
    def grade_floors(self) -> tuple[tuple[str, int], ...]:
        """(grade, minimum criteria matched), best grade first."""
        return tuple(sorted(self.icp.grades.items()))

    @cached_property
    def seniority_rank(self) -> dict[str, int]:
        """Level -> rank, 0 = most senior."""
        return {level: rank for rank, level in enumerate(self.seniority.levels)}

    @cached_property
    def seniority_keywords(self) -> tuple[tuple[str, str], ...]:
        """(' keyword ', level): longest keyword first, then most senior level."""
        pairs = [
            (normalize_words(keyword), level)
            for level, keywords in self.seniority.levels.items()
            for keyword in keywords
        ]
        pairs.sort(key=lambda p: (-len(p[0]), self.seniority_rank[p[1]]))
        return tuple((f" {kw} ", level) for kw, level in pairs if kw)

    @cached_property
    def seniority_ignore(self) -> tuple[str, ...]:
        return tuple(f" {w} " for w in map(normalize_words, self.seniority.ignore_if) if w)

    @cached_property
    def title_levels(self) -> dict[str, str | None]:
        """Memo of job title -> seniority level (titles repeat a lot across leads)."""
        return {}

    @cached_property
    def fit_memo(self) -> dict[tuple, Any]:
        """Memo of fit inputs -> FitAssessment (see fit.assess_fit)."""
        return {}

    @cached_property
    def not_sources(self) -> frozenset[str]:
        return frozenset(filter(None, map(normalize_token, self.attribution.not_sources)))

    @cached_property
    def compiled_medium_rules(self) -> tuple[tuple[frozenset[str], frozenset[str], str], ...]:
        return tuple(
            (
                frozenset(filter(None, map(normalize_token, rule.media))),
                frozenset(filter(None, map(normalize_token, rule.sources))),
                rule.channel,
            )
            for rule in self.attribution.medium_rules
        )

    @cached_property
    def source_channels(self) -> dict[str, str]:
        return {
            token: channel
            for channel, raws in self.attribution.source_aliases.items()
            for token in filter(None, map(normalize_token, raws))
        }

    @cached_property
    def permanent_dispositions(self) -> frozenset[str]:
        return frozenset(self.dispositions.permanent)
