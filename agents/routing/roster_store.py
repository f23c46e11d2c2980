"""Redis adapter for routing: the live roster, open-lead sets, round-robin cursors, idempotency.

Keys (``P`` = ``settings.redis_key_prefix``; one Redis, or a primary with replicas/Sentinel -
the scripts derive keys from the prefix, so this is not Redis Cluster compatible):

=============================  =====================================================================
``P:roster:doc``               JSON: the validated roster (``Roster.to_dict``) + load metadata
``P:roster:version``           integer, incremented by every load (written with the doc in MULTI)
``P:open:<rep id>``            set of lead ids open with the rep (SCARD = open-lead count)
``P:lead_owner:<lead id>``     the rep a lead is currently open with
``P:rr:<pool>``                hash rep id -> smooth weighted round-robin current weight
``P:assigned:<mql event id>``  JSON decision for that MQL event (TTL ``idempotency_ttl_days``);
                               ``P:assigned:<reassignment id>`` for an SLA reassignment
=============================  =====================================================================

Open-lead counts are *sets*, not counters: assigning the same lead twice (a redelivery, a
priority upgrade) cannot count it twice, re-assigning a lead moves it from its previous
owner, and ``release(lead_id)`` (for the disposition/SLA capabilities: lead accepted,
rejected or recycled) is idempotent too.

Atomicity. ``assign`` is one Lua script: it returns the stored decision if the MQL event
was decided before (no counter moves), refuses a plan made from an older roster version
(the caller re-reads the roster and re-plans), otherwise walks the plan's stages (see
``agents.routing.rules``: first ``single`` candidate with room, or smooth weighted round
robin by remaining capacity within a ``pool``), moves the lead into the chosen rep's open
set, updates the pool's cursor and stores the decision under the MQL's idempotency key - all
in one step, so two workers never hand out the same slot. ``select_reference`` in
``agents.routing.selection`` is the same algorithm in Python.

Live roster. ``load`` writes the document and bumps the version atomically; ``snapshot``
is one round trip that returns the document only when the version differs from the cached
one, so every lead is routed with the roster current at that moment, and an unchanged
roster costs one small GET.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis.exceptions as redis_errors

from agents.routing.config import RoutingConfig
from agents.routing.pending import ROSTER_UNREADABLE, roster_document_problem
from agents.routing.roster import Roster
from agents.routing.roster_validation import check_config_owners
from agents.routing.rules import Decision, Plan
from streams.redis_client import RETRYABLE_ERRORS
from streams.settings import Settings
from streams.startup_checks import StartupError

log = logging.getLogger(__name__)

# Redis being away (down, loading, failing over, full) is an outage the caller waits out
# (streams.redis_client, the one retry policy), never bad input: re-raised as is.
_SNAPSHOT_LUA = """
local v = redis.call('GET', KEYS[1])
if not v then return {'0', false} end
if v == ARGV[1] then return {v, false} end
return {v, redis.call('GET', KEYS[2])}
"""

# KEYS: idempotency key, roster version key. ARGV[1]: JSON request (see RosterStore.assign).
# Returns {0, decision} (new), {1, decision} (replay) or {2, current roster version} (stale plan).
_ASSIGN_LUA = """
local prior = redis.call('GET', KEYS[1])
if prior then return {1, prior} end
local req = cjson.decode(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(req.ver) >= 0 and current ~= tonumber(req.ver) then return {2, tostring(current)} end
local p, lead = req.p, req.lead
local evaluated = {}
for i, stage in ipairs(req.stages) do
  local seen, chosen = {}, nil
  if stage.k == 'single' then
    local c = stage.c[1]
    local key = p .. ':open:' .. c[1]
    local n = redis.call('SCARD', key)
    seen[1] = {c[1], n, c[2]}
    if c[2] < 0 or n < c[2] or redis.call('SISMEMBER', key, lead) == 1 then chosen = c[1] end
  else
    local eligible, total = {}, 0
    for j, c in ipairs(stage.c) do
      local key = p .. ':open:' .. c[1]
      local n = redis.call('SCARD', key)
      seen[j] = {c[1], n, c[2]}
      local room
      if c[2] < 0 then room = 1073741824 else room = c[2] - n + redis.call('SISMEMBER', key, lead) end
      if room > 0 then
        eligible[#eligible + 1] = {c[1], room, 0}
        total = total + room
      end
    end
    if #eligible > 0 then
      local ckey = p .. ':rr:' .. stage.pool
      local best = nil
      for _, e in ipairs(eligible) do
        e[3] = tonumber(redis.call('HGET', ckey, e[1]) or '0') + e[2]
        if best == nil or e[3] > best[3] then best = e end
      end
      best[3] = best[3] - total
      for _, e in ipairs(eligible) do redis.call('HSET', ckey, e[1], e[3]) end
      chosen = best[1]
    end
  end
  evaluated[i] = seen
  if chosen then
    local owner_key = p .. ':lead_owner:' .. lead
    local prev = redis.call('GET', owner_key)
    if prev and prev ~= chosen then redis.call('SREM', p .. ':open:' .. prev, lead) end
    redis.call('SADD', p .. ':open:' .. chosen, lead)
    redis.call('SET', owner_key, chosen)
    local result = cjson.encode({stage = i - 1, rule = stage.r, owner = chosen, at = req.now,
                                 ver = current, ev = evaluated})
    redis.call('SET', KEYS[1], result, 'EX', req.ttl)
    return {0, result}
  end
end
return redis.error_reply('routing plan has no stage that takes the lead')
"""

_RELEASE_LUA = """
local prev = redis.call('GET', KEYS[1])
if not prev then return false end
redis.call('SREM', ARGV[1] .. ':open:' .. prev, ARGV[2])
redis.call('DEL', KEYS[1])
return prev
"""


def roster_keys(prefix: str) -> tuple[str, str]:
    """(version key, document key) of the roster under ``prefix``."""
    return f"{prefix}:roster:version", f"{prefix}:roster:doc"


class RosterDataError(Exception):
    """Routing's data in Redis is there but unusable (not an outage): a corrupt roster document,
    a non-numeric version, cursor or open-lead count, a key of the wrong type. ``reason`` is a
    metric label (``roster_unreadable``/``roster_not_loaded``); the message names what was
    wrong, never a value from it."""

    def __init__(self, detail: str, reason: str = ROSTER_UNREADABLE) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason


def _script_error(exc: redis_errors.ResponseError, what: str) -> RosterDataError:
    # Lua errors name the script line and the operation (e.g. arithmetic on a nil cursor),
    # and WRONGTYPE names nothing: neither carries a lead's or a rep's data.
    return RosterDataError(f"{what} failed in Redis: {str(exc).splitlines()[0][:200]}")


class StalePlan(Exception):
    """The roster changed between reading it and assigning: re-read and re-plan."""

    def __init__(self, version: int) -> None:
        super().__init__(f"roster is now version {version}")
        self.version = version


@dataclass(frozen=True)
class Snapshot:
    version: int  # 0 = no roster loaded
    roster: Roster | None
    meta: dict[str, Any]


class RosterStore:
    """Routing's Redis state, on a ``redis.asyncio.Redis`` client."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.version_key, self.doc_key = roster_keys(prefix)
        self._snapshot_script = client.register_script(_SNAPSHOT_LUA)
        self._assign_script = client.register_script(_ASSIGN_LUA)
        self._release_script = client.register_script(_RELEASE_LUA)
        self._cached = Snapshot(0, None, {})

    # --- keys ---------------------------------------------------------------------------

    def open_key(self, rep_id: str) -> str:
        return f"{self.prefix}:open:{rep_id}"

    def idempotency_key(self, mql_event_id: str) -> str:
        return f"{self.prefix}:assigned:{mql_event_id}"

    def lead_owner_key(self, lead_id: str) -> str:
        return f"{self.prefix}:lead_owner:{lead_id}"

    # --- roster -------------------------------------------------------------------------

    async def load(
        self, roster: Roster, *, source: str | None = None, loaded_at_ms: int | None = None, if_empty: bool = False
    ) -> int | None:
        """Replace the roster (document + version bump in one transaction); returns the version.

        ``if_empty``: only if no roster document exists, checked in the same transaction
        (WATCH), so two concurrent first loads (compose's init service racing `leadflow run`)
        load once; returns None when a roster was there."""
        doc = self._document(roster, source, loaded_at_ms)
        async with self.client.pipeline(transaction=True) as pipe:
            if if_empty:
                try:
                    await pipe.watch(self.doc_key)
                    if await pipe.exists(self.doc_key):
                        return None
                    pipe.multi()
                    pipe.set(self.doc_key, doc)
                    pipe.incr(self.version_key)
                    _, version = await pipe.execute()
                except redis_errors.WatchError:  # someone loaded one meanwhile
                    return None
                return int(version)
            pipe.set(self.doc_key, doc)
            pipe.incr(self.version_key)
            _, version = await pipe.execute()
        return int(version)

    @staticmethod
    def _document(roster: Roster, source: str | None, loaded_at_ms: int | None) -> bytes:
        body = roster.to_dict()
        doc = {
            "roster": body,
            "meta": {
                "source": source,
                "loaded_at_ms": loaded_at_ms,
                "label": roster.label,
                "sha256": hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest(),
            },
        }
        return orjson.dumps(doc)

    async def snapshot(self) -> Snapshot:
        """The current roster; one round trip, the document only travels when it changed."""
        cached = self._cached
        try:
            version_raw, doc_raw = await self._snapshot_script(
                keys=[self.version_key, self.doc_key], args=[str(cached.version)]
            )
        except RETRYABLE_ERRORS:
            raise
        except redis_errors.ResponseError as exc:  # e.g. WRONGTYPE: the keys hold something else
            raise _script_error(exc, f"reading the roster ({self.doc_key})") from exc
        try:
            version = int(version_raw)
        except ValueError:
            raise RosterDataError(f"roster version {self.version_key} is not an integer") from None
        if version == cached.version and doc_raw is None:
            return cached
        if doc_raw is None:  # version key without a document (or no roster at all)
            snap = Snapshot(version, None, {})
        else:
            snap = Snapshot(version, *self._parse(doc_raw))
        self._cached = snap
        return snap

    def _parse(self, doc_raw: bytes) -> tuple[Roster, dict[str, Any]]:
        """The stored document -> (Roster, meta); RosterDataError naming what is wrong."""
        try:
            doc = orjson.loads(doc_raw)
        except orjson.JSONDecodeError:
            raise RosterDataError(f"roster document {self.doc_key} is not valid JSON") from None
        problem = roster_document_problem(doc)
        if problem is None:
            try:
                return Roster.from_dict(doc["roster"]), doc.get("meta") or {}
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                problem = f"a roster entry has a field of the wrong type ({type(exc).__name__})"
        raise RosterDataError(f"{self.doc_key}: {problem}; fix it with `leadflow roster load FILE`")

    # --- assignment ---------------------------------------------------------------------

    async def assign(self, plan: Plan, *, now_ms: int, ttl_s: int, key_id: str | None = None) -> Decision:
        """Run the plan atomically (see module docstring). Raises StalePlan if the roster
        version changed since the plan was made (``plan.roster_version`` -1: do not check).
        ``key_id``: the idempotency id (default the MQL event id; an SLA reassignment passes
        its own id, derived from lead and breach - the lead's open slot then moves from the
        owner who missed the SLA to the new one in this same call)."""
        facts = plan.facts
        request = {
            "p": self.prefix,
            "lead": facts.lead_id,
            "ver": plan.roster_version,
            "now": now_ms,
            "ttl": ttl_s,
            "stages": [
                {
                    "r": s.rule,
                    "k": s.kind,
                    "pool": s.pool or s.rule,
                    "c": [[c.rep_id, -1 if c.capacity is None else c.capacity] for c in s.candidates],
                }
                for s in plan.stages
            ],
        }
        try:
            status, payload = await self._assign_script(
                keys=[self.idempotency_key(key_id or facts.mql_event_id), self.version_key],
                args=[orjson.dumps(request)],
            )
        except RETRYABLE_ERRORS:
            raise
        except redis_errors.ResponseError as exc:  # a non-numeric cursor or version, a key of the wrong type
            raise _script_error(exc, "the assignment (open-lead sets, round-robin cursors)") from exc
        if int(status) == 2:
            if not str(payload.decode() if isinstance(payload, bytes) else payload).lstrip("-").isdigit():
                raise RosterDataError(f"roster version {self.version_key} is not an integer")
            raise StalePlan(int(payload))
        try:
            return decode_decision(payload, replay=int(status) == 1)
        except (ValueError, KeyError, TypeError) as exc:  # a corrupt stored decision
            raise RosterDataError(
                f"the stored decision {self.idempotency_key(key_id or facts.mql_event_id)} "
                f"is unreadable ({type(exc).__name__})"
            ) from None

    async def release(self, lead_id: str) -> str | None:
        """Close a lead's open slot (accepted, rejected, recycled...); returns the rep it was
        open with, or None. Idempotent."""
        prev = await self._release_script(keys=[self.lead_owner_key(lead_id)], args=[self.prefix, lead_id])
        return prev.decode() if isinstance(prev, bytes) else prev

    async def forget_lead(self, lead_id: str, decision_ids: list[str]) -> str | None:
        """Erasure on request: release the lead's open slot and owner key, and delete the
        routing decisions stored under ``decision_ids`` (MQL event / reassignment ids; the ones
        not known expire with their TTL). Returns the rep it was open with. Idempotent."""
        owner = await self.release(lead_id)
        if decision_ids:
            await self.client.delete(*(self.idempotency_key(i) for i in decision_ids))
        return owner

    async def open_counts(self, rep_ids: list[str]) -> dict[str, int]:
        async with self.client.pipeline(transaction=False) as pipe:
            for rep_id in rep_ids:
                pipe.scard(self.open_key(rep_id))
            counts = await pipe.execute()
        return dict(zip(rep_ids, (int(c) for c in counts)))

    async def decision_for(self, mql_event_id: str) -> Decision | None:
        raw = await self.client.get(self.idempotency_key(mql_event_id))
        return decode_decision(raw, replay=True) if raw else None


def decode_decision(raw: bytes | str, *, replay: bool) -> Decision:
    d = orjson.loads(raw)
    evaluated = tuple(
        tuple((str(rep), int(n), None if int(cap) < 0 else int(cap)) for rep, n, cap in stage)
        for stage in (d.get("ev") or [])
        if isinstance(stage, list)
    )
    return Decision(
        stage=int(d["stage"]),
        rule=d["rule"],
        owner_id=d["owner"],
        assigned_at_ms=int(d["at"]),
        roster_version=int(d["ver"]),
        evaluated=evaluated,
        replay=replay,
    )


def check_routing_owners(
    redis_client: Any, config: RoutingConfig, settings: Settings, *, now_ms: int | None = None
) -> list[str]:
    """At worker start: the routing config's named owners against the roster in Redis (a sync
    client). The nurture owner must be an active rep of the loaded roster (``roster load``
    checks the same; a roster loaded before the routing config changed is caught here). No
    roster yet: a warning, the check runs at ``roster load``.

    Returns the warnings (also logged); raises StartupError naming every owner problem."""
    raw = redis_client.get(roster_keys(settings.redis_key_prefix)[1])
    if raw is None:
        warnings = [
            f"no roster loaded yet: the routing config's nurture_owner {config.nurture_owner!r} and "
            f"fallback.owner_id {config.fallback.owner_id!r} are checked when one is (`leadflow roster load`)"
        ]
    else:
        try:
            reps = Roster.from_dict(orjson.loads(raw)["roster"]).reps
        except Exception as exc:  # noqa: BLE001 - routing copes with a corrupt document; say so
            warnings = [f"the roster in Redis cannot be read ({type(exc).__name__}); routing's owners not checked"]
        else:
            problems: list[str] = []
            warnings = []
            check_config_owners(
                config, reps, now_ms if now_ms is not None else int(time.time() * 1000), problems, warnings
            )
            if problems:
                raise StartupError(
                    f"routing config {settings.routing_config_path} does not match the roster in "
                    f"Redis: {'; '.join(problems)}; fix LEADFLOW_ROUTING_CONFIG_PATH or load a "
                    "roster that has them (`leadflow roster load`)"
                )
    for warning in warnings:
        log.warning("%s", warning)
    return warnings
