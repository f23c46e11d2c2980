"""Anonymous visitors: buffer their activity until they identify, then hand it to the lead.

Flow (the wiring keeps one ``VisitorState`` per visitor id):
1. anonymous web activity -> ``apply_visitor_event`` buffers it (original event id and time);
2. a form submit carrying the visitor id makes the lead rules emit ``VisitorLinked``;
3. ``link_visitor`` returns the buffered events re-addressed to the lead, marked
   ``data["merged_from_visitor"] = True`` (scored with cause_kind "merge"); the lead applies
   them with their ORIGINAL times, so they decay from when they happened and may become the
   first touch;
4. later activity of a linked visitor is forwarded to its lead straight away.

Bounds: only events that can matter are buffered (a scoring signal, a UTM source, or content);
at most ``max_buffered`` are kept - the earliest attributed one (first touch) plus the most
recent others. A visitor that identifies as a second lead (shared browser) follows the latest
identification; what was already forwarded stays with the first lead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.domain.events import WEB_ACTIVITY, LeadEvent
from agents.scoring.exceptions import ScoringError
from agents.scoring.state import VisitorState

if TYPE_CHECKING:
    from agents.scoring.model import ScoringModel

DEFAULT_MAX_BUFFERED = 200


def apply_visitor_event(
    vstate: VisitorState | None,
    event: LeadEvent,
    model: ScoringModel,
    *,
    max_buffered: int = DEFAULT_MAX_BUFFERED,
) -> tuple[VisitorState, list[LeadEvent]]:
    """Buffer (or, once linked, forward) one anonymous event. Never mutates ``vstate``."""
    if event.lead_id is not None or not event.visitor_id:
        raise ScoringError(f"event {event.event_id}: only anonymous events (visitor id, no lead id) are buffered")
    if event.kind != WEB_ACTIVITY:
        raise ScoringError(f"event {event.event_id}: anonymous {event.kind!r} events are not expected")
    if max_buffered < 1:
        raise ValueError("max_buffered must be >= 1")
    if vstate is None:
        vstate = VisitorState(visitor_id=event.visitor_id)
    elif vstate.visitor_id != event.visitor_id:
        raise ScoringError(f"event {event.event_id}: visitor {event.visitor_id} given state of {vstate.visitor_id}")
    if vstate.lead_id is not None:
        return vstate, [_readdress(event, vstate.lead_id, merged=False)]
    if not _worth_buffering(event, model) or any(e["event_id"] == event.event_id for e in vstate.buffered):
        return vstate, []
    new = vstate.clone()
    new.buffered.append(event.to_dict())
    new.buffered.sort(key=lambda e: (e["occurred_at_ms"], e["event_id"]))
    while len(new.buffered) > max_buffered:
        new.buffered.pop(_eviction_index(new.buffered))
        new.dropped += 1
    return new, []


def link_visitor(
    vstate: VisitorState | None,
    lead_id: str,
    *,
    visitor_id: str | None = None,
) -> tuple[VisitorState, list[LeadEvent]]:
    """The visitor identified as ``lead_id``: release its buffer to the lead, forward from now on."""
    if vstate is None:
        if not visitor_id:
            raise ScoringError("link_visitor needs visitor_id when there is no visitor state yet")
        vstate = VisitorState(visitor_id=visitor_id)
    if vstate.lead_id == lead_id and not vstate.buffered:
        return vstate, []  # already linked (a redelivered link instruction)
    forwards = [_readdress(LeadEvent.from_dict(raw), lead_id, merged=True) for raw in vstate.buffered]
    return VisitorState(visitor_id=vstate.visitor_id, lead_id=lead_id, buffered=[], dropped=vstate.dropped), forwards


def _worth_buffering(event: LeadEvent, model: ScoringModel) -> bool:
    data = event.data
    if data.get("utm_source") or data.get("utm_medium") or data.get("content_title"):
        return True
    if data.get("activity_kind") == "page_view":
        return model.event_signals.page_types.get(data.get("page_type") or "other") is not None
    kind = data.get("activity_kind")
    return kind is not None and model.event_signals.activity_kinds.get(kind) is not None


def _eviction_index(buffered: list[dict]) -> int:
    """Oldest event, unless it is the earliest one with a UTM source (the first touch)."""
    first_touch = next((i for i, e in enumerate(buffered) if (e.get("data") or {}).get("utm_source")), None)
    return 1 if first_touch == 0 else 0


def _readdress(event: LeadEvent, lead_id: str, *, merged: bool) -> LeadEvent:
    data = {**event.data, "merged_from_visitor": True} if merged else dict(event.data)
    return LeadEvent(
        event_id=event.event_id,
        kind=event.kind,
        lead_id=lead_id,
        visitor_id=event.visitor_id,
        occurred_at_ms=event.occurred_at_ms,
        received_at_ms=event.received_at_ms,
        source=event.source,
        data=data,
        backfill=event.backfill,
    )
