"""Dispositions through a real Kafka, Redis and worker: every rejection reason's path, a rejection
without a reason, a permanently excluded prospect submitting again, a recycled lead coming back,
and conversions attached to the existing account (never a duplicate).

One worker for the module (own topic and Redis key prefixes). The leads are made MQLs in one
batch (ICP director: pricing page + demo request), then the CRM statuses go out in one batch,
so the module costs one round trip per step rather than one per case.
"""

from __future__ import annotations

import time
import uuid

import pytest

from agents.domain.identity import lead_id_for_email
from tests.integration.conftest import WorkerHarness
from tests.integration.factories import as_json, form_submit, now_ms, web_activity
from tests.integration.kafkatools import KafkaTools

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
RUN = uuid.uuid4().hex[:8]
CASES = {
    "accepted": ("accepted", None),
    "sql": ("sql", None),
    "not_now": ("rejected", "not_now"),
    "no_response": ("rejected", "no_response"),
    "competitor": ("rejected", "competitor"),
    "bad_data": ("rejected", "bad_data"),
    "not_icp": ("rejected", "not_icp"),
    "already_customer": ("rejected", "already_customer"),
    "bot_or_test": ("rejected", "bot_or_test"),
    "missing": ("rejected", None),
}
EXPECTED = {  # case -> (outcome, new_stage, score_reset, checkpoint days)
    "accepted": ("accepted", "sal", False, []),
    "sql": ("sql", "sql", False, []),
    "not_now": ("recycled", "recycled", True, [30, 60, 90]),
    "no_response": ("recycled", "recycled", True, [30, 60, 90]),
    "competitor": ("recapture", "recycled", True, []),
    "bad_data": ("recycled", "recycled", True, []),
    "not_icp": ("disqualified", "disqualified", False, []),
    "already_customer": ("disqualified", "disqualified", False, []),
    "bot_or_test": ("disqualified", "disqualified", False, []),
}


def email_for(case: str) -> str:
    return f"{case.replace('_', '.')}.{RUN}@dsp{RUN}.io"


def buyer(email: str, **fields) -> dict:
    defaults = dict(job_title="Director of Engineering", company_size=500, industry="software", country="US")
    defaults.update(fields)
    return form_submit(email, **defaults)


def crm(lead_id: str, status: str, **fields) -> dict:
    record = {
        "event_id": "crm-" + uuid.uuid4().hex,
        "occurred_at": now_ms(),
        "lead_id": lead_id,
        "rep_id": "ae-ana",
        "status": status,
    }
    record.update(fields)
    return record


def values(records, lead_id):
    return [r["value"] for r in records if r["value"].get("lead_id") == lead_id]


@pytest.fixture(scope="module")
def kafka_module(stack, stack_settings) -> KafkaTools:
    return KafkaTools(stack_settings.kafka_bootstrap)


@pytest.fixture(scope="module")
def world(stack, stack_settings, tmp_path_factory, kafka_module):
    """The worker, with every case's lead made an MQL and then dispositioned."""
    kafka = kafka_module
    workers = WorkerHarness(stack_settings, tmp_path_factory.mktemp("dispositions"), redis_key_prefix=f"t{RUN}")
    workers.start()
    try:
        topics = workers.topics
        leads = {case: lead_id_for_email(email_for(case)) for case in CASES}
        kafka.produce(
            topics.web_activity, [as_json(web_activity(email=email_for(c), page_type="pricing")) for c in CASES]
        )
        kafka.produce(topics.form_submits, [as_json(buyer(email_for(c))) for c in CASES])
        mqls = kafka.consume(
            topics.mqls, timeout=120, until=workers.watch(lambda rs: all(values(rs, lead) for lead in leads.values()))
        )
        assert all(values(mqls, lead) for lead in leads.values()), workers.logs()
        crm_events = {}
        for case, (status, disposition) in CASES.items():
            crm_events[case] = crm(leads[case], status, disposition=disposition)
        kafka.produce(topics.crm_status, [as_json(e) for e in crm_events.values()])
        wanted = [leads[c] for c in EXPECTED]
        dispositions = kafka.consume(
            topics.dispositions, timeout=60, until=workers.watch(lambda rs: all(values(rs, lead) for lead in wanted))
        )
        issues = kafka.consume(
            topics.data_quality,
            timeout=30,
            until=workers.watch(lambda rs: values(rs, leads["missing"]) and values(rs, leads["bad_data"])),
        )
        yield {
            "workers": workers,
            "kafka": kafka,
            "leads": leads,
            "crm": crm_events,
            "dispositions": dispositions,
            "issues": issues,
        }
    finally:
        workers.stop_all()


