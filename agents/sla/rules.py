"""The pure first-touch clock state machine (no framework imports; a unit test enforces it).

    apply(state, event, config, now_ms=...) -> (state, outputs)
    next_due_ms(state)                      -> int | None   (for the due-time index)

One ``LeadClock`` per lead (table ``lead_to_sla_clock``). Events:
- ``Assigned(record)`` - a ``lead_assigned`` record: opens a clock. The escalation schedule is
  computed now and frozen into the clock: tier 0 is the first-touch deadline
  (``first_touch_due_at``), tiers 1.. come from ``sla.yaml`` for the priority, anchored at the
  MQL's first assignment or at the deadline. A newer assignment of the lead supersedes the
  clock (a reassignment, or a new MQL after recycling); a redelivered or older one changes
  nothing.
- ``Touched(...)`` - a CRM status that counts as a touch (``first_touch.stop_statuses``): stops
  the open clock and reports the time to first touch, also after a breach (later tiers are
  then cancelled). A touch stamped before the assignment belongs to an earlier assignment,
  within ``clock_skew_tolerance`` (CRM clock skew) it counts with 0 s. The newest touch is
  remembered even without a clock, because the CRM event can overtake the assignment (they
  travel on different topics): the clock then opens already stopped.
- ``Tick()`` - the sweep found the clock's bucket closed: every unfired tier whose deadline
  has passed becomes one ``sla_breached`` record, in deadline order.

Exactly-once effect on at-least-once delivery: the clock records which tiers have fired, and
a breach id is derived from (lead, assignment id, tier), so a redelivered sweep or a restart
either finds the tier fired or re-sends the *same* breach id (when it crashed between sending
and saving). Processing time (``now_ms``) only stamps ``breached_at`` and decides what is due.

A clock is *open* (counted in ``leadflow_sla_open_clocks``) until it is touched, superseded,
or has fired its last tier (nothing left to escalate; a later touch still records the time to
first touch).

Reassignment (``reassignment`` in sla.yaml, off by default): the breaches of the tiers listed
in ``reassignment.tiers`` (default ``[0]``, the first-touch deadline) of a clock whose priority
is listed carry ``action: reassign`` - the request to routing to give the lead to the next
eligible rep (``agents.routing.reassign``) - while the MQL has had fewer than
``max_per_mql`` reassignments; every other breach carries ``action: escalate``. A reassigning
tier 0 goes to ``escalate_to_role`` = ``reassignment.role`` (default ``reassign``); a ladder
tier keeps its role and contact (the manager is told, routing moves the lead). Routing's new
assignment of the same MQL supersedes this clock: the new owner gets a fresh tier 0 (their
own deadline), while the ladder continues - the same tier deadlines (counted from the MQL's
first assignment, or its first deadline for ``from: due``), the tiers already fired stay
fired - so a reassignment never restarts escalation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from agents.domain.identity import deterministic_id
from agents.sla.config import SlaConfig
from agents.sla.exceptions import SlaError

SLA_BREACHED = "sla_breached"
FIRST_TOUCH = "sla_first_touch"  # metric-only output (speed to lead), not an Avro record
ESCALATE, REASSIGN = "escalate", "reassign"  # sla_breached.action
LAYOUT_VERSION = 1


# --- Events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assigned:
    record: dict[str, Any]  # lead_assigned fields (times in epoch ms)


@dataclass(frozen=True, slots=True)
class Touched:
    lead_id: str
    event_id: str
    status: str
    rep_id: str | None
    occurred_at_ms: int


@dataclass(frozen=True, slots=True)
class Tick:
    """The sweep: breach whatever is due at ``now_ms``."""


Event = Assigned | Touched | Tick


# --- State ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tier:
    number: int  # 0 = first-touch deadline, 1.. escalation tiers
    due_ms: int
    role: str  # escalate_to_role
    contact_id: str | None  # escalate_to_id
    action: str = ESCALATE  # ESCALATE or REASSIGN (sla_breached.action)

    def to_list(self) -> list[Any]:
        return [self.number, self.due_ms, self.role, self.contact_id, self.action]

    @classmethod
    def from_list(cls, raw: list[Any]) -> Tier:
        # Clocks saved before ``action`` existed: only a tier 0 sent to the reassign role reassigned.
        action = raw[4] if len(raw) > 4 else (REASSIGN if int(raw[0]) == 0 and raw[2] == REASSIGN else ESCALATE)
        return cls(int(raw[0]), int(raw[1]), raw[2], raw[3], action)


@dataclass(frozen=True, slots=True)
class Mark:
    """A CRM touch: when, which event, who, which status."""

    at_ms: int
    event_id: str
    rep_id: str | None
    status: str

    @property
    def order(self) -> tuple[int, str]:
        return (self.at_ms, self.event_id)

    def to_list(self) -> list[Any]:
        return [self.at_ms, self.event_id, self.rep_id, self.status]

    @classmethod
    def from_list(cls, raw: list[Any] | None) -> Mark | None:
        return None if raw is None else cls(int(raw[0]), raw[1], raw[2], raw[3])


@dataclass(frozen=True, slots=True)
class Clock:
    assignment_id: str
    mql_event_id: str
    owner_id: str
    team: str | None
    priority: str
    assigned_at_ms: int
    mql_assigned_at_ms: int  # first assignment of this MQL (escalation anchor across reassignments)
    reassignments: int  # reassignments of this MQL before this clock
    tiers: tuple[Tier, ...]  # sorted by (due, number)
    fired: tuple[int, ...] = ()  # tier numbers already breached
    stopped: Mark | None = None  # the touch that stopped it

    @property
    def due_at_ms(self) -> int:
        return next(t.due_ms for t in self.tiers if t.number == 0)

    @property
    def pending(self) -> tuple[Tier, ...]:
        return tuple(t for t in self.tiers if t.number not in self.fired)

    @property
    def is_open(self) -> bool:
        return self.stopped is None and bool(self.pending)

    def to_dict(self) -> dict[str, Any]:
        return {
            "assignment_id": self.assignment_id,
            "mql_event_id": self.mql_event_id,
            "owner_id": self.owner_id,
            "team": self.team,
            "priority": self.priority,
            "assigned_at_ms": self.assigned_at_ms,
            "mql_assigned_at_ms": self.mql_assigned_at_ms,
            "reassignments": self.reassignments,
            "tiers": [t.to_list() for t in self.tiers],
            "fired": list(self.fired),
            "stopped": self.stopped.to_list() if self.stopped else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Clock | None:
        if d is None:
            return None
        return cls(
            d["assignment_id"],
            d["mql_event_id"],
            d["owner_id"],
            d.get("team"),
            d["priority"],
            int(d["assigned_at_ms"]),
            int(d["mql_assigned_at_ms"]),
            int(d.get("reassignments") or 0),
            tuple(Tier.from_list(t) for t in d["tiers"]),
            tuple(int(n) for n in d.get("fired") or ()),
            Mark.from_list(d.get("stopped")),
        )


@dataclass(frozen=True, slots=True)
class LeadClock:
    lead_id: str
    clock: Clock | None = None
    last_touch: Mark | None = None  # newest touch seen, with or without a clock

    @property
    def is_open(self) -> bool:
        return self.clock is not None and self.clock.is_open

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": LAYOUT_VERSION,
            "lead_id": self.lead_id,
            "clock": self.clock.to_dict() if self.clock else None,
            "last_touch": self.last_touch.to_list() if self.last_touch else None,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LeadClock:
        if raw.get("v", LAYOUT_VERSION) != LAYOUT_VERSION:
            raise ValueError(f"LeadClock layout v={raw.get('v')!r} is not supported (expected {LAYOUT_VERSION})")
        return cls(raw["lead_id"], Clock.from_dict(raw.get("clock")), Mark.from_list(raw.get("last_touch")))


# --- Outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BreachOutput:
    key: str  # lead id
    record: dict[str, Any]  # sla_breached fields
    subject: str = SLA_BREACHED


@dataclass(frozen=True, slots=True)
class FirstTouchOutput:
    """Time to first touch, for ``leadflow_speed_to_lead_seconds{priority,team}``."""

    key: str
    priority: str
    team: str | None
    seconds: float
    after_breach: bool
    subject: str = FIRST_TOUCH


Output = BreachOutput | FirstTouchOutput


def breach_id(lead_id: str, assignment_id: str, tier: int) -> str:
    return deterministic_id(lead_id, "sla_breach", assignment_id, tier, prefix="br_")


# --- The state machine --------------------------------------------------------------------------


def apply(
    state: LeadClock | None,
    event: Event,
    config: SlaConfig,
    *,
    now_ms: int,
) -> tuple[LeadClock | None, list[Output]]:
    """Apply one event. When nothing changes the very same ``state`` object is returned."""
    if isinstance(event, Assigned):
        return _assigned(state, event.record, config)
    if isinstance(event, Touched):
        if state is not None and state.lead_id != event.lead_id:
            raise SlaError(f"touch {event.event_id} for {event.lead_id} applied to clock of {state.lead_id}")
        return _touched(state, event, config)
    if isinstance(event, Tick):
        return _tick(state, now_ms)
    raise SlaError(f"unknown SLA event {type(event).__name__}")


def next_due_ms(state: LeadClock | None) -> int | None:
    """Deadline of the clock's next unfired tier (None: nothing pending)."""
    clock = _open_clock(state)
    return min(t.due_ms for t in clock.pending) if clock is not None else None


