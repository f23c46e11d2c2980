"""Fit: the ICP gate, the A-F grade and the fit points (which never decay).

Grade. Four ICP criteria are checked - company size range, industry, seniority (from the
job title), geography - each as passed / failed / unknown. The grade is the best whose
floor (``icp.grades``, criteria passed) is met, else E; it is None while nothing is known
yet (the contract's "null until enough firmographics are known"). F means blocked:
competitor or disposable domain, a bot signal, an excluded industry or country.

Gate. A lead passes when its grade is at least ``fit_gate.min_grade``, it is not F, it has
an email, it is not disqualified, and - unless ``fit_gate.free_email_fails_gate`` is false -
it is not on a free email provider. Failing the gate means nurture only, whatever the score.
When it fails, ``gate_failures`` says why, one entry per cause: a reason code from
``GATE_REASONS``, the failing signal or value (``honeypot_filled``, ``gmail.com``, ``KP``...)
and a sentence for people ("contact_request form filled in 0.4 s (a person needs at least 3 s)").
The grade and the gate are separate facts: a gmail.com address can have grade A (right
company size, industry, seniority and country) and still fail the gate.

Fit points (``fit_signals``, no decay): seniority Director+ (+10), size > 100 (+5), ICP
industry (+5), free email (-10), competitor (-20). Disposable domains and bots earn no
points: they are rejected outright (the rules disqualify them permanently).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.domain.identity import email_domain
from agents.scoring.breakdown import BreakdownItem
from agents.scoring.model import GRADES
from agents.scoring.text import normalize_token, normalize_words

if TYPE_CHECKING:
    from agents.scoring.model import ScoringModel
    from agents.scoring.state import LeadState

PASSED, FAILED, FLAGGED, UNKNOWN = "passed", "failed", "flagged", "unknown"
_TITLE_MEMO_LIMIT = 50_000
_FIT_MEMO_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class FitCheck:
    name: str
    status: str  # passed / failed / flagged / unknown
    detail: str | None = None

    def describe(self) -> str:
        return f"{self.name}: {self.status}" + (f" ({self.detail})" if self.detail else "")


# Closed vocabulary of gate failure codes (Avro GateFailure.code, metric label).
GATE_REASONS = (
    "no_email",
    "free_email",
    "competitor_domain",
    "disposable_domain",
    "bot_signal",
    "excluded_industry",
    "excluded_country",
    "fit_grade_below_minimum",
    "fit_unknown",
    "crm_rejected",
)


@dataclass(frozen=True, slots=True)
class GateFailure:
    code: str  # one of GATE_REASONS
    signal: str | None  # the failing signal or value
    detail: str

    def to_record(self) -> dict[str, Any]:
        return {"code": self.code, "signal": self.signal, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class FitAssessment:
    grade: str | None
    passed: bool
    points: float
    items: tuple[BreakdownItem, ...]
    checks: tuple[FitCheck, ...]
    email_domain: str | None
    rejection: str | None  # disposable_domain / bot_signal: the lead is rejected for good
    gate_failures: tuple[GateFailure, ...] = ()  # why ``passed`` is False (empty when it passes)


def domain_in(domain: str | None, domains: frozenset[str]) -> bool:
    """Exact domain or any parent domain: 'eu.mailinator.com' is a mailinator.com address."""
    if not domain:
        return False
    parts = domain.split(".")
    return any(".".join(parts[i:]) in domains for i in range(len(parts) - 1))


def seniority_level(title: str | None, model: ScoringModel) -> str | None:
    """The seniority level a job title names, or None when it names none (or is ignored)."""
    if not title:
        return None
    memo = model.title_levels
    if title in memo:
        return memo[title]
    words = f" {normalize_words(title)} "
    level = None
    if not any(ignored in words for ignored in model.seniority_ignore):
        level = next((lvl for keyword, lvl in model.seniority_keywords if keyword in words), None)
    if len(memo) < _TITLE_MEMO_LIMIT:  # bounded: titles are free text
        memo[title] = level
    return level


def assess_fit(state: LeadState, model: ScoringModel) -> FitAssessment:
    """The lead's fit now; memoized per model on exactly the inputs it reads (leads' fit
    inputs rarely change between events, and the assessment is immutable)."""
    profile = state.profile
    key = (
        state.email,
        profile.get("job_title"),
        profile.get("company_size"),
        profile.get("industry"),
        profile.get("country"),
        tuple(state.bot_signals),
        tuple(state.disqualifications),
        tuple(sorted((k, tuple(v)) for k, v in state.bot_evidence.items())),
    )
    memo = model.fit_memo
    found = memo.get(key)
    if found is None:
        if len(memo) >= _FIT_MEMO_LIMIT:
            memo.clear()  # bounded; rebuilt from the hot leads within a few events
        found = memo[key] = _assess_fit(state, model)
    return found


def _assess_fit(state: LeadState, model: ScoringModel) -> FitAssessment:
    profile = state.profile
    domain = email_domain(state.email) if state.email else None
    fp = model.fit_signals
    items: list[BreakdownItem] = []
    checks: list[FitCheck] = []
    blocked: list[str] = []

    # Email domain and bot checks: the disqualifiers reps want to see were run.
    is_free = domain_in(domain, model.free_email_domains)
    is_competitor = domain_in(domain, model.competitor_domains)
    is_disposable = domain_in(domain, model.disposable_domains)
    if is_free:
        items.append(BreakdownItem("free_email", fp.free_email.points, f"{domain} is a free email provider"))
    free_status = (FAILED if model.fit_gate.free_email_fails_gate else FLAGGED) if is_free else PASSED
    checks.append(FitCheck("free_email", free_status if domain else UNKNOWN, domain if is_free else None))
    if is_competitor:
        items.append(BreakdownItem("competitor_domain", fp.competitor_domain.points, f"{domain} is a competitor"))
        blocked.append("competitor_domain")
    checks.append(FitCheck("competitor_domain", FAILED if is_competitor else PASSED))
    if is_disposable:
        blocked.append("disposable_domain")
    checks.append(FitCheck("disposable_domain", FAILED if is_disposable else PASSED))
    if state.bot_signals:
        blocked.append("bot_signal")
    checks.append(
        FitCheck("bot_signals", FAILED if state.bot_signals else PASSED, ", ".join(state.bot_signals) or None)
    )

    # ICP criteria.
    criteria: list[FitCheck] = []
    size = profile.get("company_size")
    size_rule = model.icp.company_size
    if size is None:
        criteria.append(FitCheck("icp_company_size", UNKNOWN))
    else:
        in_range = (size_rule.min is None or size >= size_rule.min) and (size_rule.max is None or size <= size_rule.max)
        criteria.append(FitCheck("icp_company_size", PASSED if in_range else FAILED, f"{size} employees"))
        if size > fp.company_size.above:
            items.append(
                BreakdownItem("company_size", fp.company_size.points, f"{size} employees > {fp.company_size.above}")
            )

    industry = normalize_token(profile.get("industry"))
    if industry is None:
        criteria.append(FitCheck("icp_industry", UNKNOWN))
    elif industry in model.excluded_industries:
        criteria.append(FitCheck("icp_industry", FAILED, f"{profile['industry']} is excluded"))
        blocked.append("excluded_industry")
    elif industry in model.icp_industries:
        criteria.append(FitCheck("icp_industry", PASSED, str(profile["industry"])))
        items.append(BreakdownItem("icp_industry", fp.icp_industry.points, f"{profile['industry']} is an ICP industry"))
    else:
        criteria.append(FitCheck("icp_industry", FAILED, str(profile["industry"])))

    title = profile.get("job_title")
    level = seniority_level(title, model)
    if level is None:
        criteria.append(FitCheck("icp_seniority", UNKNOWN, "title names no level" if title else None))
    else:
        rank = model.seniority_rank[level]
        enough = rank <= model.seniority_rank[model.icp.min_seniority]
        criteria.append(FitCheck("icp_seniority", PASSED if enough else FAILED, level))
        if rank <= model.seniority_rank[model.seniority.senior_from]:
            items.append(BreakdownItem("senior_title", fp.senior_title.points, f"{title} ({level})"))

    country = (profile.get("country") or "").upper() or None
    if country is None:
        criteria.append(FitCheck("icp_geography", UNKNOWN))
    elif country in model.excluded_countries:
        criteria.append(FitCheck("icp_geography", FAILED, f"{country} is not served"))
        blocked.append("excluded_country")
    else:
        served = not model.icp_countries or country in model.icp_countries
        criteria.append(FitCheck("icp_geography", PASSED if served else FAILED, country))

    grade = _grade(criteria, blocked, model)
    grade_ok = grade is not None and GRADES.index(grade) <= GRADES.index(model.fit_gate.min_grade)
    checks.extend(criteria)
    checks.append(
        FitCheck(
            "icp_grade",
            PASSED if grade_ok else (UNKNOWN if grade is None else FAILED),
            f"{grade or 'none'}, minimum {model.fit_gate.min_grade}",
        )
    )
    if state.disqualified:
        checks.append(FitCheck("disqualified", FAILED, ", ".join(state.disqualifications)))
    passed = (
        grade_ok
        and state.email is not None
        and not state.disqualified
        and not (is_free and model.fit_gate.free_email_fails_gate)
    )
    items = [item for item in items if item.points != 0]  # a signal set to 0 is switched off
    rejection = "disposable_domain" if is_disposable else ("bot_signal" if state.bot_signals else None)
    failures = (
        ()
        if passed
        else _gate_failures(
            state, model, domain, grade, blocked, criteria, free_fails=is_free and model.fit_gate.free_email_fails_gate
        )
    )
    return FitAssessment(
        grade=grade,
        passed=passed,
        points=sum(item.points for item in items),
        items=tuple(items),
        checks=tuple(checks),
        email_domain=domain,
        rejection=rejection,
        gate_failures=failures,
    )


def _gate_failures(
    state: LeadState,
    model: ScoringModel,
    domain: str | None,
    grade: str | None,
    blocked: list[str],
    criteria: list[FitCheck],
    *,
    free_fails: bool,
) -> tuple[GateFailure, ...]:
    """Every reason the gate fails, most decisive first (a bot before a weak grade)."""
    out: list[GateFailure] = []
    if state.email is None:
        out.append(GateFailure("no_email", None, "no email address known yet"))
    for signal in state.bot_signals:
        seen = state.bot_evidence.get(signal)
        out.append(GateFailure("bot_signal", signal, seen[2] if seen else signal.replace("_", " ")))
    if "disposable_domain" in blocked:
        out.append(GateFailure("disposable_domain", domain, f"{domain} is a disposable email domain"))
    if "competitor_domain" in blocked:
        out.append(GateFailure("competitor_domain", domain, f"{domain} is a competitor"))
    if free_fails:
        out.append(GateFailure("free_email", domain, f"{domain} is a free email provider (work email required)"))
    by_name = {c.name: c for c in criteria}
    if "excluded_industry" in blocked:
        out.append(
            GateFailure("excluded_industry", state.profile.get("industry"), by_name["icp_industry"].detail or "")
        )
    if "excluded_country" in blocked:
        country = (state.profile.get("country") or "").upper()
        out.append(GateFailure("excluded_country", country, by_name["icp_geography"].detail or ""))
    for reason in state.disqualifications:
        if reason.startswith("crm_rejected:"):
            disposition = reason.split(":", 1)[1]
            out.append(GateFailure("crm_rejected", disposition, f"sales excluded the lead for good ({disposition})"))
    if not blocked:
        minimum = model.fit_gate.min_grade
        if grade is None:
            out.append(GateFailure("fit_unknown", None, "not enough firmographics to grade the fit yet"))
        elif GRADES.index(grade) > GRADES.index(minimum):
            failed = ", ".join(c.name.removeprefix("icp_") for c in criteria if c.status == FAILED) or "none passed"
            out.append(
                GateFailure(
                    "fit_grade_below_minimum",
                    grade,
                    f"fit grade {grade} is below the minimum {minimum} (failed: {failed})",
                )
            )
    return tuple(out)


def _grade(criteria: list[FitCheck], blocked: list[str], model: ScoringModel) -> str | None:
    if blocked:
        return "F"
    known = [c for c in criteria if c.status != UNKNOWN]
    if not known:
        return None
    matched = sum(1 for c in known if c.status == PASSED)
    return next((grade for grade, floor in model.grade_floors if matched >= floor), "E")
