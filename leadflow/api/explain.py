"""The lead API's answer in words, for `leadflow explain` (pure: the view dict in, text out).

"52.4 = senior title 10 + contact request 20 (1 event, 3 days ago) + pricing page visit
15 x 1.87 decayed = 28.1 (2 events, last 5 days ago) - inactivity 10"
"""

from __future__ import annotations

import time
from typing import Any

DAY_MS = 86_400_000


def explain(view: dict[str, Any]) -> str:
    """Every section of :func:`leadflow.api.view.lead_view`, one paragraph each."""
    now = view["as_of"]
    score = view["score"]
    lines = [
        f"Lead {view['lead_id']}: stage {view['stage']}, score {_num(score['value'])} "
        f"(MQL above {_num(score['mql_threshold'])}, fast track above {_num(score['fast_track_threshold'])}; "
        f"model {score['model_version']}), as of {_when(now)}",
        "",
        f"Score {_num(score['value'])} = {score_sum(score['breakdown'], now)}",
        f"  (behaviour halves every {_num(score['half_life_days'])} days; fit does not decay)",
        "",
        _fit(view["fit"]),
        _sources(view["sources"]),
        _owner(view["owner"]),
        _sla(view["sla"], now),
        _mql(view["mql"]),
        _touches(view["last_touches"], now),
    ]
    return "\n".join(lines).rstrip() + "\n"


def score_sum(breakdown: list[dict[str, Any]], now_ms: int) -> str:
    """The breakdown as a sum in words; "0 (no signals)" when there is none."""
    if not breakdown:
        return "0 (no signals)"
    parts = []
    for i, item in enumerate(breakdown):
        negative = item["points"] < 0
        sign = ("-" if negative else "") if i == 0 else (" - " if negative else " + ")
        parts.append(sign + _term(item, now_ms))
    return "".join(parts)


def _term(item: dict[str, Any], now_ms: int) -> str:
    """One signal's unsigned contribution (the sum puts the sign)."""
    name = _words(item["signal"])
    points = item["points"]
    if item["kind"] != "behaviour":
        detail = f" ({item['detail']})" if item["kind"] == "inactivity" and item.get("detail") else ""
        return f"{name} {_num(abs(points))}{detail}"
    events = "1 event" if item["occurrences"] == 1 else f"{item['occurrences']} events"
    ago = _ago(now_ms - item["last_at"])
    counted = item["counted"]
    if abs(counted - 1) < 0.005:
        return f"{name} {_num(abs(points))} ({events}, {ago})"
    return (
        f"{name} {_num(abs(item['points_each']))} x {counted:.2f} decayed = {_num(abs(points))} ({events}, last {ago})"
    )


def _fit(fit: dict[str, Any]) -> str:
    grade = fit["grade"] or "none"
    if fit["gate_passed"]:
        head = f"Fit: grade {grade}, gate passed."
    else:
        reasons = "; ".join(f"{f['code']} ({f['detail']})" for f in fit["gate_failures"]) or "no reason recorded"
        head = f"Fit: grade {grade}, gate FAILED: {reasons}. It cannot become an MQL until that changes."
    checks = ", ".join(f"{c['name']} {c['status']}" for c in fit["checks"])
    extra = ""
    if fit["disqualifications"]:
        extra = f"\n  Disqualified for good: {', '.join(fit['disqualifications'])}."
    return head + (f"\n  Checks: {checks}." if checks else "") + extra


def _sources(sources: dict[str, Any]) -> str:
    def one(touch: dict[str, Any] | None) -> str:
        if touch is None:
            return "none recorded"
        raw = "/".join(v for v in (touch["source"], touch["medium"]) if v)
        campaign = f", campaign {touch['campaign']}" if touch["campaign"] else ""
        return f"{touch['channel']}" + (f" ({raw}{campaign})" if raw or campaign else "") + f" on {_when(touch['at'])}"

    return f"Sources: first touch {one(sources['first_touch'])}; last touch {one(sources['last_touch'])}."


def _owner(owner: dict[str, Any] | None) -> str:
    if owner is None:
        return "Owner: none (never assigned)."
    who = f"{owner['owner_name']} ({owner['owner_id']}, {owner['owner_role']}" + (
        f", team {owner['team']})" if owner["team"] else ")"
    )
    text = f"Owner: {who}, {owner['priority']}, assigned {_when(owner['assigned_at'])} by rule {owner['rule']!r}"
    text += " (FALLBACK owner)" if owner["is_fallback"] else ""
    text += f": {owner['reason']}"
    if owner["previous_owners"]:
        text += f"\n  Previously: {', '.join(owner['previous_owners'])}."
    considered = [
        f"{entry.get('owner_id')} {entry.get('decision')}" for entry in owner["audit"] if isinstance(entry, dict)
    ]
    if considered:
        text += f"\n  Candidates considered: {'; '.join(considered)}."
    return text


def _sla(sla: dict[str, Any] | None, now_ms: int) -> str:
    if sla is None:
        return "SLA: no clock running."
    due = sla["first_touch_due_at"]
    state = f"{_duration(now_ms - due)} overdue" if sla["overdue"] else f"due in {_duration(due - now_ms)}"
    tier = sla["next_tier"]
    text = f"SLA: first touch {state} ({_when(due)}, {sla['priority']}, owner {sla['owner_id']})"
    if sla["breached_tiers"]:
        text += f"; tiers breached: {', '.join(str(t) for t in sla['breached_tiers'])}"
    return (
        text
        + f"; next: tier {tier['tier']} at {_when(tier['due_at'])}, {tier['action']} to {tier['escalate_to_role']}."
    )


def _mql(mql: dict[str, Any]) -> str:
    if not mql["history"]:
        return "MQL: never qualified."
    crossings = "; ".join(
        f"#{h['mql_number']} on {_when(h['qualified_at'])} at {_num(h['score'])}" for h in mql["history"]
    )
    state = "open" if mql["open"] else "not open"
    return f"MQL: {mql['episodes']} crossing(s), {state} now. History: {crossings}."


def _touches(touches: list[dict[str, Any]], now_ms: int) -> str:
    if not touches:
        return "Last touches: none."
    rows = [f"  {_ago(now_ms - t['at'])}: {t['kind']}" + (f" ({t['detail']})" if t["detail"] else "") for t in touches]
    return "Last touches (newest first):\n" + "\n".join(rows)


def _words(signal: str) -> str:
    return signal.replace("_", " ")


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _when(ms: int | None) -> str:
    if ms is None:
        return "unknown time"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))


def _ago(delta_ms: int) -> str:
    return "just now" if delta_ms < 60_000 else f"{_duration(delta_ms)} ago"


def _duration(delta_ms: int) -> str:
    seconds = max(0, delta_ms) / 1000
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{round(seconds / 86400)} days"
