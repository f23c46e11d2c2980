"""What a lead's priority is decided on, and the decision: the vocabulary scoring and routing share.

Routing owns the priority policy (``config/routing.yaml``: ``lead_types``,
``default_lead_type``, ``fast_track_priority``, ``fit_bump``; ``agents.routing.priority``).
Scoring needs the same decision for the LeadQualified it sends (``priority_hint``,
``lead_type``, ``firmographics.segment``) and to notice a raised priority (P1 upgrades), so
the composition root hands it routing's policy as a ``PriorityPolicy``: a plain function of
``IntentFacts``. Neither capability imports the other; there is one policy and one file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class HasIntent(Protocol):
    """Anything carrying the facts a priority is decided on (``IntentFacts``, routing's ``LeadFacts``)."""

    @property
    def form_kinds(self) -> frozenset[str]: ...

    @property
    def signals(self) -> frozenset[str]: ...

    @property
    def fit_grade(self) -> str | None: ...

    @property
    def company_size(self) -> int | None: ...

    @property
    def fast_track(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class IntentFacts:
    form_kinds: frozenset[str]  # kinds of the forms the lead submitted (recent touches)
    signals: frozenset[str]  # behavioural signals adding points now
    fit_grade: str | None
    company_size: int | None
    fast_track: bool


@dataclass(frozen=True, slots=True)
class PriorityDecision:
    priority: str  # P1, P2 or P3
    lead_type: str  # a configured lead type, or the default type's name
    segment: str | None  # company-size segment, None when the size is unknown
    reason: str  # e.g. "demo_request -> P1; fit grade A"


PriorityPolicy = Callable[[HasIntent], PriorityDecision]
