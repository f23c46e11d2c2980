"""Internal topic encoding: canonical events and commands between leadflow's own agents.

orjson, not Avro: these topics are private to leadflow (no external contract), and orjson
is the cheapest codec on the hot path. Every message is an object with a "type": a lead event
(``{"type": "lead_event", "event": {...}}``) or one of the commands below, whose fields follow
the type in declaration order (``encode``).

Agents never see these bytes: :func:`reader` builds the one decoder a consumer needs, which
turns each message into a typed value (a :class:`LeadEvent` or a command) once, drops what
that consumer does not read, and rejects a type it does not know (:class:`UnknownMessage`,
dead-lettered as ``unknown_kind`` by the runtime's consume path).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import orjson

from agents.domain.events import LeadEvent

LEAD_EVENT = "lead_event"  # a validated input event (agents.domain.events.LeadEvent)
UNKNOWN_KIND = "unknown_kind"  # the dead-letter reason code of a message type nobody reads here


@dataclass(frozen=True, slots=True)
class ReviewDue:
    """Sweep command (scoring): review the leads whose decay review is due in one bucket."""

    TYPE: ClassVar[str] = "review_due"
    partition: int
    bucket: int


@dataclass(frozen=True, slots=True)
class VisitorLinked:
    """An anonymous visitor identified as a lead: its buffered activity moves to the lead."""

    TYPE: ClassVar[str] = "visitor_linked"
    visitor_id: str
    lead_id: str


@dataclass(frozen=True, slots=True)
class VisitorErased:
    """The lead a visitor identified as was erased: drop the visitor's buffer."""

    TYPE: ClassVar[str] = "visitor_erased"
    visitor_id: str
    lead_id: str


@dataclass(frozen=True, slots=True)
class SlaSweep:
    """Sweep command (SLA): close buckets ``first..last`` of one partition."""

    TYPE: ClassVar[str] = "sla_sweep"
    partition: int
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class RoutingRedrive:
    """Routing: route the MQLs parked on one partition again (agents.routing.pending)."""

    TYPE: ClassVar[str] = "routing_redrive"
    partition: int


Command = ReviewDue | VisitorLinked | VisitorErased | SlaSweep | RoutingRedrive
COMMANDS: dict[str, type[Command]] = {
    c.TYPE: c for c in (ReviewDue, VisitorLinked, VisitorErased, SlaSweep, RoutingRedrive)
}


class UnknownMessage(Exception):
    """A message type the consumer does not read (``reason_code``/``detail``: see
    ``streams.consume``)."""

    reason_code = UNKNOWN_KIND

    def __init__(self, kind: object) -> None:
        self.detail = f"internal message type {kind!r}"
        super().__init__(self.detail)


def encode_lead_event(event: LeadEvent) -> bytes:
    return orjson.dumps({"type": LEAD_EVENT, "event": event.to_dict()})


def encode(command: Command) -> bytes:
    return orjson.dumps({"type": command.TYPE, **{f.name: getattr(command, f.name) for f in fields(command)}})


def reader(
    *accepts: type, kinds: Collection[str] | None = None, skip_others: bool = False
) -> Callable[[bytes | None], Any]:
    """The decoder of one consumer: bytes -> a typed value of one of ``accepts`` (``LeadEvent``
    and/or command classes), or None for a message this consumer skips.

    ``kinds``: only lead events of these kinds (``LeadEvent.kind``); the others are skipped
    without building the event. ``skip_others``: for a consumer that reads a topic other agents
    own (SLA and disposition on the lead-events topic), any other type is skipped; otherwise it
    raises :class:`UnknownMessage`. Bytes that are not JSON raise orjson's error (a bug
    upstream: the consume path dead-letters it as a processing error).
    """
    wanted: dict[str, type] = {}
    for cls in accepts:
        wanted[LEAD_EVENT if cls is LeadEvent else cls.TYPE] = cls  # type: ignore[attr-defined]
    only = frozenset(kinds) if kinds is not None else None

    def decode(raw: bytes | None) -> Any:
        if raw is None and skip_others:  # a tombstone on a shared topic
            return None
        message = orjson.loads(raw)  # type: ignore[arg-type]
        kind = message["type"]
        cls = wanted.get(kind)
        if cls is None:
            if skip_others:
                return None
            raise UnknownMessage(kind)
        if cls is LeadEvent:
            event = message["event"]
            if only is not None and event.get("kind") not in only:
                return None
            return LeadEvent.from_dict(event)
        return cls(*(message[f.name] for f in fields(cls)))

    return decode
