"""score: keep per-lead state, re-score on every event, emit LeadScored / LeadQualified.

Thin Faust wiring around the pure ``agents.scoring.rules``. Three pieces:
- ``score_lead_events`` owns ``lead_to_state`` (and the review due-index) per partition;
- ``buffer_visitor_events`` owns ``visitor_to_activity``: anonymous pages wait there until
  the visitor identifies, then move to the lead with their original times;
- ``request_due_reviews`` is the wall-clock timer of the one sweeper (``streams.due_index``):
  it only *asks* each partition's agent (a ``ReviewDue`` command per ended bucket, on that
  partition of the lead-events topic) to review the leads whose decay review is due, because
  tables must be mutated from their stream, not from a timer (docs/faust-pitfalls.md item 5).
  Scoring supplies only what a due review does (``review_due``).

Order per event: outputs are sent before the state write, so a crash between the two
redelivers the event and re-sends the same outputs (deterministic ids) instead of
losing them.

Shadow model (``shadow``, LEADFLOW_SHADOW_MODEL_PATH): the same rules run with the candidate
model on ``lead_to_shadow_state``, after the live ones and before the live state write; only
their disagreement is sent (``shadow_decision``, ``agents.scoring.shadow``), nothing else.
Without it the hot path reads no other table.
"""

from __future__ import annotations

import logging
from typing import TypedDict

import orjson

from agents.disposition.rules import DispositionPolicy
from agents.domain import erasure, wire
from agents.domain.events import LeadEvent
from agents.domain.identity import visitor_key
from agents.domain.lead_facts import PriorityPolicy
from agents.scoring import reorder, rules
from agents.scoring import shadow as shadow_rules
from agents.scoring.model import ScoringModel
from agents.scoring.state import LeadState, VisitorState
from agents.scoring.state_codec import decode_state, encode_state
from streams.app import Pipeline
from streams.consume import Meta
from streams.due_index import DueIndex, Sweeper
from streams.metric_labels import score_band
from streams.write_behind import read_decoded, write_encoded

log = logging.getLogger(__name__)


class RulesConfig(TypedDict):
    """What the scoring rules take besides the state, the event and the model."""

    window: reorder.ReorderWindow
    dedup_window: int
    dispositions: DispositionPolicy
    priority: PriorityPolicy


def decode_visitor(raw: bytes) -> VisitorState:
    return VisitorState.from_dict(orjson.loads(raw))


def encode_visitor(vstate: VisitorState) -> bytes:
    return orjson.dumps(vstate.to_dict())