def open_priority(state: LeadClock | None) -> str | None:
    """Priority of the open clock (for the open-clocks gauge), else None."""
    clock = _open_clock(state)
    return clock.priority if clock is not None else None


def _open_clock(state: LeadClock | None) -> Clock | None:
    """The lead's clock if it is open (``LeadClock.is_open``), else None."""
    return state.clock if state is not None and state.clock is not None and state.clock.is_open else None


def _assigned(state: LeadClock | None, rec: dict[str, Any], config: SlaConfig) -> tuple[LeadClock | None, list[Output]]:
    try:
        lead_id, aid = rec["lead_id"], rec["event_id"]
        assigned_at, due_at = int(rec["assigned_at"]), int(rec["first_touch_due_at"])
        owner, priority, mql = rec["owner_id"], rec["priority"], rec["mql_event_id"]
    except (KeyError, TypeError, ValueError) as exc:
        raise SlaError(f"lead_assigned record without a usable {exc}") from None
    team = rec.get("team")
    if state is not None and state.lead_id != lead_id:
        raise SlaError(f"assignment {aid} for {lead_id} applied to clock of {state.lead_id}")
    old = state.clock if state is not None else None
    if old is not None and (old.assignment_id == aid or (assigned_at, aid) < (old.assigned_at_ms, old.assignment_id)):
        return state, []  # redelivered, or older than the assignment we track
    same = old if old is not None and old.mql_event_id == mql else None  # the clock of the same MQL
    anchor = same.mql_assigned_at_ms if same is not None else assigned_at
    reassignments = same.reassignments + 1 if same is not None else 0
    # A reassignment (same MQL, same priority) continues the ladder: the same tier deadlines
    # (whatever the anchor), and the tiers already fired stay fired; tier 0 is the new owner's.
    ladder = (
        {t.number: t.due_ms for t in same.tiers if t.number > 0}
        if same is not None and same.priority == priority
        else None
    )
    tiers = _schedule(
        config, priority, owner, team, assigned_at=anchor, due_at=due_at, reassignments=reassignments, ladder=ladder
    )
    carry = same is not None and (ladder is not None or config.escalation_for(priority).anchor == "assigned")
    fired = (
        tuple(n for n in same.fired if n > 0 and any(t.number == n for t in tiers))
        if same is not None and carry
        else ()
    )
    clock = Clock(aid, mql, owner, team, priority, assigned_at, anchor, reassignments, tiers, fired=fired)
    outputs: list[Output] = []
    touch = state.last_touch if state is not None else None
    if touch is not None and touch.at_ms >= assigned_at - config.clock_skew_ms:
        clock, out = _stop(clock, touch, lead_id)  # the CRM touch overtook the assignment
        outputs.append(out)
    return LeadClock(lead_id, clock, touch), outputs


