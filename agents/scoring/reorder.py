"""MQL crossings in event-time order: a bounded reorder window per lead (issue 16).

Why. A qualification is a crossing along the path of a lead's scores, not a property of its
final state. After a restart capture re-reads each input topic at its own pace, so a lead's
form submits, web activity and CRM statuses reach scoring in another interleaving than the
first time; applied in arrival order, the same events can cross the threshold a different
number of times (3 MQLs missing and 2 extra over five kill -9 of a 30,000-event run).

What. Next to its state each lead keeps a *settled snapshot* (its state before its recent
events) and the *tail*: its events of the last ``window_ms`` of event time, sorted by
(event time, kind, event id), each with the processing time it arrived at. The state is the
snapshot with the tail applied in that order, so episodes and ``mql_number`` follow event
time, whatever the arrival order:

- a *live* event (processed at most ``live_ms`` after its event time) that is the lead's
  newest is applied directly (``rules.apply_event``) and its MQL decided at once: no latency;
- any other event inside the window (out of order, or catch-up after a restart) rebuilds the
  path from the snapshot in event-time order. Every decision on that path is the one a live
  run makes (``rules.apply_event`` at the processing time the event arrived at). An MQL or a
  priority upgrade on the path is sent now if the event that triggered it arrived live,
  otherwise it is *deferred* until processing time >= its event time + ``window_ms`` (the
  review due-index revisits the lead then) or until the lead's newest event is a window
  later; earlier deferred ones go out first. So the same inputs give the same MQLs
  (lead, mql_number, id) in any arrival order that stays within the window;
- an event *later than the window* (older than the snapshot, or more than ``window_ms``
  before the lead's newest event) is applied as before: in event time, its points added
  decayed to the lead's clock, sent only if the lead is hot at processing time. It never
  emits a historical crossing.

An entry leaves the tail for the snapshot once its decisions are final (``window_ms`` of
processing time has passed, or the lead's newest event is ``window_ms`` later; at most
``dedup_window`` entries stay). A lead with no event in the last window carries no window.
``window_ms == 0`` turns all of this off: plain ``rules.apply_event`` / ``rules.review``.
"""

from __future__ import annotations

import math
from bisect import insort
from dataclasses import dataclass
from typing import Any

from agents.disposition.rules import DEFAULT_POLICY, DispositionPolicy
from agents.domain.events import LeadEvent
from agents.domain.lead_facts import PriorityPolicy
from agents.scoring import rules
from agents.scoring.evaluation import evaluate
from agents.scoring.model import ScoringModel
from agents.scoring.outputs import LEAD_QUALIFIED, LEAD_SCORED, Output, QualifiedOutput, scored_output
from agents.scoring.stages import label_stage
from agents.scoring.state import LeadState

__all__ = ["ReorderWindow", "OFF", "PathCache", "apply_event", "review", "next_review_at_ms"]


