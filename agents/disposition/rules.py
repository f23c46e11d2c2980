"""Pure disposition rules: a CRM status (and rejection reason) -> what happens to the lead.

No Faust, Redis or Prometheus here (a unit test enforces it). Two callers share them, so the
lead's state and the published records can never disagree. ``decide`` is the one place a CRM
status is classified, including who publishes its record (``Decision.needs_account``):
- the scoring rules (``agents.scoring.rules``) apply the *effects* to the lead's state - sales
  stage, score reset, permanent exclusion - and publish ``lead_dispositioned`` and the
  data-quality issues for every decision that does not need the account;
- the disposition agent owns conversions (``needs_account``): it publishes them, because
  attaching an opportunity to the existing account needs every lead's accounts (a cross-lead
  registry), not one lead's state (docs/domain.md, "Accounts and duplicates").

The table (defaults from docs/domain.md "Dispositions and recycling"):

| CRM status | outcome | stage | score reset | published |
|---|---|---|---|---|
| first_touch, working, meeting_booked | - | unchanged | no | nothing (SLA touch only) |
| accepted | accepted | sal | no | lead_dispositioned |
| sql | sql | sql | no | lead_dispositioned |
| rejected + permanent reason (scoring model: not_icp, already_customer, bot_or_test) | disqualified | disqualified | no | lead_dispositioned |
| rejected + recycle reason (sla.yaml: not_now, no_response, bad_data) | recycled | recycled | yes | lead_dispositioned with checkpoints |
| rejected + recapture reason (sla.yaml: competitor) | recapture | recycled | yes | lead_dispositioned |
| rejected + any other valid reason | recycled | recycled | yes | lead_dispositioned, no checkpoints |
| rejected without a reason / with an invalid one | - | unchanged | no | data_quality_issue only |
| converted | converted | opportunity | no | lead_dispositioned (by the disposition agent) |
| closed_won, closed_lost | closed | opportunity | no | lead_dispositioned |

Choices a RevOps lead would expect, documented:
- "Bad Data" is recycled (the person may be real; a corrected re-submission may qualify again)
  and *also* published as a data-quality issue ``bad_contact_data``, so someone fixes the record.
- A rejection without a valid reason is not applied at all: the lead keeps its stage and score,
  and ``rejection_without_disposition`` (or ``rejection_with_invalid_disposition``) is
  published; disposition completeness is measurable as 1 - those / rejections.
- Competitor -> "competitive-recapture nurture": stage ``recycled`` (marketing owns it again)
  with outcome ``recapture`` naming the track; no default checkpoints (the brief gives none;
  set them to your competitors' renewal cycle).
- Re-engagement checkpoints are event time + each offset (30/60/90 days by default), so a
  replay yields the same record.

Account matching (conversion): exact domain first (the CRM account's website, else the lead's
corporate email domain), then the normalized company name ("Acme, Inc." == "ACME inc" ==
"acme"); the first account seen for a domain or name is *the* account. A conversion that
proposes a different account id for a known domain is attached to the existing account and
published as ``duplicate_account_prevented``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agents.domain.identity import deterministic_id

DAY_MS = 86_400_000

# Outcomes (docs/contracts.md, lead_dispositioned.outcome).
ACCEPTED, SQL, RECYCLED, RECAPTURE, DISQUALIFIED, CONVERTED, CLOSED = (
    "accepted",
    "sql",
    "recycled",
    "recapture",
    "disqualified",
    "converted",
    "closed",
)
# Data-quality issue codes (metric label issue_code; bounded).
REJECTION_WITHOUT_DISPOSITION = "rejection_without_disposition"
REJECTION_WITH_INVALID_DISPOSITION = "rejection_with_invalid_disposition"
BAD_CONTACT_DATA = "bad_contact_data"
RETURNING_REJECTED_PROSPECT = "returning_rejected_prospect"
DUPLICATE_ACCOUNT_PREVENTED = "duplicate_account_prevented"
CONVERSION_WITHOUT_ACCOUNT = "conversion_without_account"
ISSUE_CODES = (
    REJECTION_WITHOUT_DISPOSITION,
    REJECTION_WITH_INVALID_DISPOSITION,
    BAD_CONTACT_DATA,
    RETURNING_REJECTED_PROSPECT,
    DUPLICATE_ACCOUNT_PREVENTED,
    CONVERSION_WITHOUT_ACCOUNT,
)

TOUCH_ONLY_STATUSES = frozenset({"first_touch", "working", "meeting_booked"})
# Owned by the disposition agent (needs the cross-lead account registry): Decision.needs_account.
ACCOUNT_MATCHED_STATUSES = frozenset({"converted"})
# Rejection reasons that are a data-quality defect in themselves.
DATA_QUALITY_DISPOSITIONS = {"bad_data": BAD_CONTACT_DATA}

_SIMPLE = {
    "accepted": (ACCEPTED, "sal"),
    "sql": (SQL, "sql"),
    "converted": (CONVERTED, "opportunity"),
    "closed_won": (CLOSED, "opportunity"),
    "closed_lost": (CLOSED, "opportunity"),
}


def _days(*days: int) -> tuple[int, ...]:
    return tuple(d * DAY_MS for d in days)


@dataclass(frozen=True)
class DispositionPolicy:
    """Rejection reason -> checkpoint offsets (ms after the rejection), per nurture track.

    Defaults are the brief's; ``config/sla.yaml`` (``dispositions``) overrides them."""

    recycle: dict[str, tuple[int, ...]] = field(
        default_factory=lambda: {
            "not_now": _days(30, 60, 90),
            "no_response": _days(30, 60, 90),
            "bad_data": (),
        }
    )
    recapture: dict[str, tuple[int, ...]] = field(default_factory=lambda: {"competitor": ()})


