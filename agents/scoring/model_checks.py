"""Cross-key checks of a scoring model (pass 2 of validation, after pydantic's shape check).

Each problem names the key and the offending value, e.g.
``signals.blog_visit.cap: expected the sign of points (5) and at least its size, got -3``.
"""

from __future__ import annotations

import math
import re
import string
from typing import Literal

from agents.domain.events import ACTIVITY_KINDS, DISPOSITIONS, FORM_KINDS, PAGE_TYPES
from agents.scoring.model_shape import ScoringModel
from agents.scoring.text import normalize_token

_SIGNAL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
OPENER_PLACEHOLDERS = frozenset({"first_name", "company", "topic"})


def semantic_problems(m: ScoringModel) -> list[str]:  # noqa: C901 - a flat list of checks
    problems: list[str] = []
    add = problems.append
    t = m.thresholds
    if t.fast_track < t.mql:
        add(f"thresholds.fast_track: expected >= thresholds.mql ({t.mql:g}), got {t.fast_track!r}")
    if t.mql_rearm_at is not None and t.mql_rearm_at > t.mql:
        add(f"thresholds.mql_rearm_at: expected <= thresholds.mql ({t.mql:g}), got {t.mql_rearm_at!r}")

    for name, rule in m.signals.items():
        if not _SIGNAL_NAME.match(name):
            add(f"signals.{name}: signal names are lower_snake_case, got {name!r}")
        if not math.isfinite(rule.points) or rule.points == 0:
            add(f"signals.{name}.points: expected a non-zero finite number, got {rule.points!r}")
        elif not math.isfinite(rule.cap) or rule.cap * rule.points <= 0 or abs(rule.cap) < abs(rule.points):
            add(
                f"signals.{name}.cap: expected the sign of points ({rule.points:g}) and at least "
                f"its size, got {rule.cap!r}"
            )

    vocab = {"form_kinds": FORM_KINDS, "activity_kinds": ACTIVITY_KINDS, "page_types": PAGE_TYPES}
    for group, known in vocab.items():
        for kind, signal in getattr(m.event_signals, group).items():
            if kind not in known:
                add(
                    f"event_signals.{group}.{kind}: unknown {group[:-1].replace('_', ' ')}, expected one of {', '.join(known)}"
                )
            if signal is not None and signal not in m.signals:
                add(f"event_signals.{group}.{kind}: unknown signal {signal!r}")
    if "page_view" in m.event_signals.activity_kinds:
        add("event_signals.activity_kinds.page_view: page views are scored by event_signals.page_types")

    size = m.icp.company_size
    if size.min is not None and size.max is not None and size.min > size.max:
        add(f"icp.company_size.max: expected >= min ({size.min}), got {size.max!r}")
    graded: tuple[Literal["A", "B", "C", "D"], ...] = ("A", "B", "C", "D")
    floors = [m.icp.grades[g] for g in graded if g in m.icp.grades]
    if len(floors) < len(graded):
        add(f"icp.grades: expected floors for A, B, C and D, got {dict(m.icp.grades)!r}")
    elif floors != sorted(floors, reverse=True) or floors[-1] < 1 or floors[0] > 4:
        add(f"icp.grades: expected 4 >= A >= B >= C >= D >= 1 criteria, got {dict(m.icp.grades)!r}")
    for key in ("countries", "excluded_countries"):
        for code in getattr(m.icp, key):
            if not re.fullmatch(r"[A-Za-z]{2}", code):
                add(f"icp.{key}: expected ISO-3166 alpha-2 codes, got {code!r}")
    if m.icp.min_seniority not in m.seniority.levels:
        add(f"icp.min_seniority: unknown seniority level {m.icp.min_seniority!r}")
    if m.seniority.senior_from not in m.seniority.levels:
        add(f"seniority.senior_from: unknown seniority level {m.seniority.senior_from!r}")

    for key in ("free_email", "competitors", "disposable"):
        for domain in getattr(m.domains, key):
            if not _DOMAIN.match(domain.lower()):
                add(f"domains.{key}: expected a domain like example.com, got {domain!r}")

    a = m.attribution
    channels = set(a.channels)
    if not 8 <= len(channels) <= 15 or len(channels) != len(a.channels):
        add(f"attribution.channels: expected 8-15 distinct channels, got {len(a.channels)}")
    for key in ("unrecognized_channel", "missing_channel"):
        if getattr(a, key) not in channels:
            add(f"attribution.{key}: not in attribution.channels, got {getattr(a, key)!r}")
    for i, medium_rule in enumerate(a.medium_rules):
        if medium_rule.channel not in channels:
            add(f"attribution.medium_rules[{i}].channel: not in attribution.channels, got {medium_rule.channel!r}")
    owner: dict[str, str] = {}
    not_sources = set(filter(None, map(normalize_token, a.not_sources)))
    for channel, raws in a.source_aliases.items():
        if channel not in channels:
            add(f"attribution.source_aliases.{channel}: not in attribution.channels")
        for raw in raws:
            token = normalize_token(raw)
            if token in not_sources:
                add(f"attribution.source_aliases.{channel}: {raw!r} is listed in attribution.not_sources")
            elif token in owner and owner[token] != channel:
                add(f"attribution.source_aliases.{channel}: {raw!r} is already an alias of {owner[token]!r}")
            elif token:
                owner[token] = channel

    for disposition in m.dispositions.permanent:
        if disposition not in DISPOSITIONS:
            add(f"dispositions.permanent: unknown disposition {disposition!r}")

    h = m.handoff
    for page_type in h.problem_hypotheses.page_types:
        if page_type not in PAGE_TYPES:
            add(f"handoff.problem_hypotheses.page_types.{page_type}: unknown page type")
    problems.extend(_template_problems("handoff.problem_hypotheses.content", h.problem_hypotheses.content, {"title"}))
    if "default" not in h.openers:
        add("handoff.openers.default: required key is missing")
    for key, template in h.openers.items():
        if key != "default" and key not in m.signals:
            add(f"handoff.openers.{key}: unknown signal (expected a signal name or 'default')")
        problems.extend(_template_problems(f"handoff.openers.{key}", template, OPENER_PLACEHOLDERS))

    return problems


def _template_problems(key: str, template: str, allowed: frozenset[str] | set[str]) -> list[str]:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return [f"{key}: malformed template ({exc}), got {template!r}"]
    bad = [f for f in fields if f not in allowed]
    if bad:
        return [f"{key}: unknown placeholder {{{bad[0]}}} (allowed: {', '.join(sorted(allowed))}), got {template!r}"]
    return []
