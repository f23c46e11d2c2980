"""The CRM side: sales reps reacting to assignments, with realistic delays and sloppiness.

Pure and seeded *per assignment*: ``react(assignment)`` draws from a generator seeded with
(seed, assignment id), so the same assignment always gets the same touches, whatever order
assignments arrive in or how often one is redelivered.

What a rep does with an assignment (defaults; every share is a parameter):
- never touches it (``never_touch_share``, 6%): the SLA clock runs out and escalates;
- touches it late (``late_share``, 22%, scaled by the rep's habits): 1.15-3x the SLA window;
- otherwise touches it within 5-90% of the SLA window. The SLA window is read from the
  assignment itself (``first_touch_due_at - assigned_at``), so a demo that compresses SLAs in
  its routing configuration compresses the reps' behaviour with it;
- after the first touch: maybe ``working``, then an outcome drawn from the lead's persona
  (``personas.Persona.outcomes``): accepted / meeting booked / SQL / converted, or rejected
  with a disposition from the fixed list - or rejected *without* one ("rejected:", a
  data-quality defect leadflow must surface), or nothing at all (``no_outcome_share``).
  Accepted leads become SQL with ``sql_share`` (30%), SQLs opportunities ("converted") with
  ``convert_share`` (42%, the brief's SQL -> opportunity benchmark).
Delays after the first touch are business minutes (``RepTiming``) divided by ``speed``.
``REALISTIC_TIMING`` (the default) has reps decide within hours and convert within days: at
the demo's 60x that is minutes to an hour of wall time, so nothing past the first touch would
show in the demo's first minutes. ``DEMO_TIMING`` (``leadflow demo``) has reps qualify on the
first call and move a lead on within the same business hour, so a minute of demo traffic
(an hour of business time) shows accepted, SQL, converted and rejected leads.

Reps differ: a stable habit per rep id (hash) makes some fast, most normal, some slow.

Ground truth for calibration (``signal_lift``, off by default): {signal: odds multiplier}. When
the caller passes the signals the lead's MQL carried (``react(..., signals=...)``), the weight
of the outcome table's ``sql`` entry is multiplied by the lift of each signal present, so that
signal predicts conversion by a known amount while every other stays as predictive as the
persona makes it (``leadflow calibrate``'s tests and worked example; the random draws are the
same with or without it, so traffic is otherwise unchanged). Personas whose table has no ``sql``
entry are unaffected.
Queues are slower still; the nurture sequence "touches" by automated email, early.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

MINUTE_MS = 60_000
# Default first-touch SLAs (config/routing.yaml) for assignments the simulator invents itself.
DEFAULT_SLA_MS = {"P1": 10 * MINUTE_MS, "P2": 48 * 60 * MINUTE_MS, "P3": 5 * 24 * 60 * MINUTE_MS}
# Roster ids (config/roster.yaml) used when the simulator invents assignments (inline CRM).
INLINE_OWNERS = {
    "P1": ("ae-ana", "ae-ben", "ae-chloe"),
    "P2": ("sdr-sam", "sdr-priya", "sdr-lucas"),
    "P3": ("nurture-sequence",),
}
GENERIC_OUTCOMES: Mapping[str, float] = {
    "accepted": 3,
    "meeting_booked": 1,
    "sql": 1,
    "rejected:not_now": 2,
    "rejected:no_response": 1,
    "rejected:not_icp": 1,
    "rejected:": 0.5,
}
_HABITS = ((0.5, "fast"), (1.0, "normal"), (1.0, "normal"), (1.0, "normal"), (1.8, "slow"))


@dataclass(frozen=True, slots=True)
class RepTiming:
    """How long (business minutes, uniform in [low, high]) a rep takes for each step after
    the first touch; ``CrmSimulator`` divides them by its ``speed``."""

    working: tuple[float, float] = (5, 90)  # first touch -> "working" (half the leads)
    decision: tuple[float, float] = (10, 240)  # touch (or working) -> accepted / rejected / meeting
    meeting_to_accept: tuple[float, float] = (30, 600)  # meeting booked -> accepted
    accept_to_sql: tuple[float, float] = (60, 1440)  # accepted -> SQL
    sql_to_convert: tuple[float, float] = (240, 4320)  # SQL -> opportunity (converted)

    def __post_init__(self) -> None:
        for spec in fields(self):
            low, high = getattr(self, spec.name)
            if not 0 <= low <= high:
                raise ValueError(f"rep timing {spec.name}: expected 0 <= low <= high minutes, got {(low, high)}")

    def longest_after_touch(self) -> float:
        """Business minutes from the first touch to the last possible action."""
        return (
            self.working[1]
            + self.decision[1]
            + max(self.meeting_to_accept[1], self.accept_to_sql[1] + self.sql_to_convert[1])
        )


REALISTIC_TIMING = RepTiming()
# Reps who qualify on the first call and progress the lead within the same business hour.
DEMO_TIMING = RepTiming(
    working=(1, 4), decision=(2, 8), meeting_to_accept=(2, 8), accept_to_sql=(2, 8), sql_to_convert=(2, 8)
)
REP_TIMINGS = {"realistic": REALISTIC_TIMING, "demo": DEMO_TIMING}
_QUEUE_ROLES = frozenset({"queue"})
_NURTURE_ROLES = frozenset({"nurture"})


@dataclass(frozen=True, slots=True)
class CrmAction:
    at_ms: int
    record: dict[str, Any]  # a crm_status input record (docs/contracts.md)

    @property
    def status(self) -> str:
        return self.record["status"]


def queue_owner_for(priority: str, rng: random.Random) -> str:
    return rng.choice(INLINE_OWNERS.get(priority, INLINE_OWNERS["P2"]))


def rep_habit(owner_id: str) -> tuple[float, str]:
    """(lateness multiplier, label), stable per rep id."""
    digest = hashlib.blake2b(owner_id.encode(), digest_size=2).digest()
    return _HABITS[int.from_bytes(digest, "big") % len(_HABITS)]


class CrmSimulator:
    def __init__(
        self,
        seed: int,
        *,
        speed: float = 1.0,
        late_share: float = 0.22,
        never_touch_share: float = 0.06,
        no_outcome_share: float = 0.05,
        sql_share: float = 0.3,
        convert_share: float = 0.42,
        outcomes: Mapping[str, Mapping[str, float]] | None = None,
        timing: RepTiming = REALISTIC_TIMING,
        signal_lift: Mapping[str, float] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        if not (0 <= sql_share <= 1 and 0 <= convert_share <= 1):
            raise ValueError("sql_share and convert_share must be in [0, 1]")
        self.seed = seed
        self.speed = speed
        self.timing = timing
        self.sql_share = sql_share
        self.convert_share = convert_share
        self.late_share = late_share
        self.never_touch_share = never_touch_share
        self.no_outcome_share = no_outcome_share
        if outcomes is None:
            from leadflow.simulator.personas import PERSONAS

            outcomes = {p.name: p.outcomes for p in PERSONAS}
        self.outcomes = outcomes
        if any(lift <= 0 for lift in (signal_lift or {}).values()):
            raise ValueError("signal_lift: every odds multiplier must be > 0")
        self.signal_lift = dict(signal_lift or {})

    def _lifted(self, table: Mapping[str, float], signals: Iterable[str]) -> Mapping[str, float]:
        odds = 1.0
        for signal in set(signals):
            odds *= self.signal_lift.get(signal, 1.0)
        if odds == 1.0 or "sql" not in table:
            return table
        return {**table, "sql": table["sql"] * odds}

    def _business(self, rng: random.Random, minutes: tuple[float, float]) -> int:
        return int(rng.uniform(*minutes) * MINUTE_MS / self.speed)

    def react(
        self, assignment: Mapping[str, Any], *, persona: str | None = None, signals: Iterable[str] = ()
    ) -> list[CrmAction]:
        """What the owner does with this assignment: CRM records in time order (may be empty).

        ``assignment`` needs event_id, lead_id, owner_id, assigned_at, first_touch_due_at;
        owner_role and priority are used when present. ``signals``: the MQL's signals, for
        ``signal_lift``.
        """
        rng = random.Random(f"{self.seed}:{assignment['event_id']}")
        lead_id, owner = assignment["lead_id"], assignment["owner_id"]
        role = assignment.get("owner_role") or ""
        assigned_at = int(assignment["assigned_at"])
        window = max(1, int(assignment["first_touch_due_at"]) - assigned_at)
        multiplier, _ = rep_habit(owner)
        if role in _QUEUE_ROLES:
            multiplier = max(multiplier, 2.0)
        serial = iter(range(100))
        actions: list[CrmAction] = []

        def act(
            at_ms: int,
            status: str,
            *,
            channel: str | None = None,
            disposition: str | None = None,
            account: bool = False,
        ) -> None:
            domain = None
            if account:
                domain = f"account-{lead_id[3:11]}.example.com"
            actions.append(
                CrmAction(
                    at_ms,
                    {
                        "event_id": f"crm-{assignment['event_id']}-{next(serial)}",
                        "occurred_at": at_ms,
                        "lead_id": lead_id,
                        "email": None,
                        "rep_id": owner,
                        "status": status,
                        "touch_channel": channel,
                        "disposition": disposition,
                        "account_id": f"acc-{lead_id[3:13]}" if account else None,
                        "account_domain": domain,
                    },
                )
            )

        if role in _NURTURE_ROLES:  # automated sequence: an email, early, nothing else
            act(assigned_at + int(window * rng.uniform(0.01, 0.2)), "first_touch", channel="email")
            return actions
        if rng.random() < self.never_touch_share * multiplier:
            return actions  # sits untouched: breach, then escalation tiers
        if rng.random() < min(0.9, self.late_share * multiplier):
            touch_at = assigned_at + int(window * rng.uniform(1.15, 3.0))
        else:
            touch_at = assigned_at + int(window * rng.uniform(0.05, 0.9))
        channel = "call" if assignment.get("priority") == "P1" or rng.random() < 0.5 else "email"
        act(touch_at, "first_touch", channel=channel)
        t = touch_at
        if rng.random() < 0.5:
            t += self._business(rng, self.timing.working)
            act(t, "working", channel=rng.choice(("call", "email")))
        if rng.random() < self.no_outcome_share:
            return actions  # touched, then forgotten: disposition completeness gap
        table = self._lifted(self.outcomes.get(persona or "", GENERIC_OUTCOMES) or GENERIC_OUTCOMES, signals)
        outcome = rng.choices(list(table), list(table.values()))[0]
        t += self._business(rng, self.timing.decision)
        if outcome.startswith("rejected:"):
            disposition = outcome.partition(":")[2] or None  # "" = the rep skipped the reason
            act(t, "rejected", disposition=disposition)
        elif outcome == "meeting_booked":
            act(t, "meeting_booked", channel="meeting")
            if rng.random() < 0.7:
                act(t + self._business(rng, self.timing.meeting_to_accept), "accepted")
        elif outcome in ("accepted", "sql"):
            act(t, "accepted")
            if outcome == "sql" or rng.random() < self.sql_share:
                t += self._business(rng, self.timing.accept_to_sql)
                act(t, "sql")
                if rng.random() < self.convert_share:
                    act(t + self._business(rng, self.timing.sql_to_convert), "converted", account=True)
        else:  # an outcome name straight from the CRM vocabulary
            act(t, outcome)
        return actions