DEFAULT_POLICY = DispositionPolicy()


@dataclass(frozen=True, slots=True)
class Decision:
    """What a CRM status means for the lead."""

    status: str
    disposition: str | None
    outcome: str | None = None  # None: no lifecycle effect (touch only, or not applicable)
    stage: str | None = None  # stage the lead moves to (None: unchanged)
    score_reset: bool = False
    checkpoint_offsets: tuple[int, ...] = ()
    issues: tuple[tuple[str, str], ...] = ()  # (issue code, readable detail)

    @property
    def publishes_disposition(self) -> bool:
        return self.outcome is not None

    @property
    def needs_account(self) -> bool:
        """A conversion: published by the disposition agent once the account is matched; the
        scoring rules apply its stage and publish nothing for it."""
        return self.publishes_disposition and self.status in ACCOUNT_MATCHED_STATUSES


def decide(
    status: str,
    disposition: str | None,
    *,
    permanent: frozenset[str],
    policy: DispositionPolicy = DEFAULT_POLICY,
    invalid_disposition: str | None = None,
) -> Decision:
    """Classify one CRM status. ``invalid_disposition`` describes a reason the CRM sent that is
    not on the fixed list (when capture passes it through instead of dead-lettering)."""
    if status in _SIMPLE:
        outcome, stage = _SIMPLE[status]
        return Decision(status, disposition, outcome, stage)
    if status != "rejected":
        return Decision(status, disposition)  # touch only
    if disposition is None:
        if invalid_disposition:
            return Decision(
                status,
                None,
                issues=(
                    (
                        REJECTION_WITH_INVALID_DISPOSITION,
                        f"rejected with reason {invalid_disposition}, which is not on the fixed list; "
                        "the rejection was not applied",
                    ),
                ),
            )
        return Decision(
            status,
            None,
            issues=(
                (
                    REJECTION_WITHOUT_DISPOSITION,
                    "rejected without a disposition; the rejection was not applied (the lead keeps its stage)",
                ),
            ),
        )
    issues: tuple[tuple[str, str], ...] = ()
    if disposition in DATA_QUALITY_DISPOSITIONS:
        issues = (
            (DATA_QUALITY_DISPOSITIONS[disposition], f"rejected as {disposition}: the contact data needs fixing"),
        )
    if disposition in permanent:
        return Decision(status, disposition, DISQUALIFIED, "disqualified", issues=issues)
    if disposition in policy.recapture:
        return Decision(status, disposition, RECAPTURE, "recycled", True, policy.recapture[disposition], issues)
    offsets = policy.recycle.get(disposition, ())
    return Decision(status, disposition, RECYCLED, "recycled", True, offsets, issues)


def checkpoints(at_ms: int, offsets: tuple[int, ...]) -> list[int]:
    return [at_ms + offset for offset in offsets]


