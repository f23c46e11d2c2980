"""Dashboards and alerts proven against a real Prometheus scraping two real workers.

Debian's ``prometheus`` (``leadflow.devstack.prometheus``) scrapes two ``leadflow worker``
processes of one app (one WorkerHarness, each process with its own metrics port) every
second and evaluates ``deploy/prometheus/alerts.yml`` every second. The test drives the whole
pipeline from its inputs - form submits and web activity that make MQLs (one fast-tracked
through an anonymous visitor, one no routing rule can take), bad records for dead letters,
a redelivered event, then CRM status events for the assigned leads: first touches,
acceptance, SQL, rejections with and without a disposition, and leads nobody touches so their
SLA breaches and escalates - in two identical waves, so that every counter series exists
before it is incremented again (``increase()`` cannot see the increment that creates a
series). Routing works from the shipped ``config/roster.yaml`` loaded into Redis;
``config/routing.yaml`` and ``config/sla.yaml`` are used with their durations scaled down to
seconds.

Then every PromQL expression of every panel target of every dashboard and every alert must
return data:

* panel expressions get Grafana's variables substituted (``$priority`` etc. = their "All"
  value ``.*``, ``$__rate_interval`` = 10s, ``$__range`` = the dashboard's own time range)
  and run as the panel runs them: a range query over the test's window (step 1 s) or an
  instant query when the target says ``instant``;
* alert expressions are checked through the *measured* expressions under their condition:
  each operand of ``and``/``or``/``unless`` with its threshold comparison removed
  (``sum by (reason) (increase(...[15m])) > 0`` -> ``sum by (reason) (increase(...[15m]))``)
  and ``absent(x)`` -> ``x``, each as an instant query. The conditions themselves are
  pinned by ``promtool test rules`` (alerts_test.yml); here the real server also reports
  every rule healthy, the SLA-breach and fallback alerts firing, the dead-letter-rate alert
  pending (it needs 10 minutes) and the worker, Redis and processing-error alerts silent.

"Returns data" means at least one series with a finite value: an empty result (a metric
nobody exports, a label value that never occurs) or NaN only (division by zero, quantile of
no observations) fails, naming the dashboard, the panel and the expression.

Aggregation across workers: ``sum(leadflow_events_in_total)`` equals the number of valid
input events published, both workers having counted some; ``up{job="leadflow"}`` is 1 for
both endpoints.

The two workers run a shadow model and serve the lead API, which the test calls through both
(one answers, one forwards), so the shadow and lead API panels have data too.

The demo's own traffic: ``leadflow demo`` (``run_demo``: its own worker, compressed SLAs,
roster, simulator and simulated reps, default rate and rep timing, a fixed seed) runs for 60 s
with Prometheus scraping its worker; then every panel expression of every dashboard must
return data over that minute (ratios finite), except those only an opt-in feature feeds
(``OPT_IN_METRICS``: the shadow model, the lead API's latency), and accepted, SQL, converted and
rejected-with-a-reason statuses must have been applied.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agents.domain.identity import lead_id_for_email
from leadflow.devstack.prometheus import PrometheusServer, grafana_to_promql, measured_exprs
from streams.settings import REPO_ROOT
from tests.integration.conftest import WorkerHarness, free_port
from tests.integration.factories import as_avro, as_json, form_submit, now_ms, web_activity

pytestmark = pytest.mark.integration

DASHBOARD_DIR = REPO_ROOT / "grafana" / "dashboards"
ALERTS_FILE = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
ROUTING_CONFIG = REPO_ROOT / "config" / "routing.yaml"
SLA_CONFIG = REPO_ROOT / "config" / "sla.yaml"
ROSTER = REPO_ROOT / "config" / "roster.yaml"

SLA_S = 4  # first-touch SLA of every priority in this test
ESCALATION_STEP_S = 2  # escalation tier n fires n * this after its anchor
RATE_INTERVAL = "10s"  # $__rate_interval: Grafana's max(step + scrape, 4 x scrape) with 1 s scrapes, rounded up
PARTITIONS = 2
WAVES = 2
HOT_LEADS = 6  # per wave; their CRM fate is HOT_FATES[i]
HOT_FATES = (
    "accepted_then_sql",
    "rejected_not_now",
    "rejected_not_icp",
    "rejected_without_reason",
    "untouched",
    "rejected_competitor",
)
ASSIGNMENT_WAIT_S = 25.0  # first wave: MQL -> assignment, including the workers' first fetches
DATA_WAIT_S = 40.0  # after the last wave: breaches, escalations, scrapes


# --- configuration for the workers ----------------------------------------------------------


def routing_config(tmp: Path) -> Path:
    """config/routing.yaml with every first-touch SLA set to SLA_S seconds, and without the
    global round robin: a lead outside every territory of the shipped roster then matches
    nothing and goes to the fallback owner (the roster has a rep for everyone otherwise)."""
    raw = yaml.safe_load(ROUTING_CONFIG.read_text())
    raw["round_robin"] = {"enabled": False}
    for rule in raw["priorities"].values():
        rule["first_touch_sla_minutes"] = SLA_S / 60
    for overrides in raw.get("segment_sla_overrides", {}).values():
        for priority in overrides:
            overrides[priority] = SLA_S / 60
    path = tmp / "routing.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    from agents.routing.config import load_routing_config

    load_routing_config(path)  # still valid
    return path


SCORING_MODEL = REPO_ROOT / "config" / "scoring-model.yaml"


def shadow_model(tmp: Path) -> Path:
    """A candidate scoring model for the shadow panels: the shipped one, MQL above 45 instead of
    50, under its own version."""
    raw = yaml.safe_load(SCORING_MODEL.read_text())
    raw["version"] = "observability-candidate"
    raw["thresholds"]["mql"] = 45
    raw["thresholds"]["mql_rearm_at"] = 45
    path = tmp / "candidate-model.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# Panels only an opt-in feature feeds: the shadow model (LEADFLOW_SHADOW_MODEL_PATH, off in the
# demo) and the lead API's latency (observed only when someone calls the API). The two-worker
# test turns both on and calls the API; the demo test leaves these panels out.
OPT_IN_METRICS = ("leadflow_shadow_decisions_total", "leadflow_api_request_seconds")


def sla_config(tmp: Path) -> Path | None:
    """config/sla.yaml with 1 s sweep buckets and escalation tiers ESCALATION_STEP_S apart
    past the deadline; None while the SLA capability has not shipped its config."""
    if not SLA_CONFIG.exists():
        return None
    raw = yaml.safe_load(SLA_CONFIG.read_text())
    raw.setdefault("sweep", {})["bucket_seconds"] = 1
    for spec in (raw.get("escalation") or {}).values():
        # Tiers counted from the assignment start after the deadline, as in the real file.
        offset = SLA_S if spec.get("from", "assigned") == "assigned" else 0
        for n, tier in enumerate(spec.get("tiers") or [], start=1):
            tier["after"] = f"{offset + n * ESCALATION_STEP_S}s"
    path = tmp / "sla.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    from agents.sla.config import load_sla_config

    load_sla_config(path)  # still valid
    return path


def load_roster(harness: WorkerHarness, routing_path: Path) -> None:
    """The shipped roster, validated against the (scaled) routing config, into Redis."""
    import redis.asyncio as aioredis

    from agents.routing.config import load_routing_config
    from agents.routing.roster import parse_roster
    from agents.routing.roster_store import RosterStore

    roster = parse_roster(
        yaml.safe_load(ROSTER.read_text()),
        config=load_routing_config(routing_path),
        now_ms=now_ms(),
        source=str(ROSTER),
    )

    async def go() -> None:
        client = aioredis.Redis.from_url(harness.settings.redis_url)
        try:
            await RosterStore(client, harness.settings.redis_key_prefix).load(roster, source="test_observability")
        finally:
            await client.aclose()

    asyncio.run(go())


# --- Kafka ----------------------------------------------------------------------------------


@dataclass
class Outbox:
    """Input records of one step, sent with one producer; counts what capture must accept."""

    messages: list[tuple[str, bytes | None, bytes, int | None]] = field(default_factory=list)
    valid: int = 0
    invalid: int = 0

    def add(
        self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None, valid: bool = True
    ) -> None:
        self.messages.append((topic, key, value, partition))
        if valid:
            self.valid += 1
        else:
            self.invalid += 1

    def send(self, bootstrap: str) -> None:
        from aiokafka import AIOKafkaProducer

        async def go() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
            await producer.start()
            try:
                for topic, key, value, partition in self.messages:
                    await producer.send(topic, value=value, key=key, partition=partition)
                await producer.flush()
            finally:
                await producer.stop()

        asyncio.run(go())


def icp_form(email: str, **fields: Any) -> dict[str, Any]:
    """A Director at a 500-person US software company requesting a demo (ICP, P1)."""
    defaults = dict(
        job_title="Director of Engineering", company_size=500, industry="software", country="US", utm_source="google"
    )
    defaults.update(fields)
    return form_submit(email, **defaults)


@dataclass
class Wave:
    number: int
    hot: list[str] = field(default_factory=list)  # emails, fates in HOT_FATES order
    fast: str = ""
    unroutable: str = ""


def publish_wave(harness: WorkerHarness, number: int) -> tuple[Wave, Outbox]:
    """MQL-making inputs, bad records and one redelivery; each partition gets some of each."""
    topics = harness.topics
    tag = uuid.uuid4().hex[:8]
    wave = Wave(number)
    out = Outbox()
    for i in range(HOT_LEADS):
        email = f"buyer{i}.{tag}@corp{i}-{tag}.com"
        wave.hot.append(email)
        key, part = email.encode(), i % PARTITIONS
        source = "google" if i % 2 == 0 else "linkedin"
        out.add(topics.web_activity, as_json(web_activity(email=email, page_type="pricing")), key=key, partition=part)
        form = as_avro("form_submitted", icp_form(email, utm_source=source))
        out.add(topics.form_submits, form, key=key, partition=part)
        if i == 0:  # redelivered by the publisher: counted by capture, skipped by scoring
            out.add(topics.form_submits, form, key=key, partition=part)

    # Fast track: research worth exactly the MQL threshold (50, not above) while no fit is
    # known; the demo request (fit and intent in one step: 90 at the crossing) follows in
    # follow_up(), once these are scored (topics are not ordered with each other).
    wave.fast = f"champion.{tag}@fast-{tag}.com"
    for page_type in ("pricing", "roi_calculator", "demo", "product", "docs"):
        out.add(
            topics.web_activity,
            as_json(web_activity(email=wave.fast, page_type=page_type, url=f"https://example.com/{page_type}")),
            key=wave.fast.encode(),
            partition=0,
        )

    # In the ICP but in no territory of the roster: no rule or rep takes it -> fallback owner.
    wave.unroutable = f"buyer.{tag}@far-{tag}.com"
    key = wave.unroutable.encode()
    out.add(
        topics.web_activity, as_json(web_activity(email=wave.unroutable, page_type="pricing")), key=key, partition=1
    )
    out.add(topics.form_submits, as_json(icp_form(wave.unroutable, country="BR")), key=key, partition=1)

    # Dead letters, a few reasons, on both partitions.
    bad = [
        (topics.form_submits, b"\x07not a leadflow record"),  # unknown_encoding
        (topics.form_submits, b'{"event_id": "x", "email": '),  # undecodable
        (topics.form_submits, as_json({k: v for k, v in icp_form(f"a.{tag}@b.com").items() if k != "email"})),
        (topics.form_submits, as_json(icp_form("not-an-email"))),  # invalid_email
        (topics.web_activity, as_json(web_activity(email=f"c.{tag}@d.com", occurred_at=now_ms() + 10 * 86_400_000))),
        (topics.crm_status, b"\x00\x00\x00\x03\xe7\x02"),  # unknown schema id
    ]
    for n, (topic, value) in enumerate(bad):
        out.add(topic, value, partition=n % PARTITIONS, valid=False)
    out.send(harness.settings.kafka_bootstrap)
    return wave, out


def crm(
    email: str, status: str, *, rep_id: str | None, disposition: str | None = None, touch_channel: str | None = None
) -> bytes:
    return as_json(
        {
            "event_id": "crm-" + uuid.uuid4().hex,
            "occurred_at": now_ms(),
            "email": email,
            "rep_id": rep_id,
            "status": status,
            "touch_channel": touch_channel,
            "disposition": disposition,
        }
    )


def crm_steps(fate: str, email: str, rep_id: str | None) -> list[bytes]:
    touch = crm(email, "first_touch", rep_id=rep_id, touch_channel="call")
    return {
        "accepted_then_sql": [touch, crm(email, "accepted", rep_id=rep_id), crm(email, "sql", rep_id=rep_id)],
        "rejected_not_now": [touch, crm(email, "rejected", rep_id=rep_id, disposition="not_now")],
        "rejected_not_icp": [touch, crm(email, "rejected", rep_id=rep_id, disposition="not_icp")],
        "rejected_without_reason": [touch, crm(email, "rejected", rep_id=rep_id)],
        "rejected_competitor": [touch, crm(email, "rejected", rep_id=rep_id, disposition="competitor")],
        "untouched": [],
    }[fate]


def follow_up(harness: WorkerHarness, wave: Wave, assignments: dict[str, dict]) -> Outbox:
    """After the wave's assignments: the fast-track demo request, and the CRM's word on each
    hot lead (sent by its owner), each lead's events in order on one partition."""
    out = Outbox()
    out.add(
        harness.topics.form_submits,
        as_json(icp_form(wave.fast, utm_source="linkedin")),
        key=wave.fast.encode(),
        partition=0,
    )
    for i, (email, fate) in enumerate(zip(wave.hot, HOT_FATES)):
        owner = assignments.get(lead_id_for_email(email), {}).get("owner_id")
        for value in crm_steps(fate, email, owner):
            out.add(harness.topics.crm_status, value, key=email.encode(), partition=i % PARTITIONS)
    return out