@dataclass(frozen=True, slots=True)
class ReorderWindow:
    """``window_ms``: how far (event time) a lead's events may arrive out of order and still
    be decided in event-time order; ``live_ms``: the lateness up to which an event is live."""

    window_ms: int = 0
    live_ms: int = 0

    def __post_init__(self) -> None:
        for name in ("window_ms", "live_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"reorder window: {name} must be a whole number of ms >= 0, got {value!r}")
        if self.window_ms and self.live_ms >= self.window_ms:
            raise ValueError(f"reorder window: live_ms ({self.live_ms}) must be below window_ms ({self.window_ms})")

    @classmethod
    def from_seconds(cls, window_s: float, live_s: float) -> ReorderWindow:
        for name, value in (("window", window_s), ("live bound", live_s)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"reorder window: the {name} must be a finite number of seconds >= 0, got {value!r}")
        return cls(round(window_s * 1000), round(live_s * 1000))


OFF = ReorderWindow()
_NOT_STORED = object()  # a rebuild's base that is no stored window snapshot (see _resolve)


@dataclass(slots=True)
class _Path:
    snapshot_raw: dict[str, Any] | None  # the stored window's snapshot the path starts from
    keys: list[tuple[tuple[int, str], int]]  # (entry key, seen_ms) of each step
    steps: list[tuple[LeadState, list[QualifiedOutput]]]


class PathCache:
    """The last rebuilt path of recently rebuilt leads, in memory, so that the next rebuild of
    a lead re-applies only the entries after the first one that changed (issue 14: a catch-up
    drain rebuilt every lead's whole tail per event, about a third of the scoring agent's CPU).

    A cache, never the truth: a path is reused only when the stored window starts from the very
    snapshot it started from (equal dicts) and its entries are the same events seen at the
    same times; the steps are deterministic functions of those, so a reused path is the path a
    rebuild computes (a test holds the outputs and states equal with and without it). Bounded
    by the lead states it holds, ``max_steps`` in all (least recently used leads out first; a
    path longer than that is not kept); a restart starts empty. One cache per model. A lead's
    path holds its personal data: ``forget`` it when the lead is erased."""

    def __init__(self, max_steps: int) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"reorder path cache: max_steps must be a whole number >= 1, got {max_steps!r}")
        self.max_steps = max_steps
        self._paths: dict[str, _Path] = {}  # insertion order: least recently used first
        self._steps = 0
        self.reused_steps = 0  # steps not re-applied thanks to the cache (for benches and tests)

    def __len__(self) -> int:
        return len(self._paths)

    @property
    def steps(self) -> int:
        return self._steps

    def forget(self, lead_id: str) -> None:
        self._take(lead_id)

    def _take(self, lead_id: str) -> _Path | None:
        path = self._paths.pop(lead_id, None)
        if path is not None:
            self._steps -= len(path.steps)
        return path

    def _keep(self, lead_id: str, path: _Path) -> None:
        self._take(lead_id)
        if len(path.steps) > self.max_steps:
            return
        self._paths[lead_id] = path
        self._steps += len(path.steps)
        while self._steps > self.max_steps:
            self._take(next(iter(self._paths)))


# False: every catch-up event rebuilds the path (the reference the tests compare the fast path with).
_CATCH_UP_FAST_PATH = True


@dataclass(frozen=True, slots=True)
class _Entry:
    event: LeadEvent
    seen_ms: int  # processing time it arrived at: the "now" of its decisions

    @property
    def at(self) -> int:
        return self.event.occurred_at_ms

    @property
    def key(self) -> tuple[int, str]:  # same-time events: a fixed order, not the arrival's
        return (self.event.occurred_at_ms, rules.dedup_key_of(self.event))

    def __lt__(self, other: _Entry) -> bool:
        return self.key < other.key


@dataclass(slots=True)
class _Window:
    snapshot_raw: dict[str, Any] | None  # None: nothing before the tail
    tail: list[_Entry]
    pending_until_ms: int | None

    @classmethod
    def of(cls, state: LeadState | None) -> _Window | None:
        raw = state.window if state is not None else None
        if raw is None:
            return None
        tail = [_Entry(LeadEvent.from_dict(event), int(seen)) for event, seen in raw["tail"]]
        return cls(raw.get("snap"), tail, raw.get("pending"))

    def snapshot(self) -> LeadState | None:
        return LeadState.from_dict(self.snapshot_raw) if self.snapshot_raw is not None else None

    def horizon_ms(self, window_ms: int) -> int:
        """Events before this are later than the window: older than the snapshot, or more
        than the window before the lead's newest event."""
        snapshot_at = self.snapshot_raw["as_of_ms"] if self.snapshot_raw is not None else -(2**62)
        return max(snapshot_at, self.tail[-1].at - window_ms)


@dataclass(frozen=True, slots=True)
class _Ctx:
    model: ScoringModel
    window: ReorderWindow
    dedup_window: int
    dispositions: DispositionPolicy
    priority: PriorityPolicy | None = None
    paths: PathCache | None = None

    def apply(
        self, state: LeadState | None, event: LeadEvent, now_ms: int, *, explain: bool = True
    ) -> tuple[LeadState, list[Output]]:
        return rules.apply_event(
            state,
            event,
            self.model,
            now_ms=now_ms,
            dedup_window=self.dedup_window,
            dispositions=self.dispositions,
            priority=self.priority,
            explain=explain,
        )

    def step(self, state: LeadState | None, event: LeadEvent, now_ms: int) -> tuple[LeadState, list[Output]]:
        """A step along a path whose LeadScored outputs nobody reads (rebuilds, settling)."""
        return self.apply(state, event, now_ms, explain=False)


