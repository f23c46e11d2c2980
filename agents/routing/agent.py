"""route: every MQL gets a named, active owner within seconds - never a dead queue.

Thin Faust wiring around the pure ``agents.routing.rules`` and the Redis adapter
``streams.roster_store``. One agent, ``route_mqls`` (concurrency 1, engineering notes #606),
reads ``<p>.out.mqls`` (Avro LeadQualified, keyed by lead id) and writes
``<p>.out.assignments`` (Avro LeadAssigned, same key). Per MQL:

1. decode; anything that is not a lead_qualified record is dead-lettered (bad input);
2. the table ``lead_to_assignment`` (lead id -> last assignment, changelog-backed) says whether
   this MQL event was assigned already: a redelivery is skipped (nothing re-emitted, metric
   ``duplicates_skipped{stage="route"}``); an older crossing than the last one assigned is
   skipped (``route_stale``); another event for the same MQL crossing is skipped
   (``route_same_mql``) unless it raises the priority (a P1 signal on a P2 lead is routed
   again, and its open slot moves to the new owner);
3. read the roster snapshot (cached by version: a live ``roster load`` applies to the next
   lead), plan (pure), and run the plan in Redis atomically (one Lua call that also records
   the decision under the MQL event id, so a redelivery after a crash - before the table
   write - gets the very same owner and ``assigned_at`` back and the record is rebuilt with
   the same deterministic ``event_id``); a plan made from a roster that changed meanwhile
   is re-planned;
4. emit ``lead_assigned``, then write the table (outputs before state, as in scoring);
5. metrics (not for a replayed decision, already counted when it was made):
   ``assignments{rule,priority}``, ``fallback_assignments{reason}`` (+ a warning log line),
   ``event_to_assignment_seconds{priority}`` from the MQL's ``cause_received_at`` (broker
   time of the input event that caused it; not observed when absent).

Redis outage: every Redis call is retried forever with exponential backoff (0.1 s doubling
to 5 s); while waiting ``leadflow_redis_waiting`` is 1, ``leadflow_redis_retries_total``
counts attempts and a warning is logged (first failure, then every 30 s). The MQL is
held - the agent does not move to the next offset - so nothing is lost or dead-lettered,
and assignments resume in order once Redis answers.

A bug in the rules (an exception while planning) must not lose the lead either: it is
logged and the lead goes to the fallback owner with reason ``routing_error`` (through the
same idempotent Redis path). Only if that fails too is the record dead-lettered.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from tenacity import AsyncRetrying, retry_if_exception_type, stop_never, wait_exponential

from agents.routing import rules
from agents.routing.config import load_routing_config
from agents.routing.facts import classify, facts_from_mql
from agents.routing.redelivery import RoutingMemo, redelivery_action
from streams.codec.exceptions import DecodeError
from streams.connections import redact_url
from streams.roster_store import RETRYABLE_ERRORS, RosterStore, StalePlan

log = logging.getLogger(__name__)

AGENT_NAME = "route_mqls"
_MAX_REPLANS = 20
_WARN_EVERY_S = 30.0


def register(pipeline, *, config=None) -> None:  # pipeline: streams.app.Pipeline
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    config = config or load_routing_config(settings.routing_config_path)
    # Series start at 0: a counter born at 1 shows increase() == 0, so the first fallback
    # after a restart would never alert.
    for reason in rules.FALLBACK_REASONS:
        metrics.fallback_assignments.labels(reason=reason)
    mqls = pipeline.channel("mqls")
    lead_to_assignment = pipeline.table("lead_to_assignment", "lead id -> last assignment (orjson RoutingMemo)")
    store_box: list[RosterStore] = []

    def store() -> RosterStore:  # created on first use, inside the worker's event loop
        if not store_box:
            store_box.append(RosterStore(pipeline.redis(), settings.redis_key_prefix))
        return store_box[0]

    waiting = {"since": None, "warned_at": 0.0}

    def before_sleep(retry_state) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        metrics.redis_retries.inc()
        metrics.redis_waiting.set(1)
        now = time.monotonic()
        if waiting["since"] is None:
            waiting["since"] = now
        if now - waiting["warned_at"] >= _WARN_EVERY_S:
            waiting["warned_at"] = now
            log.warning(
                "routing is waiting for Redis at %s (%s: %s); attempt %d, next try in %.1fs - "
                "MQLs are held, none is dropped",
                redact_url(settings.redis_url), type(exc).__name__, exc, retry_state.attempt_number,
                retry_state.next_action.sleep if retry_state.next_action else 0.0,
            )

    async def with_redis(operation):
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE_ERRORS),
            wait=wait_exponential(multiplier=0.1, max=5.0),
            stop=stop_never,
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                result = await operation()
        if waiting["since"] is not None:
            log.warning("Redis is reachable again after %.1fs; routing resumes", time.monotonic() - waiting["since"])
            waiting["since"], waiting["warned_at"] = None, 0.0
            metrics.redis_waiting.set(0)
        return result

    async def decide(record: dict[str, Any], facts, priority) -> tuple[rules.Plan, rules.Decision, Any]:
        """Plan against the current roster and run it in Redis; re-plan if the roster moved
        meanwhile (after _MAX_REPLANS tries, the last plan is applied without the check)."""
        s = store()
        for attempt in range(1, _MAX_REPLANS + 1):
            snap = await with_redis(s.snapshot)
            now_ms = pipeline.now_ms()
            version = snap.version if attempt < _MAX_REPLANS else -1
            try:
                plan = rules.plan(record, snap.roster, config, now_ms=now_ms, roster_version=version,
                                  facts=facts, priority=priority)
            except Exception:  # a bug must not lose the lead: fallback owner, with the reason
                log.exception("routing rules failed for lead %s; assigning to the fallback owner", facts.lead_id)
                plan = rules.fallback_plan(record, config, reason="routing_error", roster_version=version)
            try:
                decision = await with_redis(lambda: s.assign(plan, now_ms=now_ms, ttl_s=config.idempotency_ttl_s))
            except StalePlan:
                continue
            return plan, decision, snap.roster
        raise AssertionError("unreachable: the last attempt does not check the roster version")

    async def route(record: dict[str, Any]) -> None:
        facts = facts_from_mql(record, config)
        key = facts.lead_id.encode()
        raw = lead_to_assignment.get(key)
        memo = RoutingMemo.from_dict(orjson.loads(raw)) if raw else None
        priority = classify(facts, config)
        skip = redelivery_action(memo, facts, priority.priority)
        if skip is not None:
            metrics.duplicates_skipped.labels(stage="route" if skip == "duplicate" else f"route_{skip}").inc()
            return
        plan, decision, roster = await decide(record, facts, priority)
        assignment = rules.assignment_record(plan, decision, record, roster, config)
        await pipeline.emit("lead_assigned", facts.lead_id, assignment.record)
        lead_to_assignment[key] = orjson.dumps(
            RoutingMemo(facts.mql_event_id, facts.mql_number, assignment.priority, assignment.record).to_dict()
        )
        if decision.replay:  # decided before (e.g. crash before the table write): same record again
            log.info("lead %s: re-emitted the assignment already decided for MQL %s", facts.lead_id, facts.mql_event_id)
            return
        metrics.assignments.labels(rule=assignment.rule, priority=assignment.priority).inc()
        if assignment.fallback_reason is not None:
            metrics.fallback_assignments.labels(reason=assignment.fallback_reason).inc()
            log.warning("lead %s assigned to the fallback owner: %s", facts.lead_id, assignment.fallback_reason)
        cause_ms = record.get("cause_received_at")
        if cause_ms:
            metrics.event_to_assignment_seconds.labels(priority=assignment.priority).observe(
                max(0.0, (pipeline.now_ms() - int(cause_ms)) / 1000)
            )

    @app.agent(mqls, name=AGENT_NAME, concurrency=1)
    async def route_mqls(stream):
        async for event in stream.events():
            message = event.message
            try:
                subject, record = pipeline.codec.decode(message.value, "lead_qualified")
            except DecodeError as exc:  # bad bytes on the topic: park them
                await pipeline.dead_letter(event, exc.reason_code, exc.detail)
                continue
            if subject != "lead_qualified":
                await pipeline.dead_letter(event, "unknown_kind", f"expected lead_qualified on the mqls topic, got {subject!r}")
                continue
            try:
                await route(record)
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the partition
                log.exception("routing failed at %s[%d]@%d", message.topic, message.partition, message.offset)
                await pipeline.dead_letter(event, "processing_error", f"{type(exc).__name__} in routing")
