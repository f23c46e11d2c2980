"""The handoff context an MQL carries: what a rep needs besides a score and a name.

- trigger: the signal of the event that made the lead cross (e.g. ``contact_request
  (demo_request form)``); a crossing caused by anything else says ``score_threshold``.
- problem hypothesis: the most-viewed page types mapped to phrases
  (``handoff.problem_hypotheses.page_types``), plus the latest content consumed.
- disqualifiers checked: every fit-gate check with its outcome, e.g. ``free_email: passed``.
- last touches: newest first, at most ``handoff.last_touches``.
- recommended opener: the template for the trigger signal (or ``default``), filled with the
  first name, company and main topic; missing values fall back to neutral words.

The priority is not decided here: routing's policy decides it on the record's structured facts
(``agents.scoring.lead_facts``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.scoring.evaluation import Evaluation
    from agents.scoring.model import ScoringModel
    from agents.scoring.state import LeadState

SCORE_THRESHOLD_TRIGGER = "score_threshold"
_MAX_HYPOTHESIS_PAGES = 2
_MAX_HYPOTHESIS_CONTENT = 2


def build_handoff(state: LeadState, model: ScoringModel, ev: Evaluation, trigger: str) -> dict[str, Any]:
    """The Avro ``HandoffContext`` record."""
    topics = problem_topics(state, model)
    newest_first = sorted(state.touches, key=lambda t: t.order, reverse=True)
    return {
        "trigger": trigger,
        "problem_hypothesis": _sentence("; ".join(topics))
        if topics
        else _sentence(model.handoff.problem_hypotheses.default),
        "disqualifiers_checked": [check.describe() for check in ev.fit.checks],
        "last_touches": [
            {"kind": t.kind, "detail": t.detail, "occurred_at": t.occurred_at_ms}
            for t in newest_first[: model.handoff.last_touches]
        ],
        "recommended_opener": recommended_opener(state, model, trigger_signal(trigger), topics),
    }


def problem_topics(state: LeadState, model: ScoringModel) -> list[str]:
    """Phrases for what the buyer seems to be solving, strongest evidence first."""
    phrases = model.handoff.problem_hypotheses.page_types
    order = list(phrases)
    viewed = sorted(
        (pt for pt in state.page_views if pt in phrases),
        key=lambda pt: (-state.page_views[pt], order.index(pt)),
    )
    topics = []
    for page_type in viewed[:_MAX_HYPOTHESIS_PAGES]:
        count = state.page_views[page_type]
        label = page_type.replace("_", " ")
        topics.append(
            f"{phrases[page_type]} ({label} page x{count})" if count > 1 else f"{phrases[page_type]} ({label} page)"
        )
    titles: list[str] = []
    for _, _, title in reversed(state.content):  # newest first, distinct titles
        if title not in titles:
            titles.append(title)
    template = model.handoff.problem_hypotheses.content
    topics.extend(template.format(title=title) for title in titles[:_MAX_HYPOTHESIS_CONTENT])
    return topics


def trigger_signal(trigger: str) -> str:
    return trigger.split(" ", 1)[0]


def recommended_opener(state: LeadState, model: ScoringModel, signal: str, topics: list[str]) -> str:
    openers = model.handoff.openers
    template = openers.get(signal, openers["default"])
    topic = topics[0].split(" (", 1)[0] if topics else model.handoff.problem_hypotheses.default
    values = {
        "first_name": (state.profile.get("first_name") or "there").strip() or "there",
        "company": (state.profile.get("company") or "your team").strip() or "your team",
        "topic": topic,
    }
    return template.format_map(values)  # placeholders were validated at model load


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