def apply_event(
    state: LeadState | None,
    event: LeadEvent,
    model: ScoringModel,
    *,
    now_ms: int,
    window: ReorderWindow = OFF,
    dedup_window: int = rules.DEFAULT_DEDUP_WINDOW,
    dispositions: DispositionPolicy = DEFAULT_POLICY,
    priority: PriorityPolicy | None = None,
    paths: PathCache | None = None,
) -> tuple[LeadState, list[Output]]:
    """``rules.apply_event`` with MQL crossings decided in event-time order within ``window``.
    Same contract: a duplicate returns ``(state, [])`` with the very same state object.
    ``paths``: rebuilt paths to reuse (:class:`PathCache`), for this ``model`` only."""
    ctx = _Ctx(model, window, dedup_window, dispositions, priority, paths)
    if not window.window_ms:
        return ctx.apply(state, event, now_ms)
    if state is not None and rules.dedup_key_of(event) in state.recent_event_ids:
        return state, []
    win, entry, t = _Window.of(state), _Entry(event, now_ms), event.occurred_at_ms
    if win is not None and state is not None and t < win.horizon_ms(window.window_ms):  # a window has a state
        return _late(ctx, state, win, entry)
    if win is None and state is not None and t < state.as_of_ms:
        return ctx.apply(state, event, now_ms)  # the lead's past is settled: later than the window
    newest = state is None or (t >= state.as_of_ms and (win is None or win.tail[-1] < entry))
    live = now_ms - t <= window.live_ms
    if newest and (win is None or win.pending_until_ms is None):
        # The path so far plus this event is the event-time path: apply it once. A live event is
        # decided at once. A catch-up one (not live) is too, unless it makes a crossing, whose
        # sending is deferred: only then is the path rebuilt (_resolve decides the deferral).
        # Nothing is pending, so the state's ledger is the path's (issue 14: catch-up rebuilt the
        # whole tail per event, 12% of the worker's CPU in `leadflow bench`).
        new, outputs = ctx.apply(state, event, now_ms)
        if live or (_CATCH_UP_FAST_PATH and not any(isinstance(o, QualifiedOutput) for o in outputs)):
            new.window = _after_newest(ctx, state, win, entry, now_ms)
            return new, outputs
    return _rebuild(ctx, state, win, entry, now_ms)


def review(
    state: LeadState,
    model: ScoringModel,
    *,
    now_ms: int,
    window: ReorderWindow = OFF,
    dedup_window: int = rules.DEFAULT_DEDUP_WINDOW,
    dispositions: DispositionPolicy = DEFAULT_POLICY,
    priority: PriorityPolicy | None = None,
    paths: PathCache | None = None,
) -> tuple[LeadState, list[Output]]:
    """``rules.review``, after deciding the deferred MQLs that are due and settling the tail."""
    outputs: list[Output] = []
    stage_before = state.stage
    win = _Window.of(state) if window.window_ms else None
    if win is not None and now_ms - win.tail[0].at >= window.window_ms:
        ctx = _Ctx(model, window, dedup_window, dispositions, priority, paths)
        state, outputs = _resolve(ctx, state, win.snapshot(), win.tail, now_ms, base_raw=win.snapshot_raw)
    reviewed, more = rules.review(state, model, now_ms=now_ms)
    if reviewed.stage != stage_before and not any(o.subject == LEAD_SCORED for o in more):
        # A deferred MQL went out: its lead_scored tells consumers the stage it now has. The id
        # names the MQL number, so a repeated review re-sends the same record.
        clock = reviewed.as_of_ms
        more.append(
            scored_output(
                reviewed,
                model,
                evaluate(reviewed, model, clock),
                cause_event_id=f"{rules.SWEEP}:mql_sent:{reviewed.mql_sent}",
                cause_kind=rules.SWEEP,
                occurred_at_ms=clock,
                now_ms=now_ms,
            )
        )
    return reviewed, outputs + more


