"""What routing knows about a lead, read from the typed fields of its LeadQualified record.

Evidence comes only from the MQL record (routing keeps no lead state of its own), and only
from typed fields - never from display text such as the handoff's trigger or its fit-check
lines:

- a v3 record (``schemas/lead_qualified.v3.avsc``) carries the facts: ``firmographics``
  (company size, industry, country, segment, fit grade), ``signals`` with their points (those
  adding points count) and ``form_kinds``;
- a record written before v3 (v1/v2, ``firmographics`` null) is routed with **unknown
  firmographics**: country, company size and industry are None, so no territory, and rules on
  territory, country, segment, industry or company size do not match it; the account owner,
  rules on lead type, priority, fit grade or score, the role's round robin and the fallback
  owner still apply, and the first line of the assignment's audit says so
  (``LEGACY_FACTS_NOTE``). Its signals are the breakdown's signals adding points, its form
  kinds those of the handoff's ``form:<kind>`` touches (both typed fields);
- the account domain: ``account_key`` when it is a domain, else the email's domain.

The priority is ``agents.routing.priority.classify`` (re-exported here): routing's
configuration decides it; the record's ``priority_hint`` and ``lead_type`` are what scoring
computed with the same policy, and are not read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.domain.lead_facts import PriorityDecision
from agents.routing.config import RoutingConfig
from agents.routing.exceptions import RoutingError
from agents.routing.priority import classify, matches

__all__ = ["LEGACY_FACTS_NOTE", "LeadFacts", "PriorityDecision", "classify", "facts_from_mql", "matches"]

FORM_TOUCH_PREFIX = "form:"
LEGACY_FACTS_NOTE = (
    "lead_qualified written before v3 carries no structured facts: country, company size, industry "
    "and segment unknown, so territory and attribute rules on them do not match"
)


@dataclass(frozen=True, slots=True)
class LeadFacts:
    lead_id: str
    mql_event_id: str
    mql_number: int
    score: float
    fit_grade: str | None
    fast_track: bool
    domain: str | None  # account domain for account-owner lookup
    country: str | None  # upper-case ISO code
    company_size: int | None
    industry: str | None  # lower-case
    form_kinds: frozenset[str]
    signals: frozenset[str]  # behavioural signals adding points
    facts_known: bool = True  # False: a record written before v3 (firmographics unknown)


def facts_from_mql(record: dict[str, Any], config: RoutingConfig) -> LeadFacts:
    """``config`` is not needed to read the facts; kept so callers read and classify alike."""
    try:
        lead_id = record["lead_id"]
        event_id = record["event_id"]
    except KeyError as exc:
        raise RoutingError(f"lead_qualified record without {exc.args[0]}") from None
    firmographics = record.get("firmographics")
    known = isinstance(firmographics, dict)
    firm: dict[str, Any] = firmographics if isinstance(firmographics, dict) else {}
    country, industry, size = firm.get("country"), firm.get("industry"), firm.get("company_size")
    return LeadFacts(
        lead_id=lead_id,
        mql_event_id=event_id,
        mql_number=int(record.get("mql_number") or 1),
        score=float(record.get("score") or 0.0),
        fit_grade=firm.get("fit_grade") or record.get("fit_grade"),
        fast_track=bool(record.get("fast_track")),
        domain=_domain(record),
        country=country.strip().upper() or None if country else None,
        company_size=int(size) if size is not None else None,
        industry=industry.strip().lower() or None if industry else None,
        form_kinds=_form_kinds(record),
        signals=_signals(record),
        facts_known=known,
    )


# --- helpers ------------------------------------------------------------------------------


def _signals(record: dict[str, Any]) -> frozenset[str]:
    """v3 ``signals``; before v3 the breakdown (the same names, fit points included)."""
    items = record.get("signals")
    if items is None:
        items = record.get("breakdown") or ()
    return frozenset(item["signal"] for item in items if (item.get("points") or 0) > 0)


def _form_kinds(record: dict[str, Any]) -> frozenset[str]:
    """v3 ``form_kinds``; before v3 the kinds of the handoff's ``form:<kind>`` touches."""
    kinds = record.get("form_kinds")
    if kinds is not None:
        return frozenset(kinds)
    touches = (record.get("handoff") or {}).get("last_touches") or ()
    return frozenset(
        kind.removeprefix(FORM_TOUCH_PREFIX)
        for kind in (t.get("kind") or "" for t in touches)
        if kind.startswith(FORM_TOUCH_PREFIX)
    )


def _domain(record: dict[str, Any]) -> str | None:
    key = (record.get("account_key") or "").strip().lower()
    if "." in key and "@" not in key and " " not in key:
        return key
    email = (record.get("email") or "").strip().lower()
    return email.rpartition("@")[2] or None if "@" in email else None
