"""Routing through a real Kafka + Redis and real worker processes.

One worker (module scope, its own topic prefix and Redis key prefix) serves the behaviour
checks, each on its own leads and its own part of the roster (rules keyed by country), so
sharing the worker hides nothing: account owner (end to end from form submits), territory,
inactive / out-of-office skips, fairness over 100 leads and weighted splits, capacity
exhaustion, no-match fallback, live roster change, duplicate delivery. The Redis outage and
the restart/redelivery checks get their own workers.

The workers run through this module's ``__main__`` (``python -m tests.integration.test_routing``):
the stock worker's pipeline without its health server.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import urllib.request
import uuid
from collections import Counter
from typing import Any

import pytest

from agents.domain.identity import lead_id_for_email
from agents.routing.roster import parse_roster
from leadflow.devstack.base import ManagedProcess
from streams.settings import REPO_ROOT
from tests.integration.conftest import WorkerHarness
from tests.integration.factories import as_json, form_submit, web_activity
from tests.integration.kafkatools import codec
from tests.repo_config import default_routing_config

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


# --- harness ----------------------------------------------------------------------------------


class RoutingHarness(WorkerHarness):
    """WorkerHarness whose workers have the routing agent (see module docstring)."""

    def start(self) -> ManagedProcess:
        slot = None
        if hasattr(self, "process_env"):  # harness with per-process ports and data dirs
            slot = self._free_slot()
            env = self.process_env(slot)
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
            env.update(self.env_overrides)
        index = len(self.processes)
        process = ManagedProcess(
            f"worker-{index}",
            [sys.executable, "-m", "tests.integration.test_routing"],
            log_file=self.workdir / f"worker-{index}.log",
            pid_file=self.workdir / f"worker-{index}.pid",
            cwd=REPO_ROOT,
            env=env,
            tie_to_parent=True,
        )
        if slot is not None:
            self._slot_of[process.name] = slot
        process.start()
        self.processes.append(process)
        return process

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()

    def metric(self, sample: str) -> float:
        """Value of one exposition line, e.g. 'leadflow_redis_waiting' (0 when absent)."""
        for line in self.metrics().splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def _redis_call(settings, fn):
    import redis.asyncio as aioredis

    from agents.routing.roster_store import RosterStore

    async def go():
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            return await fn(RosterStore(client, settings.redis_key_prefix))
        finally:
            await client.aclose()

    return asyncio.run(go())


def load_roster(harness: WorkerHarness, raw: dict[str, Any]) -> int:
    roster = parse_roster(raw, config=default_routing_config(), now_ms=int(time.time() * 1000))
    return _redis_call(harness.settings, lambda store: store.load(roster, source="test"))


def produce_keyed(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for key, value in messages:
                await producer.send(topic, key=key, value=value)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(go())


_n = iter(range(1, 10**9))


def mql(
    *,
    domain: str = "corp.example.com",
    country: str = "US",
    form_kind: str = "demo_request",
    fit_grade: str = "C",
    company_size: int = 500,
    event_id: str | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    """A LeadQualified v3 record as scoring emits it (the structured facts routing reads)."""
    email = email or f"lead{next(_n)}.{uuid.uuid4().hex[:6]}@{domain}"
    lead_id = lead_id_for_email(email)
    signal = {"demo_request": "contact_request", "webinar_registration": "webinar_registration"}[form_kind]
    now = int(time.time() * 1000)
    record = {
        "event_id": event_id or f"mql_{lead_id}_1",
        "lead_id": lead_id,
        "email": email,
        "occurred_at": now,
        "qualified_at": now,
        "mql_number": 1,
        "score": 60.0,
        "fit_grade": fit_grade,
        "fast_track": False,
        "breakdown": [{"signal": signal, "points": 20.0, "detail": None}],
        "model_version": "test",
        "handoff": {
            "trigger": f"{signal} ({form_kind} form)",
            "problem_hypothesis": "Evaluating",
            "disqualifiers_checked": [
                f"icp_company_size: passed ({company_size} employees)",
                f"icp_geography: passed ({country})",
            ],
            "last_touches": [{"kind": f"form:{form_kind}", "detail": None, "occurred_at": now}],
            "recommended_opener": "Hi",
        },
        "first_touch_source": None,
        "last_touch_source": None,
        "account_key": domain,
        "company": "Corp",
        "job_title": "Director",
        "priority_hint": None,
        "firmographics": {
            "company_size": company_size,
            "industry": None,
            "country": country,
            "segment": default_routing_config().segment_for(company_size),
            "fit_grade": fit_grade,
        },
        "signals": [{"signal": signal, "points": 20.0}],
        "form_kinds": [form_kind],
        "lead_type": None,
    }
    if "cause_received_at" in codec().registry.latest("lead_qualified").field_names:
        record["cause_received_at"] = None
    return record


def publish_mqls(harness: WorkerHarness, records: list[dict[str, Any]]) -> None:
    produce_keyed(
        harness.settings.kafka_bootstrap,
        harness.topics.mqls,
        [(r["lead_id"].encode(), codec().encode("lead_qualified", r)) for r in records],
    )


def assignments_for(
    kafka, harness: WorkerHarness, lead_ids, *, per_lead: int = 1, timeout: float = 90, settle: float = 0.0
) -> list[dict[str, Any]]:
    """Assignment records of these leads, waiting until each has ``per_lead`` of them; with
    ``settle``, keeps reading that long afterwards so wrong extra records show up too."""
    wanted = set(lead_ids)

    def mine(rs):
        return [r["value"] for r in rs if r["value"]["lead_id"] in wanted]

    def done(rs):
        counts = Counter(v["lead_id"] for v in mine(rs))
        return all(counts[lead] >= per_lead for lead in wanted)

    out = kafka.consume(harness.topics.assignments, until=harness.watch(done), timeout=timeout)
    if settle:
        time.sleep(settle)
        out = kafka.consume(harness.topics.assignments, until=harness.watch(lambda rs: False), timeout=3)
    got = mine(out)
    assert done([{"value": v} for v in got]), f"missing assignments: {len(got)} of {len(wanted)}\n{harness.logs()}"
    return got


def by_lead(records) -> dict[str, dict[str, Any]]:
    return {r["lead_id"]: r for r in records}


# --- the shared worker and its roster -------------------------------------------------------

OOO_NOW = [{"from": "2020-01-01T00:00:00Z", "until": "2099-01-01T00:00:00Z"}]


def rep(rep_id: str, role: str = "AE", capacity: int = 1000, **fields: Any) -> dict[str, Any]:
    return {
        "id": rep_id,
        "name": rep_id.replace("-", " ").title(),
        "role": role,
        "team": "t",
        "capacity": capacity,
        **fields,
    }


def shared_roster(live_member: str = "live-1") -> dict[str, Any]:
    no_rr = {"round_robin": False}
    return {
        "label": "integration",
        "territories": [
            {"id": "na", "countries": ["US", "CA"]},
            {"id": "emea", "countries": ["GB", "DE", "FR", "IT"]},
            {"id": "apac", "countries": ["JP"]},
        ],
        "reps": [
            rep("mgr", "manager", **no_rr),
            rep("ae-owner", capacity=5),
            rep("ae-gone", active=False),
            rep("ae-away", out_of_office=OOO_NOW, **no_rr),
            rep("ae-present", **no_rr),
            rep("ae-emea", territories=["emea"], **no_rr),
            *[rep(f"fair-{i}", **no_rr) for i in range(1, 5)],
            rep("big", capacity=30, **no_rr),
            rep("small", capacity=10, **no_rr),
            rep("cap-1", capacity=1, **no_rr),
            rep("live-1", **no_rr),
            rep("live-2", **no_rr),
            {"id": "nurture-sequence", "name": "Nurture", "role": "nurture", "round_robin": False},
            {"id": "revops-triage", "name": "RevOps triage queue", "role": "queue", "round_robin": False},
        ],
        "rules": [
            {
                "name": "fair",
                "match": {"countries": ["FR"]},
                "members": [f"fair-{i}" for i in range(1, 5)],
                "default_owner": "mgr",
            },
            {"name": "weighted", "match": {"countries": ["DE"]}, "members": ["big", "small"], "default_owner": "mgr"},
            {"name": "tight", "match": {"countries": ["IT"]}, "members": ["cap-1"], "default_owner": "mgr"},
            {"name": "live", "match": {"countries": ["CA"]}, "members": [live_member], "default_owner": "mgr"},
            {
                "name": "away-pool",
                "match": {"countries": ["JP"]},
                "members": ["ae-away", "ae-present"],
                "default_owner": "mgr",
            },
            {"name": "emea", "match": {"territories": ["emea"]}, "default_owner": "mgr"},
        ],
        "account_owners": {"acme-logistics.com": "ae-owner", "gone.example.com": "ae-gone"},
    }


@pytest.fixture(scope="module")
def routing(stack, stack_settings, tmp_path_factory):
    harness = RoutingHarness(
        stack_settings, tmp_path_factory.mktemp("routing"), redis_key_prefix="t" + uuid.uuid4().hex[:10]
    )
    load_roster(harness, shared_roster())
    harness.start()
    try:
        yield harness
    finally:
        harness.stop_all()


# --- behaviour checks on the shared worker -------------------------------------------------


def test_account_owner_wins_end_to_end_from_form_submits(routing, kafka):
    email = "dana.reyes@acme-logistics.com"
    kafka.produce(routing.topics.form_submits, [as_json(form_submit(email))])
    kafka.produce(
        routing.topics.web_activity,
        [
            as_json(web_activity(email=email)),
            as_json(web_activity(email=email, page_type="demo", url="https://example.com/demo")),
        ],
    )
    lead = lead_id_for_email(email)
    [assignment] = assignments_for(kafka, routing, [lead], timeout=120)
    assert (assignment["owner_id"], assignment["rule"], assignment["is_fallback"]) == (
        "ae-owner",
        "account_owner",
        False,
    )
    assert assignment["priority"] == "P1" and assignment["owner_role"] == "AE"
    assert assignment["first_touch_due_at"] - assignment["assigned_at"] == 10 * 60_000
    assert "owns the account acme-logistics.com" in assignment["reason"]
    assert assignment["audit"][-1] == {
        "candidate": "ae-owner",
        "decision": "chosen",
        "reason": "account_owner: 0 open, no limit",
    }
    assert assignment["handoff"]["trigger"] and assignment["handoff"]["recommended_opener"]
    assert assignment["handoff"]["last_touches"], "the full handoff context from scoring"
    mqls = kafka.consume(
        routing.topics.mqls, until=lambda rs: any(r["value"]["lead_id"] == lead for r in rs), timeout=10
    )
    [mql_out] = [r["value"] for r in mqls if r["value"]["lead_id"] == lead]
    assert assignment["handoff"] == mql_out["handoff"]
    assert assignment["mql_event_id"] == mql_out["event_id"]
    assert routing.metric('leadflow_assignments_total{priority="P1",rule="account_owner"}') >= 1
    # Routed in the scoring agent that emitted the MQL; the copy read back from out.mqls is no duplicate.
    assert routing.metric('leadflow_mqls_routed_in_process_total{outcome="routed"}') >= 1
    if mql_out.get("cause_received_at"):
        assert routing.metric('leadflow_event_to_assignment_seconds_count{priority="P1"}') >= 1


def test_territory_rule_match(routing, kafka):
    records = [mql(country="GB") for _ in range(4)]
    publish_mqls(routing, records)
    got = assignments_for(kafka, routing, [r["lead_id"] for r in records])
    assert {(a["owner_id"], a["rule"]) for a in got} == {("ae-emea", "rule:emea")}
    assert all("territory emea" in a["reason"] for a in got)


def test_inactive_and_out_of_office_reps_are_skipped(routing, kafka):
    records = [mql(domain="gone.example.com", country="JP") for _ in range(6)]
    publish_mqls(routing, records)
    got = assignments_for(kafka, routing, [r["lead_id"] for r in records])
    assert {a["owner_id"] for a in got} == {"ae-present"}
    for a in got:
        reasons = {e["candidate"]: e["reason"] for e in a["audit"] if e["decision"] == "skipped"}
        assert reasons["ae-gone"] == "account owner of gone.example.com: inactive"
        assert reasons["ae-away"] == "rule:away-pool: out of office until 2099-01-01T00:00:00Z"


def test_round_robin_fairness_over_100_leads_and_weighted_split(routing, kafka):
    fair = [mql(country="FR") for _ in range(100)]
    weighted = [mql(country="DE") for _ in range(20)]
    publish_mqls(routing, fair + weighted)
    got = assignments_for(kafka, routing, [r["lead_id"] for r in fair + weighted])
    leads = by_lead(got)
    fair_counts = Counter(leads[r["lead_id"]]["owner_id"] for r in fair)
    assert set(fair_counts) == {f"fair-{i}" for i in range(1, 5)}
    assert max(fair_counts.values()) - min(fair_counts.values()) <= 1, fair_counts
    weighted_counts = Counter(leads[r["lead_id"]]["owner_id"] for r in weighted)
    assert weighted_counts == {"big": 15, "small": 5}, weighted_counts  # by remaining capacity 30:10
    open_counts = _redis_call(routing.settings, lambda s: s.open_counts(["fair-1", "big", "small"]))
    assert open_counts["big"] == 15 and open_counts["small"] == 5


def test_capacity_exhaustion_moves_on(routing, kafka):
    records = [mql(country="IT") for _ in range(3)]
    publish_mqls(routing, records)
    got = assignments_for(kafka, routing, [r["lead_id"] for r in records])
    assert Counter((a["owner_id"], a["rule"]) for a in got) == {
        ("cap-1", "rule:tight"): 1,
        ("mgr", "rule:tight:default_owner"): 2,
    }
    for a in got:
        if a["owner_id"] == "mgr":
            assert {"candidate": "cap-1", "decision": "skipped", "reason": "rule:tight: at capacity (1/1 open)"} in a[
                "audit"
            ]


def test_no_match_goes_to_the_named_fallback_with_reason_and_metric(routing, kafka):
    records = [mql(form_kind="webinar_registration", company_size=50) for _ in range(2)]  # P2: nobody is an SDR
    publish_mqls(routing, records)
    got = assignments_for(kafka, routing, [r["lead_id"] for r in records])
    for a in got:
        assert (a["owner_id"], a["owner_name"], a["rule"], a["is_fallback"], a["priority"]) == (
            "revops-triage",
            "RevOps triage queue",
            "fallback",
            True,
            "P2",
        )
        assert "no_candidates" in a["reason"]
    assert routing.metric('leadflow_fallback_assignments_total{reason="no_candidates"}') >= 2


def test_live_roster_change_applies_to_the_next_lead(routing, kafka):
    before = mql(country="CA")
    publish_mqls(routing, [before])
    [first] = assignments_for(kafka, routing, [before["lead_id"]])
    assert first["owner_id"] == "live-1"
    load_roster(routing, shared_roster(live_member="live-2"))  # no restart
    after = mql(country="CA")
    publish_mqls(routing, [after])
    [second] = assignments_for(kafka, routing, [after["lead_id"]])
    assert second["owner_id"] == "live-2"


def test_duplicate_mql_delivery_gives_one_assignment(routing, kafka):
    record, marker = mql(country="GB"), mql(country="GB")
    publish_mqls(routing, [record, record, record])
    publish_mqls(routing, [marker])
    got = assignments_for(kafka, routing, [record["lead_id"], marker["lead_id"]], settle=2.0)
    assert Counter(a["lead_id"] for a in got) == {record["lead_id"]: 1, marker["lead_id"]: 1}
    assert routing.metric('leadflow_duplicates_skipped_total{stage="route"}') >= 2


def test_lua_selection_is_the_reference_algorithm_and_atomic_state_is_consistent(routing_config, stack, stack_settings):
    """The Lua script against rules.select_reference on a mixed roster (account owner, rule
    pool with a default owner, round robin, capacity, fallback), plus replay, stale plans and
    release - on the real Redis, no worker needed."""
    import random

    import redis.asyncio as aioredis

    from agents.routing.roster_store import RosterStore, StalePlan
    from agents.routing.rules import plan
    from agents.routing.selection import select_reference

    roster = parse_roster(
        {
            "territories": [{"id": "emea", "countries": ["GB", "DE"]}],
            "reps": [
                rep("owner", capacity=2),
                rep("e1", capacity=3, territories=["emea"]),
                rep("e2", capacity=1, territories=["emea"]),
                rep("mgr", "manager", capacity=2, round_robin=False),
                rep("r1", capacity=4),
                rep("r2", capacity=2),
                rep("gone", active=False),
                {"id": "nurture-sequence", "name": "N", "role": "nurture"},
                {"id": "revops-triage", "name": "Q", "role": "queue"},
            ],
            "rules": [{"name": "emea", "match": {"territories": ["emea"]}, "default_owner": "mgr"}],
            "account_owners": {"owned.example.com": "owner"},
        },
        config=routing_config,
        now_ms=int(time.time() * 1000),
    )
    rng = random.Random(11)

    async def go():
        client = aioredis.Redis.from_url(stack_settings.redis_url)
        store = RosterStore(client, "t" + uuid.uuid4().hex[:10])
        try:
            version = await store.load(roster)
            open_leads, cursors, now = {}, {}, int(time.time() * 1000)
            for _ in range(40):
                record = mql(
                    domain=rng.choice(["owned.example.com", "corp.example.com"]), country=rng.choice(["GB", "US"])
                )
                p = plan(record, roster, routing_config, now_ms=now, roster_version=version)
                got = await store.assign(p, now_ms=now, ttl_s=60)
                want = select_reference(p, open_leads, cursors, lead_id=record["lead_id"], now_ms=now)
                assert (got.stage, got.rule, got.owner_id, got.evaluated) == (
                    want.stage,
                    want.rule,
                    want.owner_id,
                    want.evaluated,
                )
                again = await store.assign(p, now_ms=now + 1, ttl_s=60)  # redelivery: same decision, no counter moves
                assert again.replay and (again.owner_id, again.assigned_at_ms) == (got.owner_id, now)
            counts = await store.open_counts(list(roster.reps))
            assert counts == {r: len(open_leads.get(r, ())) for r in roster.reps}
            assert counts["gone"] == 0 and counts["e2"] <= 1 and counts["mgr"] <= 2
            await store.load(roster)  # live change: plans made from version 1 are refused...
            stale = plan(mql(), roster, routing_config, now_ms=now, roster_version=version)
            with pytest.raises(StalePlan):
                await store.assign(stale, now_ms=now, ttl_s=60)
            # ...unless told not to check
            unchecked = plan(mql(), roster, routing_config, now_ms=now, roster_version=-1)
            assert (await store.assign(unchecked, now_ms=now, ttl_s=60)).roster_version == version + 1
            owner = await store.release(unchecked.facts.lead_id)
            assert owner is not None and await store.release(unchecked.facts.lead_id) is None
            assert (await store.open_counts([owner]))[owner] == counts.get(owner, 0)
        finally:
            await client.aclose()

    asyncio.run(go())


def test_roster_cli_loads_and_shows_the_live_roster(stack, stack_settings, monkeypatch):
    from click.testing import CliRunner

    from leadflow.roster_cli import roster

    monkeypatch.setenv("LEADFLOW_REDIS_URL", stack_settings.redis_url)
    monkeypatch.setenv("LEADFLOW_REDIS_KEY_PREFIX", "t" + uuid.uuid4().hex[:10])
    runner = CliRunner()
    assert "no roster loaded" in runner.invoke(roster, ["show"]).output
    loaded = runner.invoke(roster, ["load", str(REPO_ROOT / "config" / "roster.yaml")])
    assert loaded.exit_code == 0 and "roster version 1" in loaded.output, loaded.output
    shown = runner.invoke(roster, ["show"])
    assert shown.exit_code == 0 and "roster version 1" in shown.output
    assert "ae-old" in shown.output and "inactive" in shown.output
    assert "version 2" in runner.invoke(roster, ["load", str(REPO_ROOT / "config" / "roster.yaml")]).output


# --- Redis outage ---------------------------------------------------------------------------


def test_redis_stopped_and_restarted_mid_stream_loses_nothing(stack, stack_settings, kafka, tmp_path):
    harness = RoutingHarness(stack_settings, tmp_path, redis_key_prefix="t" + uuid.uuid4().hex[:10])
    load_roster(harness, shared_roster())
    harness.start()
    try:
        first = [mql(country="FR") for _ in range(10)]
        publish_mqls(harness, first)
        assignments_for(kafka, harness, [r["lead_id"] for r in first], timeout=120)
        stack.redis.stop()
        try:
            during = [mql(country="FR") for _ in range(20)]
            publish_mqls(harness, during)
            # Hot leads through scoring too: the in-process fast path must leave them to the
            # routing agent (never stall scoring), which assigns them once Redis is back.
            hot = [f"hot{i}.{uuid.uuid4().hex[:6]}@acme-logistics.com" for i in range(3)]
            kafka.produce(harness.topics.form_submits, [as_json(form_submit(email)) for email in hot])
            kafka.produce(
                harness.topics.web_activity,
                [
                    as_json(activity)
                    for email in hot
                    for activity in (
                        web_activity(email=email),
                        web_activity(email=email, page_type="demo", url="https://example.com/demo"),
                    )
                ],
            )
            hot_leads = [lead_id_for_email(email) for email in hot]
            qualified = kafka.consume(
                harness.topics.mqls,
                until=lambda rs: {r["value"]["lead_id"] for r in rs} >= set(hot_leads),
                timeout=60,
            )
            # scored and qualified while Redis is down: scoring did not wait for it
            assert {r["value"]["lead_id"] for r in qualified} >= set(hot_leads), harness.logs()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and harness.metric("leadflow_redis_waiting") != 1.0:
                time.sleep(0.5)
            assert harness.metric("leadflow_redis_waiting") == 1.0, harness.logs()
            assert harness.metric("leadflow_redis_retries_total") >= 1
            assert "waiting for Redis" in harness.logs()
            time.sleep(3)  # several retries while down
        finally:
            stack.redis.start()
        after = [mql(country="FR") for _ in range(10)]
        publish_mqls(harness, after)
        everyone = first + during + after
        lead_ids = [r["lead_id"] for r in everyone] + hot_leads
        got = assignments_for(kafka, harness, lead_ids, timeout=120, settle=2.0)
        assert Counter(a["lead_id"] for a in got) == {lead: 1 for lead in lead_ids}, "each MQL assigned exactly once"
        assert harness.metric('leadflow_mqls_routed_in_process_total{outcome="deferred"}') >= len(hot_leads)
        counts = Counter(a["owner_id"] for a in got if a["lead_id"] not in hot_leads)
        assert max(counts.values()) - min(counts.values()) <= 1, counts  # cursors survived the restart
        assert harness.metric("leadflow_redis_waiting") == 0.0
    finally:
        harness.stop_all()


# --- restart and redelivery -----------------------------------------------------------------


def test_same_mql_after_restart_and_on_a_fresh_app_gives_the_same_assignment(stack, stack_settings, kafka, tmp_path):
    prefix = "t" + uuid.uuid4().hex[:10]
    harness = RoutingHarness(stack_settings, tmp_path / "a", redis_key_prefix=prefix)
    load_roster(harness, shared_roster())
    first_worker = harness.start()
    try:
        record = mql(country="FR")
        publish_mqls(harness, [record])
        [original] = assignments_for(kafka, harness, [record["lead_id"]], timeout=120)
        # kill -9, lose the local RocksDB, redeliver. If the table's changelog write made it
        # before the kill, the restored table skips the MQL; if not, Redis' idempotency key
        # gives the first decision back and the very same record is re-sent (at-least-once:
        # same event_id, owner and times). Either way: one assignment.
        harness.kill(first_worker)
        harness.wipe_local_state()
        harness.start()
        marker = mql(country="FR")
        publish_mqls(harness, [record, marker])
        got = assignments_for(kafka, harness, [record["lead_id"], marker["lead_id"]], timeout=120, settle=2.0)
        copies = [a for a in got if a["lead_id"] == record["lead_id"]]
        assert all(a == original for a in copies), "a redelivered MQL never yields a different assignment"
        assert [a["lead_id"] for a in got].count(marker["lead_id"]) == 1
    finally:
        harness.stop_all()
    # A different app (empty table, new topics) on the same Redis: the idempotency key
    # returns the first decision, so the record is the same assignment, not a second one.
    fresh = RoutingHarness(stack_settings, tmp_path / "b", redis_key_prefix=prefix)
    fresh.start()
    try:
        publish_mqls(fresh, [record])
        [again] = assignments_for(kafka, fresh, [record["lead_id"]], timeout=120)
        assert again == original, "the same assignment, field for field (audit and handoff included)"
        fair = [f"fair-{i}" for i in range(1, 5)]
        open_counts = _redis_call(fresh.settings, lambda s: s.open_counts(fair))
        assert sum(open_counts.values()) == 2, f"the lead and the marker, each counted once: {open_counts}"
    finally:
        fresh.stop_all()


def test_lead_type_never_sends_a_us_lead_to_emea_reps(stack, stack_settings, kafka, tmp_path):
    """The default roster without its North America rules: a US lead with pricing views and a
    demo form (typed demo_request, P1 -> AE) reaches the AEs serving North America through the
    territory step, not a round robin over every AE; the audit lists each rule tried, in order."""
    import yaml

    raw = yaml.safe_load((REPO_ROOT / "config" / "roster.yaml").read_text())
    raw["rules"] = [r for r in raw["rules"] if "na" not in r["match"].get("territories", [])]
    harness = RoutingHarness(stack_settings, tmp_path, redis_key_prefix="t" + uuid.uuid4().hex[:10])
    load_roster(harness, raw)
    harness.start()
    try:
        emails = [f"buyer{i}.{uuid.uuid4().hex[:6]}@initech-{i}.com" for i in range(4)]
        for email in emails:
            kafka.produce(
                harness.topics.web_activity, [as_json(web_activity(email=email)), as_json(web_activity(email=email))]
            )
            kafka.produce(harness.topics.form_submits, [as_json(form_submit(email, company_size=300))])
        got = assignments_for(kafka, harness, [lead_id_for_email(e) for e in emails], timeout=120)
        na_aes = {r["id"] for r in raw["reps"] if r["role"] == "AE" and "na" in r.get("territories", [])}
        for assignment in got:
            assert assignment["priority"] == "P1" and assignment["owner_role"] == "AE"
            assert assignment["rule"] == "territory:na" and assignment["owner_id"] in na_aes, assignment
            tried = [a["candidate"] for a in assignment["audit"] if a["candidate"].startswith("rule:")]
            assert tried == [f"rule:{r['name']}" for r in raw["rules"]], "every rule tried, in order"
    finally:
        harness.stop_all()


# --- worker entry point (see module docstring) -----------------------------------------------


def _run_worker() -> int:
    import logging

    import faust

    from leadflow.compose import create_app
    from leadflow.worker import prepare
    from streams.redis_client import wait_for_redis
    from streams.settings import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    pipeline = create_app(settings, message_limit=prepare(settings))
    pipeline.metrics.set_worker_info(app_id=settings.app_id)
    wait_for_redis(settings, pipeline.metrics)
    pipeline.metrics.serve(settings.metrics_port)
    worker = faust.Worker(pipeline.app, loglevel="info", quiet=True)
    worker.spinner = None  # as leadflow.worker does (the spinner puts the root logger at DEBUG)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(_run_worker())