def next_review_at_ms(state: LeadState, model: ScoringModel) -> int | None:
    """``rules.next_review_at_ms``, or earlier when a deferred MQL decision is due."""
    due = rules.next_review_at_ms(state, model)
    pending = state.window.get("pending") if state.window else None
    if pending is None:
        return due
    return pending if due is None else min(due, pending)


# --- the three paths ------------------------------------------------------------------------


def _late(ctx: _Ctx, state: LeadState, win: _Window, entry: _Entry) -> tuple[LeadState, list[Output]]:
    """Later than the window: decided as before on the lead's state (never a historical
    crossing), and folded into the snapshot so that later rebuilds include it."""
    new, outputs = ctx.apply(state, entry.event, entry.seen_ms)
    snapshot, _ = ctx.step(win.snapshot(), entry.event, entry.seen_ms)
    new.window = _pack(snapshot, win.tail, win.pending_until_ms)
    return new, outputs


def _after_newest(ctx: _Ctx, before: LeadState | None, win: _Window | None, entry: _Entry, now_ms: int):
    """The window after a live newest event was applied directly: settle what is final."""
    tail = [*(win.tail if win is not None else ()), entry]
    cut = _settled(ctx, tail, now_ms)
    if cut == len(tail):
        return None
    if cut == len(tail) - 1:  # everything before the new event is final: the snapshot is the state before it
        return _pack(_bare(before), tail[cut:], None)
    snapshot = win.snapshot() if win is not None else None
    for settled in tail[:cut]:
        snapshot, _ = ctx.step(snapshot, settled.event, settled.seen_ms)
    return _pack(snapshot, tail[cut:], None)


def _rebuild(ctx: _Ctx, state: LeadState | None, win: _Window | None, entry: _Entry, now_ms: int):
    """An event inside the window that is out of order or not live: rebuild the event-time
    path from the snapshot and decide on it."""
    entries = list(win.tail) if win is not None else []
    insort(entries, entry)
    base = win.snapshot() if win is not None else _bare(state)
    final, sent = _resolve(
        ctx, state, base, entries, now_ms, base_raw=win.snapshot_raw if win is not None else _NOT_STORED
    )
    # Dispositions, data-quality issues and visitor links say what they said before: what the
    # event does to the lead as it stands (a stale CRM status reports the current stage).
    _, arrival = ctx.step(state, entry.event, now_ms)
    event = entry.event
    scored = scored_output(
        final,
        ctx.model,
        evaluate(final, ctx.model, final.as_of_ms),
        cause_event_id=event.event_id,
        cause_kind=rules.MERGE if event.data.get("merged_from_visitor") else event.kind,
        occurred_at_ms=event.occurred_at_ms,
        now_ms=now_ms,
    )
    return final, [scored, *sent, *(o for o in arrival if o.subject not in (LEAD_SCORED, LEAD_QUALIFIED))]


