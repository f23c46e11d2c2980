"""Absorbing one input event into a (cloned) lead state: profile, attribution, touches,
content, flags and the behavioural signal it scores.

Order independence: every "latest value" (profile fields, last touch, content) is chosen by
(event time, event id), never by arrival, so same-time events give the same state in any
order and late events do not overwrite newer facts.

Engagement: buyer actions (forms, web activity) reset the inactivity clock, except actions
whose signal is negative (unsubscribe, careers page): leaving is not engaging. CRM events
are sales' actions, not the buyer's: they are touches, not engagement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agents.domain.events import CRM_STATUS, FORM_SUBMITTED, PAGE_TYPES, WEB_ACTIVITY, LeadEvent
from agents.domain.identity import InvalidEmail, normalize_email
from agents.scoring.attribution import attribute
from agents.scoring.decay import add_units
from agents.scoring.exceptions import ScoringError
from agents.scoring.state import PROFILE_FIELDS, SignalTotal, SourceTouch, Touch

if TYPE_CHECKING:
    from agents.scoring.model import ScoringModel
    from agents.scoring.state import LeadState

CONTENT_KEPT = 5  # content titles remembered for the problem hypothesis
MIN_TOUCHES_KEPT = 5
MAX_TEXT = 200  # characters of free text kept in state (titles, details)


@dataclass(frozen=True, slots=True)
class Absorbed:
    signal: str | None  # behavioural signal the event scores (None: no scoring effect)
    trigger: str  # how the event reads as an MQL trigger
    engaged: bool  # buyer activity: resets the inactivity clock
    visitor_id: str | None  # anonymous visitor this event identifies


def absorb(state: LeadState, event: LeadEvent, model: ScoringModel) -> Absorbed:
    """Apply ``event``'s facts to ``state`` (in place; the caller passes a clone)."""
    if event.kind == FORM_SUBMITTED:
        absorbed = _absorb_form(state, event, model)
    elif event.kind == WEB_ACTIVITY:
        absorbed = _absorb_activity(state, event, model)
    elif event.kind == CRM_STATUS:
        absorbed = _absorb_crm(state, event, model)
    else:
        raise ScoringError(f"event {event.event_id}: unknown kind {event.kind!r}")
    if absorbed.signal is not None:
        add_signal(state, model, absorbed.signal, event.occurred_at_ms)
    if absorbed.engaged:
        t = event.occurred_at_ms
        state.last_engaged_ms = t if state.last_engaged_ms is None else max(state.last_engaged_ms, t)
    return absorbed


def add_signal(state: LeadState, model: ScoringModel, name: str, event_ms: int) -> None:
    """Count one occurrence of a behavioural signal at the lead's clock (decayed from event_ms)."""
    if state.score_reset_at_ms is not None and event_ms <= state.score_reset_at_ms:
        # At or before the reset (recycling): history, not score. "At" too, so that a buyer
        # action and a rejection stamped the same millisecond give the same state in any order.
        return
    rule = model.signals[name]
    clock = state.as_of_ms
    total = state.signals.get(name)
    count = (total.count if total else 0) + 1
    units = add_units(
        total.units if total else 0.0,
        total.at_ms if total else clock,
        event_ms=event_ms,
        clock_ms=clock,
        award=1.0 if count % rule.every == 0 else 0.0,
        cap_units=model.cap_units[name],
        half_life_ms=model.half_life_ms,
    )
    last = max(total.last_ms, event_ms) if total else event_ms
    state.signals[name] = SignalTotal(units=units, at_ms=clock, count=count, last_ms=last)


def kind_of(data: dict) -> str:
    return str(data.get("form_kind") or "unknown")[:64]


def _absorb_form(state: LeadState, event: LeadEvent, model: ScoringModel) -> Absorbed:
    data = event.data
    _set_email(state, data.get("email"))
    for name in PROFILE_FIELDS:
        _set_profile(state, name, data.get(name), event)
    bot = {}
    if data.get("honeypot_filled"):
        bot["honeypot_filled"] = f"honeypot field filled ({kind_of(data)} form)"
    seconds = data.get("seconds_to_fill")
    if seconds is not None and seconds < model.fit_gate.min_seconds_to_fill:
        bot["filled_too_fast"] = (
            f"{kind_of(data)} form filled in {seconds:g} s "
            f"(a person needs at least {model.fit_gate.min_seconds_to_fill:g} s)"
        )
    if bot:
        state.bot_signals = sorted(set(state.bot_signals) | set(bot))
        # The earliest evidence of each signal (event time, then event id) stays, whatever the
        # arrival order: the gate's reason is a function of the events, not of their order.
        evidence = dict(state.bot_evidence)
        for bot_signal, text in bot.items():
            seen = [event.occurred_at_ms, event.event_id, text]
            if bot_signal not in evidence or seen < list(evidence[bot_signal]):
                evidence[bot_signal] = seen
        state.bot_evidence = evidence
    _attribute(state, model, event, is_capture=True)
    kind = data.get("form_kind") or "unknown"
    _add_touch(state, model, Touch(f"form:{kind}", _clip(data.get("form_id")), event.occurred_at_ms, event.event_id))
    signal = model.event_signals.form_kinds.get(kind)
    return Absorbed(signal, f"{signal} ({kind} form)", True, event.visitor_id or data.get("visitor_id"))