def wait_for_assignments(kafka, harness: WorkerHarness, lead_ids: set[str], timeout: float) -> dict[str, dict]:
    def mine(records):
        return {r["value"]["lead_id"]: r["value"] for r in records if r["value"]["lead_id"] in lead_ids}

    records = kafka.consume(
        harness.topics.assignments, until=harness.watch(lambda rs: len(mine(rs)) == len(lead_ids)), timeout=timeout
    )
    return mine(records)


# --- what the dashboards and alerts query ----------------------------------------------------


@dataclass(frozen=True)
class Check:
    where: str  # "speed-to-lead.json 'leadflow / Speed to lead' / panel 'Median ...' / A"
    expr: str  # as written in the file
    promql: str  # what is sent to Prometheus
    instant: bool


def _relative_range(dashboard: dict[str, Any]) -> str:
    match = re.fullmatch(r"now-(\d+[smhdw])", dashboard.get("time", {}).get("from", "now-24h"))
    return match.group(1) if match else "24h"


def dashboard_checks() -> Iterator[Check]:
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text())
        variables = {}
        for var in dashboard.get("templating", {}).get("list", []):
            all_value = var.get("allValue") or ".*"
            variables[var["name"]] = (
                all_value
                if (var.get("includeAll") or var.get("multi"))
                else str((var.get("current") or {}).get("value", all_value))
            )
        panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
        for panel in panels:
            for target in panel.get("targets", []):
                promql = grafana_to_promql(
                    target["expr"],
                    variables,
                    interval="1s",
                    rate_interval=RATE_INTERVAL,
                    range_=_relative_range(dashboard),
                )
                yield Check(
                    f"{path.name} {dashboard['title']!r} / panel {panel['title']!r} / {target['refId']}",
                    target["expr"],
                    promql,
                    bool(target.get("instant")) and not target.get("range", False),
                )


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for group in yaml.safe_load(ALERTS_FILE.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def alert_checks() -> Iterator[Check]:
    for rule in alert_rules():
        for part in measured_exprs(rule["expr"]):
            yield Check(
                f"alerts.yml alert {rule['alert']}", " ".join(rule["expr"].split()), " ".join(part.split()), True
            )


def _finite(value: str) -> bool:
    return math.isfinite(float(value))


def evaluate(prom: PrometheusServer, check: Check, start: float, end: float) -> str | None:
    """None when the expression returns data, else why not."""
    if check.instant:
        result = prom.query(check.promql, at=end)
        values = [s["value"][1] for s in result]
    else:
        result = prom.query_range(check.promql, start=start, end=end, step=1)
        values = [v for s in result for _, v in s["values"]]
    if not result:
        return "no series"
    if not any(_finite(v) for v in values):
        return f"only {sorted(set(values))} in {len(result)} series"
    return None


# --- the test -----------------------------------------------------------------------------


@pytest.fixture
def observed(stack, stack_settings, tmp_path):
    """Two workers of one app, each serving its own metrics port, and a Prometheus scraping both."""
    routing_path = routing_config(tmp_path)
    overrides: dict[str, object] = dict(
        redis_key_prefix="t" + uuid.uuid4().hex[:10],
        routing_config_path=routing_path,
        topic_partitions=PARTITIONS,
        sweep_bucket_s=1,
        sweep_interval_s=0.5,
        shadow_model_path=shadow_model(tmp_path),  # the shadow panels (funnel dashboard)
    )
    sla_path = sla_config(tmp_path)
    if sla_path is not None:
        overrides["sla_config_path"] = sla_path
    harness = WorkerHarness(stack_settings, tmp_path / "workers", api=True, **overrides)
    load_roster(harness, routing_path)
    prom = None
    try:
        harness.start()
        harness.start()
        assert len(set(harness.metrics_ports)) == 2 and harness.metrics_port == harness.metrics_ports[0]
        prom = PrometheusServer(
            free_port(),
            tmp_path / "prometheus",
            scrape_targets=[f"127.0.0.1:{port}" for port in harness.metrics_ports],
            tie_to_parent=True,
        )
        prom.start()
        yield harness, prom
    finally:
        harness.stop_all()
        if prom is not None:
            prom.stop()


def wait_for_stable_group(prom: PrometheusServer, harness: WorkerHarness, timeout: float = 45.0) -> None:
    """Both workers scraped and consuming: every input partition reported by exactly one of
    them (the lag gauge lists a worker's assigned partitions). Traffic sent before that could be
    processed twice across a rebalance (at-least-once), and the exact count below would not hold."""
    topics = harness.topics
    inputs = {topics.form_submits, topics.web_activity, topics.crm_status}
    expected = {(t, str(p)) for t in inputs for p in range(PARTITIONS)}
    deadline = time.monotonic() + timeout
    stable_since = None
    seen: Any = None
    while time.monotonic() < deadline:
        harness.watch(lambda _: False)([])  # a crashed worker fails here, with its log
        series = prom.query("leadflow_consumer_lag")
        owners: dict[tuple[str, str], list[str]] = {}
        for s in series:
            owners.setdefault((s["metric"]["topic"], s["metric"]["partition"]), []).append(s["metric"]["instance"])
        instances = {i for (t, _), who in owners.items() if t in inputs for i in who}
        seen = {k: v for k, v in owners.items() if k in expected}
        ok = set(seen) == expected and all(len(v) == 1 for v in seen.values()) and len(instances) == 2
        if ok:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= 2.0:
                return
        else:
            stable_since = None
        time.sleep(0.5)
    raise AssertionError(
        f"the two workers did not settle on the input partitions within {timeout:.0f}s: {seen}\n{harness.logs()}"
    )


def test_every_dashboard_panel_and_alert_returns_data(observed, kafka):
    harness, prom = observed
    began = time.monotonic()
    prom.wait_for_targets(2, timeout=45)
    wait_for_stable_group(prom, harness)
    window_start = time.time()
    timings = {"workers settled": time.monotonic() - began}

    valid = invalid = 0
    assigned_total = 0
    notes: list[str] = []
    for number in range(1, WAVES + 1):
        wave, out = publish_wave(harness, number)
        valid += out.valid
        invalid += out.invalid
        wanted = {lead_id_for_email(e) for e in (*wave.hot, wave.unroutable)}
        timeout = ASSIGNMENT_WAIT_S if number == 1 or assigned_total else 3.0
        assignments = wait_for_assignments(kafka, harness, wanted, timeout)
        assigned_total += len(assignments)
        if len(assignments) < len(wanted):
            notes.append(f"wave {number}: {len(assignments)} of {len(wanted)} leads assigned")
        later = follow_up(harness, wave, assignments)
        later.send(harness.settings.kafka_bootstrap)
        valid += later.valid
        if number < WAVES:
            time.sleep(2.0)  # a few scrapes between the waves

    # The lead API, through both workers (one answers, one forwards): the Lead API panels.
    asked = [lead_id_for_email(e) for e in wave.hot]
    for port in harness.api_ports[:2]:
        for lead_id in asked:
            status = httpx.get(f"http://127.0.0.1:{port}/leads/{lead_id}", timeout=10).status_code
            assert status in (200, 503), status
    timings["traffic sent"] = time.monotonic() - began
    checks = list(dashboard_checks()) + list(alert_checks())
    assert len(checks) > 60, "dashboards or alerts not found"
    failures: dict[Check, str] = {}
    deadline = time.monotonic() + DATA_WAIT_S
    while True:
        end = time.time()
        pending = list(failures) if failures else checks
        failures = {c: why for c in pending if (why := evaluate(prom, c, window_start, end))}
        if not failures or time.monotonic() >= deadline:
            break
        harness.watch(lambda _: False)([])
        time.sleep(1.0)
    timings["all data"] = time.monotonic() - began

    # Several workers aggregate: each counted part of the input, the sum is exact.
    total_deadline = time.monotonic() + 15
    while time.monotonic() < total_deadline and prom.query(f"sum(leadflow_events_in_total) >= {valid}") == []:
        time.sleep(0.5)
    time.sleep(2.0)  # an over-count (an event counted twice) would show up meanwhile
    per_worker = {
        s["metric"]["instance"]: float(s["value"][1])
        for s in prom.query('sum by (instance) (leadflow_events_in_total{job="leadflow"})')
    }
    total = prom.query("sum(leadflow_events_in_total)")
    dead = prom.query("sum(leadflow_dead_letters_total)")
    up = {s["metric"]["instance"]: s["value"][1] for s in prom.query('up{job="leadflow"}')}
    rules = prom.rules()
    alert_states = {r["name"]: r["state"] for r in rules if r["type"] == "alerting"}

    report = "\n".join(
        [f"{len(failures)} of {len(checks)} expressions return no data:"]
        + [f"  {c.where}\n      {c.promql}\n      -> {why}" for c, why in failures.items()]
        + [f"  note: {n}" for n in notes]
    )
    print(
        f"\n{len(checks) - len(failures)} of {len(checks)} dashboard/alert expressions returned data; "
        + ", ".join(f"{k} at {v:.1f}s" for k, v in timings.items())
    )
    assert not failures, report + "\n" + harness.counters()

    assert up == {f"127.0.0.1:{port}": "1" for port in harness.metrics_ports}, up
    assert len(per_worker) == 2 and all(v > 0 for v in per_worker.values()), per_worker
    assert float(total[0]["value"][1]) == valid, (total, valid, per_worker)
    assert float(dead[0]["value"][1]) == invalid, (dead, invalid)

    # The real server loaded and evaluated every rule of alerts.yml.
    assert {r["alert"] for r in alert_rules()} == set(alert_states)
    unhealthy = [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not unhealthy, unhealthy
    # Rules evaluate every second on the latest scrape: give the last breach/fallback a few
    # evaluations to turn into an alert (the panel checks above also pass on the 0-valued series).
    expected_firing = ("LeadflowP1SlaBreached", "LeadflowFallbackAssignments")
    firing_deadline = time.monotonic() + 20
    while time.monotonic() < firing_deadline and any(alert_states[a] != "firing" for a in expected_firing):
        time.sleep(1.0)
        alert_states = {r["name"]: r["state"] for r in prom.rules() if r["type"] == "alerting"}
    assert alert_states["LeadflowP1SlaBreached"] == "firing", (alert_states, harness.counters())
    assert alert_states["LeadflowFallbackAssignments"] == "firing", alert_states
    # 12 of ~75 records dead-lettered: above 5% and at least 10, held for its `for: 10m`.
    assert alert_states["LeadflowDeadLetterRateHigh"] == "pending", alert_states
    for quiet in ("LeadflowWorkerDown", "LeadflowNoWorkers", "LeadflowRedisWaiting", "LeadflowProcessingErrors"):
        assert alert_states[quiet] == "inactive", (quiet, alert_states)


# --- the demo's own traffic -----------------------------------------------------------------

DEMO_TRAFFIC_S = 60.0  # "after about 60 s of `leadflow demo` traffic"
DEMO_SEED = 11
# What the simulated reps must have done by then (CRM status -> at least this many applied).
DEMO_STATUSES = ("accepted", "sql", "converted", "rejected")


def test_every_dashboard_panel_returns_data_after_a_minute_of_demo_traffic(stack, stack_settings, tmp_path):
    """`leadflow demo` as a newcomer runs it (default rate, 60x compressed SLAs, its own worker,
    roster and simulated reps; only the seed fixed), with Prometheus scraping the worker: after
    DEMO_TRAFFIC_S of traffic every panel expression of every dashboard returns data, ratios
    included (acceptance, MQL -> SQL, disposition completeness, recycle rate), and the reps'
    accepted / SQL / converted / rejected-with-a-reason statuses were applied within that minute."""
    import io

    from rich.console import Console

    from leadflow.demo.options import DemoOptions
    from leadflow.demo.run import run_demo
    from streams.settings import load_settings

    metrics_port = free_port()
    settings = load_settings(**{**stack_settings.model_dump(), "metrics_port": metrics_port})
    prom = PrometheusServer(
        free_port(), tmp_path / "prometheus", scrape_targets=[f"127.0.0.1:{metrics_port}"], tie_to_parent=True
    )
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    marks: dict[str, float] = {}

    def say(message: str) -> None:
        console.print(message, markup=False, highlight=False)
        if message.startswith("seed "):  # said right before the traffic starts
            marks["traffic"] = time.time()
        elif message.startswith("stopping the worker"):  # the traffic has ended, the worker still runs
            marks["stopping"] = time.time()

    began = time.monotonic()
    try:
        prom.start()
        opts = DemoOptions(seed=DEMO_SEED, duration=DEMO_TRAFFIC_S, manage_stack=False, plain=True)
        summary = run_demo(settings, opts, console=console, say=say)
        ran = time.monotonic() - began
        assert "traffic" in marks and "stopping" in marks, out.getvalue()
        assert not summary.get("notes"), (summary["notes"], out.getvalue())
        start, end = marks["traffic"], marks["stopping"] - 1.5  # the last scrapes before the worker stops
        assert end - start >= DEMO_TRAFFIC_S - 3, (marks, summary)

        up = prom.query('up{job="leadflow"}', at=end)
        assert [s["value"][1] for s in up] == ["1"], (up, prom.log_tail())
        checks = [c for c in dashboard_checks() if not any(m in c.promql for m in OPT_IN_METRICS)]
        assert len(checks) > 50, "dashboards not found"
        failures = {c: why for c in checks if (why := evaluate(prom, c, start, end))}
        applied = {
            s["metric"]["status"]: float(s["value"][1])
            for s in prom.query(
                'sum by (status) (leadflow_dispositions_total{disposition!="none"} or '
                'leadflow_dispositions_total{status!="rejected"})',
                at=end,
            )
        }
        print(
            f"\n{len(checks) - len(failures)} of {len(checks)} dashboard expressions returned data after "
            f"{end - start:.0f}s of demo traffic (test {ran:.0f}s); statuses applied: {applied}; "
            f"demo: published {summary.get('published')}, MQLs {summary.get('mqls')}, "
            f"assigned {summary.get('assignments')}, CRM {summary.get('crm_events')}"
        )
        report = "\n".join(
            [f"{len(failures)} of {len(checks)} dashboard expressions return no data after a minute of demo traffic:"]
            + [f"  {c.where}\n      {c.promql}\n      -> {why}" for c, why in failures.items()]
        )
        assert not failures, report + "\n" + out.getvalue()[-4000:]
        missing = [s for s in DEMO_STATUSES if applied.get(s, 0) < 1]
        assert not missing, (
            f"no {missing} status applied within {DEMO_TRAFFIC_S:.0f}s of demo traffic",
            applied,
            summary,
        )
    finally:
        prom.stop()


def test_prometheus_server_scrapes_reloads_and_stops(tmp_path):
    """The managed server on its own (no Kafka needed): ready, scraping, rules loaded, a bad
    query named in the error, targets reloaded live, and nothing left after stop()."""
    from prometheus_client import CollectorRegistry, Counter, start_http_server

    from leadflow.devstack.base import process_group_members
    from leadflow.devstack.prometheus import PrometheusQueryError

    registry = CollectorRegistry()
    counter = Counter("leadflow_events_in", "test", ["kind", "encoding"], registry=registry)
    exporter, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    other, other_thread = start_http_server(0, addr="127.0.0.1", registry=CollectorRegistry())
    prom = PrometheusServer(
        free_port(), tmp_path, scrape_targets=[f"127.0.0.1:{exporter.server_port}"], tie_to_parent=True
    )
    try:
        assert prom.start() < 30
        assert prom.start() == pytest.approx(0, abs=1.0)  # idempotent: finds its own process
        prom.wait_for_targets(1, timeout=15)
        counter.labels(kind="form_submitted", encoding="json").inc(3)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not prom.query("sum(leadflow_events_in_total) == 3"):
            time.sleep(0.2)
        assert prom.query("sum(leadflow_events_in_total)")[0]["value"][1] == "3"
        assert prom.query("1 + 1")[0]["value"][1] == "2"  # scalar results come back as one sample
        assert {r["name"] for r in prom.rules()} == {r["alert"] for r in alert_rules()}
        with pytest.raises(PrometheusQueryError, match=r"sum\(leadflow"):
            prom.query("sum(leadflow_events_in_total")
        prom.set_targets([f"127.0.0.1:{exporter.server_port}", f"127.0.0.1:{other.server_port}"])
        assert len(prom.wait_for_targets(2, timeout=15)) == 2
    finally:
        pid = prom.process.running_pid()
        prom.stop()
        for server, server_thread in ((exporter, thread), (other, other_thread)):
            server.shutdown()
            server.server_close()
            server_thread.join(5)
    assert prom.process.running_pid() is None and not process_group_members(pid)