def _resolve(
    ctx: _Ctx,
    state: LeadState | None,
    base: LeadState | None,
    entries: list[_Entry],
    now_ms: int,
    *,
    base_raw: dict[str, Any] | None | object = _NOT_STORED,
):
    """Apply ``entries`` (event-time order) to ``base`` as a live run would have, each at the
    processing time it arrived at; send the MQLs and upgrades of that path not sent yet whose
    decision is due (triggered live, or final), earlier ones first. Returns (state, sent).
    ``base_raw``: the stored snapshot ``base`` was read from (None: nothing before the tail;
    ``_NOT_STORED``: ``base`` is no stored snapshot, so no cached path starts from it)."""
    steps = _walk(ctx, base, base_raw, entries)
    cut = _settled(ctx, entries, now_ms)
    mql_sent, sent_priority = (state.mql_sent, state.sent_priority) if state is not None else (0, None)
    todo = [(i, o) for i, (_, outs) in enumerate(steps) for o in outs if not _sent(o, mql_sent, sent_priority)]
    due = [k for k, (i, _) in enumerate(todo) if i < cut or entries[i].seen_ms - entries[i].at <= ctx.window.live_ms]
    go = due[-1] + 1 if due else 0
    sent = [o for _, o in todo[:go]]
    for o in sent:
        mql_sent, sent_priority = o.record["mql_number"], o.record["priority_hint"]
    snapshot = steps[cut - 1][0] if cut else base
    window = _pack(
        snapshot, entries[cut:], min((entries[i].at + ctx.window.window_ms for i, _ in todo[go:]), default=None)
    )
    if ctx.paths is not None and window is not None:  # the next rebuild starts from this window's snapshot
        keys = [(e.key, e.seen_ms) for e in entries[cut:]]
        ctx.paths._keep(entries[0].event.lead_id or "", _Path(window["snap"], keys, steps[cut:]))
    final = steps[-1][0].clone()
    final.mql_sent, final.sent_priority = mql_sent, sent_priority  # the ledger is what was really sent
    label_stage(final)
    if state is not None and state.as_of_ms > final.as_of_ms:  # a review had moved the clock on: keep it
        final, _ = rules.review(final, ctx.model, now_ms=state.as_of_ms)  # state only: it was told then
    final.window = window
    return final, sent


# --- helpers --------------------------------------------------------------------------------


def _walk(
    ctx: _Ctx, base: LeadState | None, base_raw: dict[str, Any] | None | object, entries: list[_Entry]
) -> list[tuple[LeadState, list[QualifiedOutput]]]:
    """The states (and MQLs) of the path ``base`` + ``entries``, reusing the steps of the
    lead's cached path up to the first entry that differs (:class:`PathCache`)."""
    steps: list[tuple[LeadState, list[QualifiedOutput]]] = []
    cached = ctx.paths._take(entries[0].event.lead_id or "") if ctx.paths is not None else None
    if cached is not None and base_raw is not _NOT_STORED and cached.snapshot_raw == base_raw:
        for entry, key, step in zip(entries, cached.keys, cached.steps):
            if (entry.key, entry.seen_ms) != key:
                break
            steps.append(step)
        ctx.paths.reused_steps += len(steps)  # type: ignore[union-attr]  # cached is not None
    lead = steps[-1][0] if steps else base
    for e in entries[len(steps) :]:
        lead, outputs = ctx.step(lead, e.event, e.seen_ms)
        steps.append((lead, [o for o in outputs if isinstance(o, QualifiedOutput)]))  # subject LEAD_QUALIFIED
    return steps


def _settled(ctx: _Ctx, entries: list[_Entry], now_ms: int) -> int:
    """How many leading entries are final: a window of processing time has passed since their
    event time, or the lead's newest event is a window later (bounded by the dedup window)."""
    limit = max(entries[-1].at, now_ms) - ctx.window.window_ms
    cut = 0
    while cut < len(entries) and entries[cut].at <= limit:
        cut += 1
    return max(cut, len(entries) - ctx.dedup_window)


def _sent(output: QualifiedOutput, mql_sent: int, sent_priority: str | None) -> bool:
    """Already sent according to the ledger (MQLs by number, upgrades by number and priority)."""
    number, priority = output.record["mql_number"], output.record["priority_hint"]
    if output.record["upgrade_of"] is None:
        return number <= mql_sent
    return number < mql_sent or (number == mql_sent and (sent_priority is None or sent_priority <= priority))


def _bare(state: LeadState | None) -> LeadState | None:
    if state is None:
        return None
    bare = state.clone()
    bare.window = None
    return bare


def _pack(snapshot: LeadState | None, tail: list[_Entry], pending_until_ms: int | None) -> dict[str, Any] | None:
    if not tail:
        return None
    return {
        "snap": snapshot.to_dict() if snapshot is not None else None,
        "tail": [[e.event.to_dict(), e.seen_ms] for e in tail],
        "pending": pending_until_ms,
    }