def _absorb_activity(state: LeadState, event: LeadEvent, model: ScoringModel) -> Absorbed:
    data = event.data
    _set_email(state, data.get("email"))
    kind = data.get("activity_kind") or "unknown"
    title = _clip(data.get("content_title"))
    if kind == "page_view":
        given = data.get("page_type")
        page_type = given if given in PAGE_TYPES else "other"
        state.page_views[page_type] = state.page_views.get(page_type, 0) + 1
        signal = model.event_signals.page_types.get(page_type)
        touch = Touch(f"page_view:{page_type}", _url_path(data.get("url")), event.occurred_at_ms, event.event_id)
        trigger = f"{signal} ({page_type} page)"
    else:
        signal = model.event_signals.activity_kinds.get(kind)
        if title and kind in ("content_download", "webinar_attended"):
            entry = [event.occurred_at_ms, event.event_id, title]
            state.content = sorted([*state.content, entry], key=lambda c: (c[0], c[1]))[-CONTENT_KEPT:]
        detail = title or _clip(data.get("utm_campaign")) or _url_path(data.get("url"))
        touch = Touch(kind, detail, event.occurred_at_ms, event.event_id)
        trigger = f"{signal} ({kind.replace('_', ' ')})"
    if data.get("merged_from_visitor"):
        trigger += ", anonymous history merged"
    _attribute(state, model, event, is_capture=False)
    _add_touch(state, model, touch)
    engaged = signal is None or model.signals[signal].points > 0
    return Absorbed(signal, trigger, engaged, event.visitor_id)


def _absorb_crm(state: LeadState, event: LeadEvent, model: ScoringModel) -> Absorbed:
    data = event.data
    status = data.get("status") or "unknown"
    disposition = data.get("disposition")
    detail = ", ".join(str(v) for v in (data.get("touch_channel"), disposition) if v) or None
    _add_touch(state, model, Touch(f"crm:{status}", detail, event.occurred_at_ms, event.event_id))
    if status == "rejected" and disposition in model.permanent_dispositions:
        reason = f"crm_rejected:{disposition}"
        state.disqualifications = sorted(set(state.disqualifications) | {reason})
        t = event.occurred_at_ms
        state.excluded_at_ms = t if state.excluded_at_ms is None else min(state.excluded_at_ms, t)
    if data.get("account_id"):
        state.crm_account_id = str(data["account_id"])
    domain = normalize_domain(data.get("account_domain"))
    if domain:
        state.crm_account_domain = domain
    return Absorbed(None, f"crm:{status}", False, None)


def normalize_domain(raw: object) -> str | None:
    """'https://www.Acme.com/about' -> 'acme.com'."""
    if not raw:
        return None
    text = str(raw).strip().lower()
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    host = host.removeprefix("www.").strip(".")
    return host or None


def _set_email(state: LeadState, raw: object) -> None:
    if state.email is None and raw:
        try:
            state.email = normalize_email(str(raw))
        except InvalidEmail:
            pass  # capture validated the lead's email; a bad optional one changes nothing


def _set_profile(state: LeadState, name: str, value: Any, event: LeadEvent) -> None:
    if isinstance(value, str):
        value = _clip(value)
        if name == "country" and value:
            value = value.upper()
    if value is None or value == "":
        return  # a form without the field says nothing about it
    order = [event.occurred_at_ms, event.event_id]
    current = state.profile_order.get(name)
    if current is None or order > list(current):
        state.profile[name] = value
        state.profile_order[name] = order


def _attribute(state: LeadState, model: ScoringModel, event: LeadEvent, *, is_capture: bool) -> None:
    found = attribute(model, event.data, is_capture=is_capture)
    if found is None:
        return
    channel, source, medium = found
    if channel == model.attribution.missing_channel:
        state.unattributed_capture = True  # visible as "unknown", never overrides a known touch
        return
    touch = SourceTouch(
        channel, source, medium, _clip(event.data.get("utm_campaign")), event.occurred_at_ms, event.event_id
    )
    if state.first_touch is None or touch.order < state.first_touch.order:
        state.first_touch = touch
    if state.last_touch is None or touch.order > state.last_touch.order:
        state.last_touch = touch


def _add_touch(state: LeadState, model: ScoringModel, touch: Touch) -> None:
    kept = max(MIN_TOUCHES_KEPT, model.handoff.last_touches)
    state.touches = sorted([*state.touches, touch], key=lambda t: t.order)[-kept:]


def _url_path(raw: object) -> str | None:
    """Host and path only: query strings may carry personal data (e.g. ?email=)."""
    if not raw:
        return None
    parts = urlsplit(str(raw))
    return _clip(f"{parts.netloc}{parts.path}" or None)


def _clip(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:MAX_TEXT] or None