def _schedule(
    config: SlaConfig,
    priority: str,
    owner: str,
    team: str | None,
    *,
    assigned_at: int,
    due_at: int,
    reassignments: int,
    ladder: dict[int, int] | None = None,
) -> tuple[Tier, ...]:
    """Tier 0 at ``due_at``, the ladder from the anchor - or, for a reassignment, at the
    deadlines it already had (``ladder``: tier number -> due)."""
    ra = config.reassignment
    if ra.reassigns(priority, 0, reassignments):
        first = Tier(0, due_at, ra.role, None, REASSIGN)
    else:
        first = Tier(0, due_at, config.breach_role, config.contact_for(config.breach_role, owner, team))
    spec = config.escalation_for(priority)
    base = assigned_at if spec.anchor == "assigned" else due_at
    tiers = [first] + [
        Tier(
            t.number,
            (ladder or {}).get(t.number, base + t.after_ms),
            t.role,
            config.contact_for(t.role, owner, team),
            REASSIGN if ra.reassigns(priority, t.number, reassignments) else ESCALATE,
        )
        for t in spec.tiers
    ]
    return tuple(sorted(tiers, key=lambda t: (t.due_ms, t.number)))


def _touched(state: LeadClock | None, ev: Touched, config: SlaConfig) -> tuple[LeadClock | None, list[Output]]:
    if ev.status not in config.stop_statuses:
        return state, []
    mark = Mark(ev.occurred_at_ms, ev.event_id, ev.rep_id, ev.status)
    if state is None:
        return LeadClock(ev.lead_id, None, mark), []
    last = state.last_touch if state.last_touch is not None and state.last_touch.order >= mark.order else mark
    clock = state.clock
    outputs: list[Output] = []
    if clock is not None and clock.stopped is None and mark.at_ms >= clock.assigned_at_ms - config.clock_skew_ms:
        clock, out = _stop(clock, mark, state.lead_id)
        outputs.append(out)
    if clock is state.clock and last is state.last_touch:
        return state, []
    return LeadClock(state.lead_id, clock, last), outputs