@pytest.mark.parametrize("case", list(EXPECTED))
def test_each_disposition_path(world, case):
    lead, event = world["leads"][case], world["crm"][case]
    [record] = values(world["dispositions"], lead)
    outcome, stage, reset, days = EXPECTED[case]
    assert (record["outcome"], record["new_stage"], record["score_reset"]) == (outcome, stage, reset)
    assert record["status"] == CASES[case][0] and record["disposition"] == CASES[case][1]
    assert record["occurred_at"] == event["occurred_at"] and record["rep_id"] == "ae-ana"
    assert record["checkpoints"] == [event["occurred_at"] + d * DAY_MS for d in days]


def test_recycling_resets_the_score_visibly(world):
    kafka, workers, lead = world["kafka"], world["workers"], world["leads"]["not_now"]
    crm_id = world["crm"]["not_now"]["event_id"]
    scored = kafka.consume(
        workers.topics.lead_scored,
        timeout=30,
        until=workers.watch(lambda rs: any(v["cause_event_id"] == crm_id for v in values(rs, lead))),
    )
    [after] = [v for v in values(scored, lead) if v["cause_event_id"] == crm_id]
    assert after["stage"] == "recycled" and after["engagement_score"] == 0 and after["mql"] is False


def test_rejection_without_disposition_is_a_data_quality_issue_not_a_rejection(world):
    kafka, workers, lead = world["kafka"], world["workers"], world["leads"]["missing"]
    crm_id = world["crm"]["missing"]["event_id"]
    [issue] = values(world["issues"], lead)
    assert issue["issue_code"] == "rejection_without_disposition" and issue["source_event_id"] == crm_id
    assert "@" not in issue["detail"]
    assert values(world["dispositions"], lead) == []
    scored = kafka.consume(
        workers.topics.lead_scored,
        timeout=30,
        until=workers.watch(lambda rs: any(v["cause_event_id"] == crm_id for v in values(rs, lead))),
    )
    [after] = [v for v in values(scored, lead) if v["cause_event_id"] == crm_id]
    assert after["stage"] == "mql" and after["mql"] is True  # not treated as rejected


def test_bad_data_is_recycled_and_reported(world):
    [issue] = values(world["issues"], world["leads"]["bad_data"])
    assert issue["issue_code"] == "bad_contact_data"


def test_resubmission_after_permanent_disqualification_is_flagged_and_never_an_mql(world):
    kafka, workers, lead = world["kafka"], world["workers"], world["leads"]["not_icp"]
    topics = workers.topics
    again = buyer(email_for("not_icp"), form_kind="contact_sales")
    kafka.produce(topics.web_activity, [as_json(web_activity(email=email_for("not_icp"), page_type="pricing"))])
    kafka.produce(topics.form_submits, [as_json(again)])
    issues = kafka.consume(
        topics.data_quality,
        timeout=60,
        until=workers.watch(lambda rs: any(v["issue_code"] == "returning_rejected_prospect" for v in values(rs, lead))),
    )
    [flag] = [v for v in values(issues, lead) if v["issue_code"] == "returning_rejected_prospect"]
    assert flag["source_event_id"] == again["event_id"] and "not_icp" in flag["detail"]
    scored = kafka.consume(
        topics.lead_scored,
        timeout=30,
        until=workers.watch(lambda rs: any(v["cause_event_id"] == again["event_id"] for v in values(rs, lead))),
    )
    [after] = [v for v in values(scored, lead) if v["cause_event_id"] == again["event_id"]]
    assert after["stage"] == "disqualified" and after["mql"] is False
    time.sleep(1.0)
    mqls = kafka.consume(topics.mqls, timeout=3, until=lambda rs: False)
    assert [v["mql_number"] for v in values(mqls, lead)] == [1]  # only the original MQL


