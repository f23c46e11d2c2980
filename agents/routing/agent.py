"""route: every MQL gets a named, active owner within seconds - never a dead queue.

Thin Faust wiring around the pure ``agents.routing.rules`` and the Redis adapter
``agents.routing.roster_store``. One agent, ``route_mqls`` (concurrency 1, docs/faust-pitfalls.md item 2, faust #606),
reads ``<p>.out.mqls`` (Avro LeadQualified, keyed by lead id) and writes
``<p>.out.assignments`` (Avro LeadAssigned, same key). Per MQL:

1. decode; anything that is not a lead_qualified record is dead-lettered (bad input);
2. the table ``lead_to_assignment`` (lead id -> last assignment, changelog-backed) says whether
   this MQL event was assigned already: a redelivery is skipped (nothing re-emitted, metric
   ``duplicates_skipped{stage="route"}``); an older crossing than the last one assigned is
   skipped (``route_stale``); another event for the same MQL crossing is skipped
   (``route_same_mql``) unless it raises the priority (scoring's re-issued MQL for a P1
   signal on a P2 lead): then ``priority_upgrade`` in routing.yaml decides - re-route to an
   owner of the new priority's role (default; the open slot moves) or keep the owner - with
   the new priority's SLA from now (``agents.routing.upgrades``);
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

Redis outage: every Redis call runs under the runtime's one retry policy
(``streams.redis_client.RedisRetry``: retried for as long as Redis is away, with exponential
backoff from ``LEADFLOW_REDIS_RETRY_INITIAL_S`` to ``LEADFLOW_REDIS_RETRY_MAX_S``); while
waiting ``leadflow_redis_waiting`` is 1, ``leadflow_redis_retries_total`` counts attempts and a
warning is logged (first failure, then every 30 s). The MQL is held - the agent does not move
to the next offset - so nothing is lost or dead-lettered, and assignments resume in order
once Redis answers.

A bug in the rules (an exception while planning) must not lose the lead either: it is
logged and the lead goes to the fallback owner with reason ``routing_error`` (through the
same idempotent Redis path). Only if that fails too is the record dead-lettered.

Unusable routing data in Redis (a corrupt roster document, a non-numeric version, cursor or
open-lead count: ``RosterDataError``) never dead-letters an MQL: ``roster_error`` in
routing.yaml sends it to the fallback owner (reason ``roster_unreadable``) or parks it in the
table (``agents.routing.pending``); the timer ``redrive_parked_mqls`` asks the agent (topic
``<p>.internal.routing-retries``) every ``LEADFLOW_ROUTING_REDRIVE_INTERVAL_S`` to route the
parked MQLs again; ``leadflow_pending_assignments`` counts them.

SLA reassignment: the same agent also reads ``<p>.out.sla-breaches`` (Avro SlaBreached, keyed
by lead id like the MQLs, so a lead's MQLs and breaches meet in order on one partition and
share its ``lead_to_assignment`` entry). A breach with ``action: reassign`` (which tiers do is
``reassignment`` in sla.yaml) moves the lead (``agents.routing.reassign``): skipped when the
table says it was done or the lead has moved on (``duplicates_skipped{stage="reassign_..."}``),
else the lead's plan is run again without everyone who had this MQL, in one Lua call under
the reassignment's own idempotency key that also moves the open slot from the old owner to
the new one; the ``lead_assigned`` record (same MQL event, fresh first-touch deadline, the
breach as cause) is emitted, then the table is written. Other breaches are ignored here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from agents.domain import wire
from agents.routing import pending as parking
from agents.routing import reassign as reassignment
from agents.routing import rules, upgrades
from agents.routing.assignment import assignment_record
from agents.routing.config import RoutingConfig
from agents.routing.facts import classify, facts_from_mql
from agents.routing.redelivery import RoutingMemo, redelivery_action
from agents.routing.roster_store import RosterDataError, RosterStore, StalePlan
from streams.app import Pipeline
from streams.consume import Meta, record_reader
from streams.keyed_lock import KeyedLocks
from streams.redis_client import RETRYABLE_ERRORS, RedisRetry

log = logging.getLogger(__name__)

AGENT_NAME = "route_mqls"
_MAX_REPLANS = 20
# ``await redis(operation, *args, **kwargs)``: RedisRetry (waits for Redis) or the fast path's one bounded try.
RedisCall = Callable[..., Awaitable[Any]]


def register(pipeline: Pipeline, *, config: RoutingConfig) -> None:
    settings, metrics = pipeline.settings, pipeline.metrics
    # Series start at 0: a counter born at 1 shows increase() == 0, so the first fallback
    # after a restart would never alert.
    for reason in rules.FALLBACK_REASONS:
        metrics.fallback_assignments.labels(reason=reason)
    for reason in reassignment.REDELIVERY_SKIPS:
        metrics.duplicates_skipped.labels(stage=f"reassign_{reason}")
    names = pipeline.topic_names
    lead_to_assignment = pipeline.table(
        "lead_to_assignment",
        "lead id -> last assignment (orjson RoutingMemo); pending:* -> parked MQLs (agents.routing.pending)",
    )
    parked = parking.PendingStore(lead_to_assignment)
    retries = pipeline.channel("routing_retries")
    store_box: list[RosterStore] = []

    def store() -> RosterStore:  # created on first use, inside the worker's event loop
        if not store_box:
            store_box.append(RosterStore(pipeline.redis(), settings.redis_key_prefix))
        return store_box[0]

    with_redis = RedisRetry(settings, metrics, who="routing", held="MQLs are held")
    # One lead at a time across the routing agent and the in-process fast path (route_emitted_mql).
    leads = KeyedLocks()
    read_mql = record_reader(pipeline.codec, "lead_qualified", "mqls")
    fast_path_rests_until = [0.0]  # time.monotonic(): after a failed try, the routing agent routes

    async def decide(
        record: dict[str, Any],
        facts,
        priority,
        upgrading: RoutingMemo | None = None,
        *,
        redis: RedisCall,
    ) -> tuple[rules.Plan, rules.Decision, Any]:
        """Plan against the current roster and run it in Redis; re-plan if the roster moved
        meanwhile (after _MAX_REPLANS tries, the last plan is applied without the check).
        ``upgrading``: the memo of the assignment this record raises the priority of
        (``priority_upgrade`` in routing.yaml decides who keeps the lead)."""

        def make_plan(roster, now_ms: int, version: int) -> rules.Plan:
            if roster is None and config.roster_error.action == "pending":  # wait for a roster
                raise RosterDataError("no roster loaded in Redis", parking.ROSTER_NOT_LOADED)
            try:
                base = rules.plan(
                    record, roster, config, now_ms=now_ms, roster_version=version, facts=facts, priority=priority
                )
                if upgrading is None:
                    return base
                return upgrades.plan_upgrade(base, upgrading, roster, config, now_ms=now_ms)
            except Exception:  # a bug must not lose the lead: fallback owner, with the reason
                log.exception("routing rules failed for lead %s; assigning to the fallback owner", facts.lead_id)
                return rules.fallback_plan(record, config, reason="routing_error", roster_version=version)

        result = await run_plan(make_plan, key_id=None, redis=redis)
        assert result is not None  # a routing plan always ends with the fallback
        return result

    async def run_plan(make_plan, *, key_id: str | None, redis: RedisCall = with_redis):
        """(plan, decision, roster) - or None when ``make_plan`` has nobody to offer."""
        s = store()
        for attempt in range(1, _MAX_REPLANS + 1):
            snap = await redis(s.snapshot)
            now_ms = pipeline.now_ms()
            version = snap.version if attempt < _MAX_REPLANS else -1
            plan = make_plan(snap.roster, now_ms, version)
            if plan is None:
                return None
            try:
                decision = await redis(s.assign, plan, now_ms=now_ms, ttl_s=config.idempotency_ttl_s, key_id=key_id)
            except StalePlan:
                continue
            return plan, decision, snap.roster
        raise AssertionError("unreachable: the last attempt does not check the roster version")

    async def route(
        record: dict[str, Any],
        partition: int,
        waiting: parking.PendingLead | None = None,
        *,
        redis: RedisCall = with_redis,
        in_process: bool = False,
    ) -> None:
        """Route one MQL; ``waiting``: its parked entry, when re-driven (agents.routing.pending);
        ``in_process``: in the scoring agent that emitted it (``route_emitted_mql``), with
        ``redis`` its one bounded try per call."""
        facts = facts_from_mql(record, config)
        key = facts.lead_id.encode()
        raw = lead_to_assignment.get(key)
        memo = RoutingMemo.from_dict(orjson.loads(raw)) if raw else None
        priority = classify(facts, config)
        skip = redelivery_action(memo, facts, priority.priority)
        if skip is not None:
            if waiting is not None:  # assigned meanwhile (a later MQL, or a crash after the memo write)
                parked.drop(facts.lead_id, waiting.partition)
                return
            if skip == "duplicate" and memo is not None and memo.in_process and not in_process:
                return  # the copy read back of an MQL routed in-process: expected, not a redelivery
            metrics.duplicates_skipped.labels(stage="route" if skip == "duplicate" else f"route_{skip}").inc()
            return
        raised_from = upgrades.upgrade_of(memo, facts.mql_number, priority.priority)
        try:
            plan, decision, roster = await decide(record, facts, priority, memo if raised_from else None, redis=redis)
        except RosterDataError as exc:
            if in_process:  # parking or the fallback owner: the routing agent's call, made once
                raise
            result = await on_roster_error(exc, record, facts, partition, waiting, redis=redis)
            if result is None:
                return
            plan, decision, roster = result
        assignment = assignment_record(plan, decision, record, roster, config)
        await pipeline.emit("lead_assigned", facts.lead_id, assignment.record)
        if raised_from and not decision.replay:
            log.info(
                "lead %s: priority %s -> %s on MQL %d; %s -> %s (%s)",
                facts.lead_id,
                raised_from,
                assignment.priority,
                facts.mql_number,
                memo.record.get("owner_id"),  # type: ignore[union-attr]
                assignment.record["owner_id"],
                assignment.rule,
            )
        lead_to_assignment[key] = orjson.dumps(
            RoutingMemo(
                facts.mql_event_id,
                facts.mql_number,
                assignment.priority,
                assignment.record,
                owners=(assignment.record["owner_id"],),
                first_assigned_at=assignment.record["assigned_at"],
                facts=reassignment.facts_to_dict(facts, plan.priority),
                in_process=in_process,
            ).to_dict()
        )
        if parked.resolve(facts.lead_id, facts.mql_number, partition):  # after the memo: see agents.routing.pending
            refresh_gauge()
            log.info("lead %s: parked MQL assigned to %s", facts.lead_id, assignment.record["owner_id"])
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

    async def on_roster_error(exc: RosterDataError, record, facts, partition: int, waiting, *, redis: RedisCall):
        """The roster in Redis is unusable: park the MQL (None) or give it to the fallback owner
        ((plan, decision, None)), as ``roster_error`` in routing.yaml says."""
        now = pipeline.now_ms()
        if parking.should_park(config.roster_error, waiting.since_ms if waiting else now, now):
            if waiting is None:
                parked.park(
                    parking.PendingLead(
                        facts.lead_id, facts.mql_event_id, facts.mql_number, partition, now, exc.reason, record
                    )
                )
                refresh_gauge()
                log.warning(
                    "lead %s parked, not routed: %s (roster_error: pending; re-tried every %gs)",
                    facts.lead_id,
                    exc.detail,
                    settings.routing_redrive_interval_s,
                )
            return None
        log.warning("lead %s cannot be routed: %s; the fallback owner takes it", facts.lead_id, exc.detail)
        plan = rules.fallback_plan(
            record, config, reason=exc.reason, roster_version=-1, note=f"roster unusable: {exc.detail}"
        )
        try:
            decision = await redis(lambda: store().assign(plan, now_ms=now, ttl_s=config.idempotency_ttl_s))
        except RosterDataError as again:  # even the fallback's Redis entries: assign without Redis
            log.warning("lead %s: fallback owner assigned without Redis (%s)", facts.lead_id, again.detail)
            decision = parking.local_fallback_decision(plan, now)
        return plan, decision, None

    def refresh_gauge() -> None:
        metrics.pending_assignments.set(parked.count(pipeline.owned_partitions("mqls")))

    async def redrive(partition: int) -> None:
        """A command from the timer: route the MQLs parked on one partition again."""
        for lead_id in parked.lead_ids(partition):
            try:
                async with leads.hold(lead_id):
                    waiting = parked.get(lead_id)
                    if waiting is None:  # crash between the index and the entry write
                        parked.drop(lead_id, partition)
                    else:
                        await route(waiting.record, partition, waiting)
            except Exception:  # noqa: BLE001 - the lead stays parked (and alerted); the others go on
                log.exception("re-driving parked lead %s failed", lead_id)
        refresh_gauge()

    @pipeline.timer(settings.routing_redrive_interval_s, name="redrive_parked_mqls")
    async def redrive_parked_mqls() -> None:
        # Timers must not write tables (docs/faust-pitfalls.md item 5): ask the agent, per owned partition.
        try:
            owned = pipeline.owned_partitions("mqls")
            for partition in sorted(owned):
                if parked.lead_ids(partition):
                    await retries.send(
                        key=b"routing-redrive",
                        partition=partition,
                        value=wire.encode(wire.RoutingRedrive(partition=partition)),
                    )
            metrics.pending_assignments.set(parked.count(owned))
        except Exception:  # a timer that raises stops for good; try again at the next tick
            log.exception("requesting re-drives of parked MQLs failed")

    async def reassign(breach: dict[str, Any]) -> None:
        """An SLA breach whose tier reassigns: move the lead (see the module docstring)."""
        lead_id = breach["lead_id"]
        key = lead_id.encode()
        raw = lead_to_assignment.get(key)
        memo = RoutingMemo.from_dict(orjson.loads(raw)) if raw else None
        skip = reassignment.reassign_action(memo, breach)
        if skip in reassignment.REDELIVERY_SKIPS:
            metrics.duplicates_skipped.labels(stage=f"reassign_{skip}").inc()
            return
        if skip is not None:
            log.warning(
                "SLA breach %s asks to reassign lead %s, which routing never assigned; ignored",
                breach["event_id"],
                lead_id,
            )
            return
        assert memo is not None  # reassign_action said "reassign": routing assigned this lead
        facts, priority = reassignment.facts_of(memo, config)
        why = reassignment.breach_reason(breach, memo)
        new_id = reassignment.reassignment_id(lead_id, breach["event_id"])

        def make_plan(roster, now_ms: int, version: int):
            try:
                base = rules.plan(
                    {}, roster, config, now_ms=now_ms, roster_version=version, facts=facts, priority=priority
                )
            except Exception:  # a bug must not strand the lead: the fallback owner, if not the one who missed it
                log.exception("routing rules failed reassigning lead %s; trying the fallback owner", lead_id)
                base = rules.Plan(
                    facts,
                    priority,
                    None,
                    None,
                    (
                        rules.Stage(
                            rules.FALLBACK_RULE,
                            rules.SINGLE,
                            (rules.Candidate(config.fallback.owner_id, None),),
                            reason="routing failed",
                        ),
                    ),
                    "routing_error",
                    version,
                )
            return reassignment.plan_reassignment(
                base,
                owner_id=breach["owner_id"],
                previous=memo.owners,
                roster=roster,
                config=config,
                now_ms=now_ms,
                why=why,
            )

        try:
            result = await run_plan(make_plan, key_id=new_id)
        except RosterDataError as exc:  # the lead keeps its owner: assigned, never lost
            log.warning(
                "lead %s: %s, but the roster in Redis is unusable (%s); it stays with its owner",
                lead_id,
                why,
                exc.detail,
            )
            return
        if result is None:
            log.warning("lead %s: %s, but nobody else can take it; it stays with its owner", lead_id, why)
            return
        plan, decision, roster = result
        assignment = reassignment.reassignment_record(plan, decision, memo, breach, roster, config)
        await pipeline.emit("lead_assigned", lead_id, assignment.record)
        lead_to_assignment[key] = orjson.dumps(reassignment.memo_after(memo, assignment.record).to_dict())
        if decision.replay:
            log.info("lead %s: re-emitted the reassignment already decided for breach %s", lead_id, breach["event_id"])
            return
        metrics.assignments.labels(rule=assignment.rule, priority=assignment.priority).inc()
        if assignment.fallback_reason is not None:
            metrics.fallback_assignments.labels(reason=assignment.fallback_reason).inc()
        log.info(
            "lead %s reassigned from %s to %s (%s)", lead_id, breach["owner_id"], assignment.record["owner_id"], why
        )

    async def on_erasure(erased: dict[str, Any]) -> None:
        """``lead_erased``: the lead's Redis keys (owner, open-slot membership, the decisions
        this table knows of), then the table entry's tombstone."""
        lead_id = erased["lead_id"]
        key = lead_id.encode()
        raw = lead_to_assignment.get(key)
        memo = RoutingMemo.from_dict(orjson.loads(raw)) if raw else None
        decisions = []
        if memo is not None:
            decisions.append(memo.mql_event_id)
            if memo.record.get("cause_event_id"):
                decisions.append(reassignment.reassignment_id(lead_id, memo.record["cause_event_id"]))
        owner = await with_redis(lambda: store().forget_lead(lead_id, decisions))
        if raw is not None:
            del lead_to_assignment[key]
        waiting = parked.get(lead_id)
        if waiting is not None:  # a parked MQL of an erased lead is never routed
            parked.drop(lead_id, waiting.partition)
            refresh_gauge()
        log.info("lead %s erased from routing (open slot with %s released)", lead_id, owner or "nobody")

    async def on_message(message: dict[str, Any] | wire.RoutingRedrive, meta: Meta) -> None:
        """MQLs, SLA breaches and lead_erased records, all keyed by lead id (one agent, so a
        lead's events are serial), and re-drive commands for MQLs parked while the roster was
        unusable (agents.routing.pending)."""
        if isinstance(message, wire.RoutingRedrive):
            await redrive(message.partition)
            return
        async with leads.hold(message["lead_id"]):
            if meta.topic == names.sla_breaches:
                if reassignment.wants_reassignment(message):  # escalations are for people (and the SLA agent)
                    await reassign(message)
            elif meta.topic == names.erasures:
                await on_erasure(message)
            else:
                await route(message, meta.partition)

    async def redis_once(operation, *args, **kwargs):
        return await asyncio.wait_for(operation(*args, **kwargs), settings.routing_in_process_redis_timeout_s)

    async def route_emitted_mql(meta: Meta) -> None:
        """The fast path: route an MQL the scoring agent just emitted, in that agent (one Kafka
        hop less to its assignment). Never waits: with Redis slow or away (one try per call,
        ``LEADFLOW_ROUTING_IN_PROCESS_REDIS_TIMEOUT_S``), the lead busy in the routing agent,
        or anything failing, the MQL is left to the routing agent, which reads every MQL from
        the topic anyway; that copy of one routed here is skipped by the memo."""
        outcome = await try_routing_in_process(meta)
        metrics.mqls_routed_in_process.labels(outcome=outcome).inc()

    async def try_routing_in_process(meta: Meta) -> str:
        """``routed``, or ``deferred`` (left to the routing agent)."""
        if with_redis.since is not None or time.monotonic() < fast_path_rests_until[0]:
            return "deferred"  # the routing agent is waiting for Redis, or the fast path rests
        try:
            record = read_mql(meta.value)
            lead_id = record["lead_id"]
        except Exception:  # noqa: BLE001 - the routing agent reads it too, and dead-letters it
            return "deferred"
        if leads.held(lead_id):
            return "deferred"
        try:
            async with leads.hold(lead_id):
                await route(record, meta.partition, redis=redis_once, in_process=True)
        except RosterDataError:  # the roster is unusable: roster_error in routing.yaml, applied by the routing agent
            return "deferred"
        except Exception as exc:  # noqa: BLE001 - the routing agent routes it from the topic
            fast_path_rests_until[0] = time.monotonic() + settings.redis_retry_max_s
            if isinstance(exc, RETRYABLE_ERRORS):
                log.warning(
                    "lead %s: Redis did not answer the in-process routing (%s); the routing agent "
                    "routes it, and routes alone for the next %gs",
                    lead_id,
                    type(exc).__name__,
                    settings.redis_retry_max_s,
                )
            else:
                log.exception("lead %s: in-process routing failed; the routing agent routes it", lead_id)
            return "deferred"
        return "routed"

    if settings.routing_in_process:
        pipeline.follow_emitted("mqls", route_emitted_mql)

    pipeline.consume(
        {
            "mqls": record_reader(pipeline.codec, "lead_qualified", "mqls"),
            "sla_breaches": record_reader(pipeline.codec, "sla_breached", "sla-breaches"),
            "erasures": record_reader(pipeline.codec, "lead_erased", "erasures"),
            "routing_retries": wire.reader(wire.RoutingRedrive),
        },
        name=AGENT_NAME,
        capability="routing",
        handle=on_message,
        rejects=(wire.UnknownMessage,),
    )
