"""disposition: conversions attached to the existing account (thin Faust + Redis wiring).

Every other disposition is applied and published by the scoring agent (it owns the lead's
state; see ``agents.disposition.rules``). A conversion needs what no single lead's state has:
the accounts other leads already converted into. That is a cross-lead registry, so it lives in
Redis, shared by all workers:

    <redis_key_prefix>:accounts:by_domain   hash  domain -> account id
    <redis_key_prefix>:accounts:by_company  hash  normalized company name -> account id

The first account seen for a domain (or name) wins (``HSETNX``): later conversions that propose
another id for the same domain are attached to it and published as the data-quality issue
``duplicate_account_prevented``. A CRM export of existing accounts can be loaded into the
same hashes. Replays are safe: resolving the same conversion again finds its own account.

``track_conversions`` reads ``<p>.internal.lead-events`` (keyed by lead) and owns one table,
``lead_to_account_facts`` (lead id -> corporate email domain and normalized company from the
lead's forms), because a CRM conversion may name neither; it is written only when a fact
changes. Other events are skipped by the decoder without building them.
"""

from __future__ import annotations

import logging

import orjson

from agents.disposition.rules import (
    account_issue,
    decide,
    disposition_record,
    issue_record,
    match_account,
    normalize_company,
)
from agents.domain import erasure, wire
from agents.domain.events import CRM_STATUS, FORM_SUBMITTED, LeadEvent
from agents.domain.identity import email_domain
from agents.scoring.model import ScoringModel
from streams.app import Pipeline
from streams.consume import Meta
from streams.redis_client import RedisRetry

log = logging.getLogger(__name__)

# Erasure: drop a registry entry only while it still names the account the erased lead
# registered (another conversion may have re-pointed it since).
_HDEL_IF_LUA = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


def register(pipeline: Pipeline, *, model: ScoringModel) -> None:
    settings, metrics = pipeline.settings, pipeline.metrics
    facts = pipeline.table("lead_to_account_facts", "lead id -> {domain, company} for account matching (orjson)")
    by_domain_key = f"{settings.redis_key_prefix}:accounts:by_domain"
    by_company_key = f"{settings.redis_key_prefix}:accounts:by_company"
    ignored_domains = model.free_email_domains | model.disposable_domains
    suppression_key = settings.suppression_key_bytes if settings.erasure_mode == "suppress" else None
    hdel_if: list = []  # the registered script, created on first use inside the worker's loop
    # Wait for Redis instead of losing the conversion (the partition pauses meanwhile).
    with_redis = RedisRetry(settings, metrics, who="account matching", held="conversions are held")

    def text(value) -> str | None:
        return value.decode() if isinstance(value, bytes) else value

    async def resolve(proposed: str | None, domain: str | None, company: str | None):
        """(match, registry entries this call created: {"domain"?, "company"?})."""
        r = pipeline.redis()
        for _ in range(3):  # a concurrent conversion on another worker may register first
            by_domain = text(await with_redis(r.hget, by_domain_key, domain)) if domain else None
            by_company = text(await with_redis(r.hget, by_company_key, company)) if company else None
            match = match_account(
                proposed, domain=domain, company_key=company, by_domain=by_domain, by_company=by_company
            )
            created = {}
            if match.register_domain:
                if not await with_redis(r.hsetnx, by_domain_key, domain, match.account_id):
                    continue  # lost the race: resolve again against the winner
                created["domain"] = domain
            if match.register_company and await with_redis(r.hsetnx, by_company_key, company, match.account_id):
                created["company"] = company
            return match, created
        return match, {}

    def suppressed(key: bytes, lead_id: str) -> bool:
        return (
            suppression_key is not None
            and facts.get(key) is None
            and facts.get(erasure.suppression_key(lead_id, suppression_key)) is not None
        )

    async def erase(lead_id: str) -> None:
        """Erasure on request: registry entries this lead created (if still its account's),
        then the facts' tombstone; in suppress mode the suppression entry."""
        key = lead_id.encode()
        raw = facts.get(key)
        known = orjson.loads(raw) if raw else {}
        registered = known.get("registered") or {}
        if registered:
            r = pipeline.redis()
            if not hdel_if:
                hdel_if.append(r.register_script(_HDEL_IF_LUA))
            for field, hash_key in (("domain", by_domain_key), ("company", by_company_key)):
                if registered.get(field):
                    await with_redis(
                        lambda h=hash_key, f=registered[field]: hdel_if[0](keys=[h], args=[f, registered["account_id"]])
                    )
        if raw is not None:
            del facts[key]
        if suppression_key is not None:
            facts[erasure.suppression_key(lead_id, suppression_key)] = b"1"

    def remember_facts(lead_event) -> None:
        data = lead_event.data
        key = lead_event.lead_id.encode()
        if suppressed(key, lead_event.lead_id):
            return
        raw = facts.get(key)
        current = orjson.loads(raw) if raw else {}
        domain = email_domain(data.get("email") or "") or None
        updated = dict(current)
        if domain and domain not in ignored_domains:
            updated["domain"] = domain
        company = normalize_company(data.get("company"))
        if company:
            updated["company"] = company
        if updated != current:
            facts[key] = orjson.dumps(updated)

    async def convert(lead_event, decision) -> None:
        data, lead_id = lead_event.data, lead_event.lead_id
        raw = facts.get(lead_id.encode())
        known = orjson.loads(raw) if raw else {}
        domain = data.get("account_domain") or known.get("domain")
        proposed = data.get("account_id")
        match, created = await resolve(proposed, domain, known.get("company"))
        if created and not suppressed(lead_id.encode(), lead_id):  # what erasure must undo
            facts[lead_id.encode()] = orjson.dumps({**known, "registered": {**created, "account_id": match.account_id}})
        record = disposition_record(
            decision,
            lead_id=lead_id,
            crm_event_id=lead_event.event_id,
            occurred_at_ms=lead_event.occurred_at_ms,
            new_stage=decision.stage,
            rep_id=data.get("rep_id"),
            account_id=match.account_id,
            account_domain=domain,
        )
        issue = account_issue(match, proposed_id=proposed, domain=domain)
        if issue is not None:
            code, detail = issue
            await pipeline.emit(
                "data_quality_issue",
                lead_id,
                issue_record(
                    code,
                    detail,
                    lead_id=lead_id,
                    source_event_id=lead_event.event_id,
                    occurred_at_ms=lead_event.occurred_at_ms,
                ),
            )
            metrics.data_quality_issues.labels(issue_code=code).inc()
        await pipeline.emit("lead_dispositioned", lead_id, record)
        metrics.dispositions.labels(status=decision.status, disposition=decision.disposition).inc()

    async def track(lead_event: LeadEvent, meta: Meta) -> None:
        if lead_event.lead_id is None:
            return
        if erasure.is_erasure(lead_event):
            await erase(lead_event.lead_id)
        elif lead_event.kind == FORM_SUBMITTED:
            remember_facts(lead_event)
        elif lead_event.kind == CRM_STATUS:
            # The one classification of a CRM status (agents.disposition.rules.decide): this
            # agent owns the conversions, the scoring agent applies every status to the lead.
            data = lead_event.data
            decision = decide(
                data.get("status") or "unknown", data.get("disposition"), permanent=model.permanent_dispositions
            )
            if decision.needs_account:
                await convert(lead_event, decision)

    pipeline.consume(
        "lead_events",
        decode=wire.reader(LeadEvent, kinds=(FORM_SUBMITTED, CRM_STATUS), skip_others=True),
        name="track_conversions",
        capability="disposition",
        handle=track,
    )