def test_recycled_lead_that_comes_back_is_the_same_lead_qualifying_again(world):
    kafka, workers, lead = world["kafka"], world["workers"], world["leads"]["no_response"]
    topics = workers.topics
    kafka.produce(topics.web_activity, [as_json(web_activity(email=email_for("no_response"), page_type="pricing"))])
    kafka.produce(topics.form_submits, [as_json(buyer(email_for("no_response")))])
    mqls = kafka.consume(topics.mqls, timeout=60, until=workers.watch(lambda rs: len(values(rs, lead)) >= 2))
    assert [v["mql_number"] for v in values(mqls, lead)] == [1, 2], workers.logs()


def test_conversion_attaches_to_the_existing_account_never_a_duplicate(world):
    kafka, workers = world["kafka"], world["workers"]
    topics = workers.topics
    domain, other = f"northwind{RUN}.com", f"northwind{RUN}-group.com"
    people = {
        "first": (f"ann@{domain}", f"Northwind {RUN} Inc."),
        "dup": (f"bob@{domain}", f"Northwind {RUN}"),
        "noid": (f"cy@{domain}", None),
        "byname": (f"dee@{other}", f"NORTHWIND {RUN}, INC"),
    }
    ids = {k: lead_id_for_email(email) for k, (email, _) in people.items()}
    kafka.produce(
        topics.form_submits,
        [as_json(buyer(email, company=company, form_kind="newsletter")) for email, company in people.values()],
    )
    kafka.consume(
        topics.lead_scored, timeout=60, until=workers.watch(lambda rs: all(values(rs, i) for i in ids.values()))
    )
    # The first conversion creates the account for the domain...
    first = crm(ids["first"], "converted", account_id=f"acc-{RUN}", account_domain=f"https://www.{domain}/")
    kafka.produce(topics.crm_status, [as_json(first)])
    out = kafka.consume(topics.dispositions, timeout=60, until=workers.watch(lambda rs: values(rs, ids["first"])))
    [rec] = values(out, ids["first"])
    assert (rec["outcome"], rec["new_stage"], rec["account_id"], rec["account_domain"]) == (
        "converted",
        "opportunity",
        f"acc-{RUN}",
        domain,
    )
    # ...later conversions at the same company attach to it, whatever the CRM proposed.
    later = {
        "dup": crm(ids["dup"], "converted", account_id=f"acc-dup-{RUN}"),
        "noid": crm(ids["noid"], "converted"),
        "byname": crm(ids["byname"], "converted", account_id=f"acc-other-{RUN}"),
    }
    kafka.produce(topics.crm_status, [as_json(e) for e in later.values()])
    out = kafka.consume(
        topics.dispositions, timeout=60, until=workers.watch(lambda rs: all(values(rs, ids[k]) for k in later))
    )
    for key in later:
        [rec] = values(out, ids[key])
        assert rec["account_id"] == f"acc-{RUN}", (key, rec)
        assert rec["outcome"] == "converted" and rec["new_stage"] == "opportunity"
    issues = kafka.consume(
        topics.data_quality,
        timeout=30,
        until=workers.watch(lambda rs: values(rs, ids["dup"]) and values(rs, ids["byname"])),
    )
    [dup] = values(issues, ids["dup"])
    assert dup["issue_code"] == "duplicate_account_prevented" and f"acc-dup-{RUN}" in dup["detail"]
    [byname] = values(issues, ids["byname"])
    assert byname["issue_code"] == "duplicate_account_prevented" and "company name" in byname["detail"]
    assert values(issues, ids["noid"]) == [] and values(issues, ids["first"]) == []