# --- Records (Avro field names of lead_dispositioned / data_quality_issue) ----------------------


def disposition_id(lead_id: str, crm_event_id: str) -> str:
    return deterministic_id(lead_id, "dispositioned", crm_event_id, prefix="dsp_")


def issue_id(lead_id: str | None, issue_code: str, source_event_id: str | None) -> str:
    return deterministic_id(lead_id, "issue", issue_code, source_event_id, prefix="dq_")


def disposition_record(
    decision: Decision,
    *,
    lead_id: str,
    crm_event_id: str,
    occurred_at_ms: int,
    new_stage: str,
    rep_id: str | None,
    account_id: str | None = None,
    account_domain: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": disposition_id(lead_id, crm_event_id),
        "lead_id": lead_id,
        "occurred_at": occurred_at_ms,
        "status": decision.status,
        "disposition": decision.disposition,
        "outcome": decision.outcome,
        "new_stage": new_stage,
        "score_reset": decision.score_reset,
        "checkpoints": checkpoints(occurred_at_ms, decision.checkpoint_offsets),
        "rep_id": rep_id,
        "account_id": account_id,
        "account_domain": account_domain,
    }


def issue_record(
    issue_code: str,
    detail: str,
    *,
    lead_id: str | None,
    source_event_id: str | None,
    occurred_at_ms: int,
) -> dict[str, Any]:
    return {
        "event_id": issue_id(lead_id, issue_code, source_event_id),
        "lead_id": lead_id,
        "occurred_at": occurred_at_ms,
        "issue_code": issue_code,
        "detail": detail,
        "source_event_id": source_event_id,
    }


# --- Account matching ---------------------------------------------------------------------------

_LEGAL_SUFFIXES = frozenset(
    {
        "inc",
        "incorporated",
        "llc",
        "ltd",
        "limited",
        "corp",
        "corporation",
        "co",
        "company",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "sarl",
        "bv",
        "nv",
        "plc",
        "pty",
        "oy",
        "ab",
        "as",
        "srl",
        "spa",
        "kk",
        "kg",
        "lp",
        "llp",
    }
)
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalize_company(name: object) -> str | None:
    """'ACME, Inc.' -> 'acme'; None for names too generic to match on."""
    if not name:
        return None
    words = [w for w in _NON_WORD.sub(" ", str(name).lower().replace("&", " and ")).split()]
    while words and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    if words and words[0] == "the":
        words = words[1:]
    key = " ".join(words)
    return key if len(key) >= 2 else None


@dataclass(frozen=True, slots=True)
class AccountMatch:
    account_id: str | None
    matched_by: str | None  # "domain", "company" or None (new account / none)
    duplicate_prevented: bool  # the CRM proposed another id for an existing account
    register_domain: bool  # remember domain -> account_id
    register_company: bool  # remember company key -> account_id


def match_account(
    proposed_id: str | None,
    *,
    domain: str | None,
    company_key: str | None,
    by_domain: str | None,
    by_company: str | None,
) -> AccountMatch:
    """Decide which account a conversion attaches to, given the registry's current answers
    for the lead's domain (``by_domain``) and company key (``by_company``)."""
    existing, matched_by = (
        (by_domain, "domain") if by_domain else ((by_company, "company") if by_company else (None, None))
    )
    if existing is not None:
        return AccountMatch(
            existing,
            matched_by,
            bool(proposed_id) and proposed_id != existing,
            register_domain=bool(domain) and by_domain is None,
            register_company=bool(company_key) and by_company is None,
        )
    return AccountMatch(
        proposed_id,
        None,
        False,
        register_domain=bool(domain and proposed_id),
        register_company=bool(company_key and proposed_id),
    )


def account_issue(match: AccountMatch, *, proposed_id: str | None, domain: str | None) -> tuple[str, str] | None:
    if match.duplicate_prevented:
        where = f"domain {domain}" if match.matched_by == "domain" else "the same company name"
        return (
            DUPLICATE_ACCOUNT_PREVENTED,
            f"conversion proposed account {proposed_id} but {where} already belongs to account "
            f"{match.account_id}; attached to {match.account_id}",
        )
    if match.account_id is None:
        return (
            CONVERSION_WITHOUT_ACCOUNT,
            "converted without an account id and no existing account matches the lead's domain or company",
        )
    return None