def _stop(clock: Clock, mark: Mark, lead_id: str) -> tuple[Clock, FirstTouchOutput]:
    seconds = max(0.0, (mark.at_ms - clock.assigned_at_ms) / 1000)
    stopped = replace(clock, stopped=mark)
    return stopped, FirstTouchOutput(lead_id, clock.priority, clock.team, seconds, after_breach=bool(clock.fired))


def _tick(state: LeadClock | None, now_ms: int) -> tuple[LeadClock | None, list[Output]]:
    clock = _open_clock(state)
    if state is None or clock is None:
        return state, []
    due = [t for t in clock.pending if t.due_ms <= now_ms]
    if not due:
        return state, []
    outputs: list[Output] = []
    for tier in due:  # pending keeps the (due, number) order
        outputs.append(
            BreachOutput(
                state.lead_id,
                {
                    "event_id": breach_id(state.lead_id, clock.assignment_id, tier.number),
                    "lead_id": state.lead_id,
                    "assignment_id": clock.assignment_id,
                    "owner_id": clock.owner_id,
                    "priority": clock.priority,
                    "tier": tier.number,
                    "escalate_to_role": tier.role,
                    "escalate_to_id": tier.contact_id,
                    "due_at": tier.due_ms,
                    "breached_at": now_ms,
                    "minutes_late": round(max(0, now_ms - tier.due_ms) / 60_000, 3),
                    "action": tier.action,
                    "first_assigned_at": clock.mql_assigned_at_ms,
                },
            )
        )
    fired = tuple(sorted({*clock.fired, *(t.number for t in due)}))
    return LeadClock(state.lead_id, replace(clock, fired=fired), state.last_touch), outputs
