"""Per-lead and per-visitor state, as stored in the Faust tables (orjson of ``to_dict()``).

Design notes:
- Behavioural signals are stored as *occurrence units*, not points: ``SignalTotal.units``
  is "how many (decayed) occurrences count right now", saturated at the signal's cap. Points
  are ``units x points`` of the *current* model, so a recalibrated model (new points) applies
  to existing leads without a replay. The decay clock of each signal is its own ``at_ms``.
- Fit is not stored as points either: it is recomputed from the profile (title, size,
  industry, country, email domain) on every evaluation, so it never decays and always
  follows the current model.
- Anything that must not depend on arrival order (profile fields, touches, content,
  attribution) is ordered by (event time, event id), the tie-break for same-time events.
- ``to_dict()`` is JSON-safe (str/int/float/bool/None/list/dict only) and compact (small
  records become arrays) because it is written once per event; ``"v"`` versions the layout.

The rules never mutate a state they are given: they work on ``clone()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

STATE_LAYOUT_VERSION = 1
# MQL crossings remembered per lead (the lead API's MQL history): the newest ones.
MQL_HISTORY_KEPT = 10

# Profile fields taken from form submits (latest non-empty value by event time wins).
PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "job_title",
    "company",
    "company_size",
    "industry",
    "country",
)


@dataclass(frozen=True, slots=True)
class SignalTotal:
    units: float  # decayed occurrences as of at_ms, never above the signal's cap
    at_ms: int  # the time `units` is valid at (decay runs from here)
    count: int  # occurrences seen since the last score reset
    last_ms: int  # newest occurrence (event time)

    def to_list(self) -> list[Any]:
        return [self.units, self.at_ms, self.count, self.last_ms]

    @classmethod
    def from_list(cls, raw: list[Any]) -> SignalTotal:
        return cls(float(raw[0]), int(raw[1]), int(raw[2]), int(raw[3]))


@dataclass(frozen=True, slots=True)
class Touch:
    """One interaction shown to reps (handoff ``last_touches``)."""

    kind: str  # form:<form_kind>, <activity_kind>, page_view:<page_type>, crm:<status>
    detail: str | None
    occurred_at_ms: int
    event_id: str

    @property
    def order(self) -> tuple[int, str]:
        return (self.occurred_at_ms, self.event_id)

    def to_list(self) -> list[Any]:
        return [self.kind, self.detail, self.occurred_at_ms, self.event_id]

    @classmethod
    def from_list(cls, raw: list[Any]) -> Touch:
        return cls(raw[0], raw[1], int(raw[2]), raw[3])


@dataclass(frozen=True, slots=True)
class SourceTouch:
    """An attributed touch: the channel and the raw values it was derived from."""

    channel: str
    source: str | None
    medium: str | None
    campaign: str | None
    occurred_at_ms: int
    event_id: str

    @property
    def order(self) -> tuple[int, str]:
        return (self.occurred_at_ms, self.event_id)

    def to_list(self) -> list[Any]:
        return [self.channel, self.source, self.medium, self.campaign, self.occurred_at_ms, self.event_id]

    @classmethod
    def from_list(cls, raw: list[Any] | None) -> SourceTouch | None:
        if raw is None:
            return None
        return cls(raw[0], raw[1], raw[2], raw[3], int(raw[4]), raw[5])


@dataclass(slots=True)
class LeadState:
    lead_id: str
    email: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)  # PROFILE_FIELDS -> value
    profile_order: dict[str, list[Any]] = field(default_factory=dict)  # field -> [ms, event id]
    stage: str = "new"
    # Permanent exclusions (sorted reasons): bot_signal, disposable_domain, crm_rejected:<disposition>.
    disqualifications: list[str] = field(default_factory=list)
    bot_signals: list[str] = field(default_factory=list)  # honeypot_filled, filled_too_fast
    bot_evidence: dict[str, list] = field(default_factory=dict)  # signal -> [ms, event id, what was seen]
    as_of_ms: int = 0  # the lead's clock: newest event time applied, or the last review time
    created_at_ms: int | None = None  # oldest event time seen
    last_engaged_ms: int | None = None  # newest buyer activity (drives the inactivity penalty)
    score_reset_at_ms: int | None = None  # events before this no longer score (recycling)
    signals: dict[str, SignalTotal] = field(default_factory=dict)
    page_views: dict[str, int] = field(default_factory=dict)  # page type -> count
    content: list[list[Any]] = field(default_factory=list)  # [ms, event id, title], oldest first
    first_touch: SourceTouch | None = None
    last_touch: SourceTouch | None = None
    unattributed_capture: bool = False  # a form arrived with no usable source
    touches: list[Touch] = field(default_factory=list)  # oldest first, bounded
    # Event time (a function of the events): ``mql`` = an MQL episode is open at the lead's
    # clock, ``mql_number`` counts episodes (crossings), historical ones included.
    mql: bool = False
    mql_number: int = 0
    qualified_at_ms: int | None = None  # lead clock at the latest crossing
    # The newest crossings, oldest first: [mql_number, lead clock at the crossing, score].
    mql_history: list[list[Any]] = field(default_factory=list)
    # Delivery ledger (depends on processing time): the highest mql_number whose LeadQualified
    # was sent, and the priority hint of the last LeadQualified sent for it (None: none sent,
    # or a state written before upgrades existed). Stage "mql" needs mql_sent == mql_number.
    mql_sent: int = 0
    sent_priority: str | None = None
    crm_account_id: str | None = None
    crm_account_domain: str | None = None
    # Newest lifecycle-changing CRM status applied, [ms, event id, status, disposition]: a late
    # (older) status is recorded as a touch but does not overwrite the stage it set.
    crm_status: list[Any] | None = None
    excluded_at_ms: int | None = None  # earliest permanent CRM rejection (returning-prospect check)
    linked_visitor_ids: list[str] = field(default_factory=list)  # sorted, bounded
    recent_event_ids: list[str] = field(default_factory=list)  # arrival order, bounded
    event_count: int = 0
    model_version: str | None = None  # model that last scored this lead
    # Reorder window (agents/scoring/reorder.py), JSON as stored: the settled snapshot, the
    # recent events in event-time order and when a deferred MQL decision is due. None when
    # the lead had no event within the window (or the window is off).
    window: dict[str, Any] | None = None

    @property
    def disqualified(self) -> bool:
        return bool(self.disqualifications)

    @property
    def mql_delivered(self) -> bool:
        """An MQL episode is open *and* its LeadQualified was sent: what "is an MQL" means to
        everyone outside scoring (``lead_scored.mql``, stage ``mql``)."""
        return self.mql and self.mql_sent >= self.mql_number

    def clone(self) -> LeadState:
        """A copy the rules may modify (inner records are immutable, so containers suffice)."""
        return LeadState(
            lead_id=self.lead_id,
            email=self.email,
            profile=dict(self.profile),
            profile_order=dict(self.profile_order),
            stage=self.stage,
            disqualifications=list(self.disqualifications),
            bot_signals=list(self.bot_signals),
            bot_evidence=dict(self.bot_evidence),
            as_of_ms=self.as_of_ms,
            created_at_ms=self.created_at_ms,
            last_engaged_ms=self.last_engaged_ms,
            score_reset_at_ms=self.score_reset_at_ms,
            signals=dict(self.signals),
            page_views=dict(self.page_views),
            content=list(self.content),
            first_touch=self.first_touch,
            last_touch=self.last_touch,
            unattributed_capture=self.unattributed_capture,
            touches=list(self.touches),
            mql=self.mql,
            mql_number=self.mql_number,
            qualified_at_ms=self.qualified_at_ms,
            mql_history=list(self.mql_history),
            mql_sent=self.mql_sent,
            sent_priority=self.sent_priority,
            crm_account_id=self.crm_account_id,
            crm_account_domain=self.crm_account_domain,
            crm_status=list(self.crm_status) if self.crm_status is not None else None,
            excluded_at_ms=self.excluded_at_ms,
            linked_visitor_ids=list(self.linked_visitor_ids),
            recent_event_ids=list(self.recent_event_ids),
            event_count=self.event_count,
            model_version=self.model_version,
            window=self.window,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_LAYOUT_VERSION,
            "lead_id": self.lead_id,
            "email": self.email,
            "profile": self.profile,
            "profile_order": self.profile_order,
            "stage": self.stage,
            "disqualifications": self.disqualifications,
            "bot_signals": self.bot_signals,
            "bot_evidence": self.bot_evidence,
            "as_of_ms": self.as_of_ms,
            "created_at_ms": self.created_at_ms,
            "last_engaged_ms": self.last_engaged_ms,
            "score_reset_at_ms": self.score_reset_at_ms,
            "signals": {name: total.to_list() for name, total in self.signals.items()},
            "page_views": self.page_views,
            "content": self.content,
            "first_touch": self.first_touch.to_list() if self.first_touch else None,
            "last_touch": self.last_touch.to_list() if self.last_touch else None,
            "unattributed_capture": self.unattributed_capture,
            "touches": [t.to_list() for t in self.touches],
            "mql": self.mql,
            "mql_number": self.mql_number,
            "qualified_at_ms": self.qualified_at_ms,
            "mql_history": self.mql_history,
            "mql_sent": self.mql_sent,
            "sent_priority": self.sent_priority,
            "crm_account_id": self.crm_account_id,
            "crm_account_domain": self.crm_account_domain,
            "crm_status": self.crm_status,
            "excluded_at_ms": self.excluded_at_ms,
            "linked_visitor_ids": self.linked_visitor_ids,
            "recent_event_ids": self.recent_event_ids,
            "event_count": self.event_count,
            "model_version": self.model_version,
        } | ({"window": self.window} if self.window is not None else {})

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LeadState:
        version = raw.get("v", STATE_LAYOUT_VERSION)
        if version != STATE_LAYOUT_VERSION:
            raise ValueError(f"LeadState layout v={version!r} is not supported (expected {STATE_LAYOUT_VERSION})")
        return cls(
            lead_id=raw["lead_id"],
            email=raw.get("email"),
            profile=dict(raw.get("profile") or {}),
            profile_order={k: list(v) for k, v in (raw.get("profile_order") or {}).items()},
            stage=raw.get("stage", "new"),
            disqualifications=list(raw.get("disqualifications") or []),
            bot_signals=list(raw.get("bot_signals") or []),
            bot_evidence=dict(raw.get("bot_evidence") or {}),
            as_of_ms=int(raw.get("as_of_ms") or 0),
            created_at_ms=raw.get("created_at_ms"),
            last_engaged_ms=raw.get("last_engaged_ms"),
            score_reset_at_ms=raw.get("score_reset_at_ms"),
            signals={k: SignalTotal.from_list(v) for k, v in (raw.get("signals") or {}).items()},
            page_views={k: int(v) for k, v in (raw.get("page_views") or {}).items()},
            content=[list(c) for c in raw.get("content") or []],
            first_touch=SourceTouch.from_list(raw.get("first_touch")),
            last_touch=SourceTouch.from_list(raw.get("last_touch")),
            unattributed_capture=bool(raw.get("unattributed_capture", False)),
            touches=[Touch.from_list(t) for t in raw.get("touches") or []],
            mql=bool(raw.get("mql", False)),
            mql_number=int(raw.get("mql_number") or 0),
            qualified_at_ms=raw.get("qualified_at_ms"),
            mql_history=[list(h) for h in raw.get("mql_history") or []],
            # States written before the ledger existed: every crossing was sent.
            mql_sent=int(raw["mql_sent"] if raw.get("mql_sent") is not None else raw.get("mql_number") or 0),
            sent_priority=raw.get("sent_priority"),
            crm_account_id=raw.get("crm_account_id"),
            crm_account_domain=raw.get("crm_account_domain"),
            crm_status=list(raw["crm_status"]) if raw.get("crm_status") is not None else None,
            excluded_at_ms=raw.get("excluded_at_ms"),
            linked_visitor_ids=list(raw.get("linked_visitor_ids") or []),
            recent_event_ids=list(raw.get("recent_event_ids") or []),
            event_count=int(raw.get("event_count") or 0),
            model_version=raw.get("model_version"),
            window=raw.get("window"),
        )


@dataclass(slots=True)
class VisitorState:
    """An anonymous visitor: pages buffered until identification, then the lead it maps to."""

    visitor_id: str
    lead_id: str | None = None
    buffered: list[dict[str, Any]] = field(default_factory=list)  # LeadEvent dicts, oldest first
    dropped: int = 0  # buffered events evicted by the size bound (kept for monitoring)

    def clone(self) -> VisitorState:
        return replace(self, buffered=list(self.buffered))

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_LAYOUT_VERSION,
            "visitor_id": self.visitor_id,
            "lead_id": self.lead_id,
            "buffered": self.buffered,
            "dropped": self.dropped,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> VisitorState:
        return cls(
            visitor_id=raw["visitor_id"],
            lead_id=raw.get("lead_id"),
            buffered=[dict(e) for e in raw.get("buffered") or []],
            dropped=int(raw.get("dropped") or 0),
        )