def register(
    pipeline: Pipeline,
    *,
    model: ScoringModel,
    dispositions: DispositionPolicy,
    priority: PriorityPolicy,
    shadow: ScoringModel | None = None,
) -> None:
    """``dispositions``: the recycling policy (sla.yaml), checked against the model's permanent
    list by the composition root. ``shadow``: a candidate model scored alongside, or None."""
    settings, metrics = pipeline.settings, pipeline.metrics
    lead_events = pipeline.channel("lead_events")
    visitor_events = pipeline.channel("visitor_events")
    # A lead's state and a visitor's buffer each stand alone: with LEADFLOW_STATE_WRITE_BEHIND_KEYS
    # they are written once per key per commit (streams/write_behind.py). The review index stays
    # write-through: a state is never durable before the index entry its events scheduled.
    lead_to_state = pipeline.table(
        "lead_to_state", "lead id -> LeadState (agents.scoring.state_codec)", write_behind=True
    )
    visitor_to_activity = pipeline.table(
        "visitor_to_activity", "visitor key -> VisitorState (orjson)", write_behind=True
    )
    reviews = DueIndex(
        pipeline.table("review_bucket_to_leads", "partition:bucket -> lead ids due for a decay review"),
        width_ms=settings.sweep_bucket_s * 1000,
    )

    # Crossings in event-time order within this window (issue 16, agents/scoring/reorder.py).
    window = reorder.ReorderWindow.from_seconds(settings.reorder_window_s, settings.live_event_bound_s)
    # The live model's rebuilt paths (the shadow model's rebuilds do not use it: one cache per model).
    paths = reorder.PathCache(settings.reorder_path_cache_steps) if settings.reorder_path_cache_steps else None
    # The rules' configuration: the live and the shadow model run the same calls with it.
    config = RulesConfig(
        window=window, dedup_window=settings.dedup_window, dispositions=dispositions, priority=priority
    )
    suppression_key = settings.suppression_key_bytes if settings.erasure_mode == "suppress" else None
    shadow_table = (
        pipeline.table(
            "lead_to_shadow_state",
            "lead id -> the candidate model's LeadState (agents.scoring.state_codec)",
            write_behind=True,
        )
        if shadow is not None
        else None
    )

    def load_lead(key: bytes) -> LeadState | None:
        state: LeadState | None = read_decoded(lead_to_state, key, decode_state)
        return state

    async def publish(outputs) -> None:
        for out in outputs:
            if out.subject == "visitor_linked":
                await visitor_events.send(
                    key=visitor_key(out.visitor_id),
                    value=wire.encode(wire.VisitorLinked(visitor_id=out.visitor_id, lead_id=out.lead_id)),
                )
                continue
            await pipeline.emit(out.subject, out.key, out.record)
            if out.subject == "lead_scored":
                metrics.leads_scored.labels(stage=out.record["stage"]).inc()
            elif out.subject == "lead_qualified":
                record = out.record
                if record.get("upgrade_of"):  # a priority upgrade of an MQL already counted
                    log.info(
                        "lead %s: MQL %s re-issued with priority %s (was %s)",
                        record["lead_id"],
                        record["upgrade_of"],
                        record["priority_hint"],
                        record["previous_priority_hint"],
                    )
                    continue
                metrics.mqls.labels(
                    source=record.get("first_touch_source") or "unknown",
                    score_band=score_band(record["score"]),
                    fast_track=str(record["fast_track"]).lower(),
                ).inc()
            elif out.subject == "lead_dispositioned":
                metrics.dispositions.labels(status=out.record["status"], disposition=out.record["disposition"]).inc()
            elif out.subject == "data_quality_issue":
                metrics.data_quality_issues.labels(issue_code=out.record["issue_code"]).inc()
                if out.status is not None:  # a CRM status that was not applied (no valid reason)
                    metrics.dispositions.labels(status=out.status, disposition=None).inc()

    def save_lead(
        key: bytes, lead_id: str, state: LeadState, partition: int, now_ms: int, *, min_bucket: int = 0
    ) -> None:
        write_encoded(lead_to_state, key, state, encode_state)
        due = reorder.next_review_at_ms(state, model)
        if due is not None:
            reviews.schedule(partition, lead_id, due, now_ms, min_bucket=min_bucket)

    async def run_shadow(key: bytes, live: shadow_rules.Scored, step, *, cause_event_id: str, now_ms: int) -> None:
        """Score in shadow: ``step(shadow state) -> (state, outputs)`` is the live call with the
        candidate model. Its outputs are compared, never sent; the decision goes out before the
        shadow state is written (a redelivery re-sends the same id)."""
        assert shadow is not None and shadow_table is not None
        before = read_decoded(shadow_table, key, decode_state)
        after, outputs = step(before)
        if after is before:  # already applied (redelivery): its decision was sent then
            return
        decision = shadow_rules.compare(
            live,
            shadow_rules.Scored(after, outputs, shadow.version),
            cause_event_id=cause_event_id,
            now_ms=now_ms,
            band_of=score_band,
            unknown_source=model.attribution.missing_channel,
        )
        if decision is not None:
            await pipeline.emit(decision.subject, decision.key, decision.record)
            metrics.shadow_decisions.labels(
                direction=decision.direction, source=decision.source, score_band=decision.band
            ).inc()
        write_encoded(shadow_table, key, after, encode_state)

    async def apply_lead_event(lead_event, partition: int) -> None:
        key = lead_event.lead_id.encode()
        now_ms = pipeline.now_ms()
        state = load_lead(key)
        if (
            state is None
            and suppression_key is not None
            and lead_to_state.get(erasure.suppression_key(lead_event.lead_id, suppression_key))
        ):
            metrics.duplicates_skipped.labels(stage="erased").inc()  # erased, and later events suppressed
            return
        new_state, outputs = reorder.apply_event(state, lead_event, model, now_ms=now_ms, paths=paths, **config)
        if new_state is state:  # already applied (redelivery): rules return the same object
            metrics.duplicates_skipped.labels(stage="score").inc()
            return
        await publish(outputs)
        if shadow is not None:
            await run_shadow(
                key,
                shadow_rules.Scored(new_state, outputs, model.version),
                lambda before: reorder.apply_event(before, lead_event, shadow, now_ms=now_ms, **config),
                cause_event_id=lead_event.event_id,
                now_ms=now_ms,
            )
        save_lead(key, lead_event.lead_id, new_state, partition, now_ms)
        metrics.event_to_score_seconds.labels(kind=lead_event.kind).observe(
            max(0.0, (pipeline.now_ms() - lead_event.received_at_ms) / 1000)
        )

    async def review_due(partition: int, bucket: int, lead_ids: list[str]) -> int:
        """The sweeper's ``on_due``: review the leads of an ended bucket (outputs, then state;
        the next review goes to a later bucket)."""
        now_ms = pipeline.now_ms()
        reviewed = 0
        for lead_id in lead_ids:
            key = lead_id.encode()
            state = load_lead(key)
            if state is None:
                continue
            due = reorder.next_review_at_ms(state, model)
            if due is None or reviews.bucket_of(due) > bucket:
                continue  # rescheduled since this entry was written
            new_state, outputs = reorder.review(state, model, now_ms=now_ms, paths=paths, **config)
            await publish(outputs)
            if shadow is not None:  # the candidate is reviewed on the live schedule
                await run_shadow(
                    key,
                    shadow_rules.Scored(new_state, outputs, model.version),
                    lambda before: (
                        (before, []) if before is None else reorder.review(before, shadow, now_ms=now_ms, **config)
                    ),
                    cause_event_id=f"review:{bucket}",
                    now_ms=now_ms,
                )
            save_lead(key, lead_id, new_state, partition, now_ms, min_bucket=bucket + 1)
            reviewed += 1
        return reviewed

    async def erase_lead(request) -> None:
        """Erasure on request: tombstone the lead's state (``del`` writes the changelog
        tombstone), ask the visitor agent to drop the linked visitors' buffers, record the
        suppression entry (suppress mode) and announce ``lead_erased``. The due-index may still
        list the lead id (no personal data); a review of a missing lead is a no-op."""
        key = request.lead_id.encode()
        state = load_lead(key)
        visitors = state.linked_visitor_ids if state is not None else []
        for visitor_id in visitors:
            await visitor_events.send(
                key=visitor_key(visitor_id),
                value=wire.encode(wire.VisitorErased(visitor_id=visitor_id, lead_id=request.lead_id)),
            )
        await pipeline.emit(
            "lead_erased",
            request.lead_id,
            erasure.lead_erased_record(
                request,
                erased_at_ms=pipeline.now_ms(),
                found=state is not None,
                visitors=len(visitors),
                mode=settings.erasure_mode,
            ),
        )
        if state is not None:
            del lead_to_state[key]
        if paths is not None:
            paths.forget(request.lead_id)  # its rebuilt path holds the lead's profile
        if shadow_table is not None and shadow_table.get(key) is not None:
            del shadow_table[key]  # the candidate's copy of the lead (docs/privacy.md)
        if suppression_key is not None:
            lead_to_state[erasure.suppression_key(request.lead_id, suppression_key)] = b"1"
        log.info("lead %s erased on request %s (%d linked visitors)", request.lead_id, request.event_id, len(visitors))

    async def score(message: LeadEvent | wire.ReviewDue, meta: Meta) -> None:
        if isinstance(message, wire.ReviewDue):
            await reviews.sweep(message.partition, message.bucket, message.bucket, review_due)
        elif erasure.is_erasure(message):
            await erase_lead(message)
        else:
            await apply_lead_event(message, meta.partition)

    pipeline.consume(
        "lead_events",
        decode=wire.reader(LeadEvent, wire.ReviewDue),
        name="score_lead_events",
        capability="scoring",
        handle=score,
        rejects=(wire.UnknownMessage,),
    )

    async def buffer_visitor(message: LeadEvent | wire.VisitorLinked | wire.VisitorErased, meta: Meta) -> None:
        key = meta.key
        if key is None:  # every producer of this internal topic keys it by visitor
            raise ValueError("a visitor event without a key")
        vstate = read_decoded(visitor_to_activity, key, decode_visitor)
        if isinstance(message, wire.VisitorErased):
            # Only if the browser still maps to the erased lead (a shared one may have moved on).
            if vstate is not None and vstate.lead_id == message.lead_id:
                del visitor_to_activity[key]
            return
        if isinstance(message, wire.VisitorLinked):
            vstate, forwards = rules.link_visitor(vstate, message.lead_id, visitor_id=message.visitor_id)
        else:
            vstate, forwards = rules.apply_visitor_event(
                vstate, message, model, max_buffered=settings.visitor_buffer_max
            )
        for forward in forwards:
            assert forward.lead_id is not None  # forwarded because the visitor is linked to a lead
            await lead_events.send(key=forward.lead_id.encode(), value=wire.encode_lead_event(forward))
        write_encoded(visitor_to_activity, key, vstate, encode_visitor)

    pipeline.consume(
        "visitor_events",
        decode=wire.reader(LeadEvent, wire.VisitorLinked, wire.VisitorErased),
        name="buffer_visitor_events",
        capability="visitor buffer",
        handle=buffer_visitor,
        rejects=(wire.UnknownMessage,),
    )

    # ReviewDue carries one bucket (its wire format predates range commands): one command per bucket.
    Sweeper(
        pipeline,
        reviews,
        timer="request_due_reviews",
        channel="lead_events",
        key=b"sweep",
        command=lambda partition, first, last: wire.encode(wire.ReviewDue(partition=partition, bucket=first)),
        max_buckets_per_command=1,
    )
