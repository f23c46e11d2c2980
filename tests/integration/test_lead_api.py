"""The lead API through real Kafka, Redis and two worker processes: any worker answers for every
lead (the one that does not own the lead's partition forwards to the one that does), by lead id
or by email (hashed on the server), behind a bearer token; `leadflow explain` prints it in words."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import orjson
import pytest

from agents.domain.erasure import erasure_request
from agents.domain.identity import lead_id_for_email
from streams.settings import REPO_ROOT
from tests.integration.conftest import WorkerHarness
from tests.integration.factories import as_json, form_submit, web_activity

pytestmark = pytest.mark.integration

TOKEN = "api-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=AUTH if headers is None else headers, timeout=10)


def _forwarded(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("leadflow_api_requests_total{") and 'served="forwarded"' in line and 'status="200"' in line
    )


def test_any_worker_answers_for_every_lead_by_id_or_email(stack, stack_settings, tmp_path, kafka):
    workers = WorkerHarness(stack_settings, tmp_path, api=True, api_token=TOKEN)
    try:
        _scenario(workers, kafka)
    finally:
        workers.stop_all()


def _scenario(workers: WorkerHarness, kafka) -> None:
    topics = workers.topics
    emails = [f"api.buyer{i}@acme-software.com" for i in range(8)]
    leads = {lead_id_for_email(e): e for e in emails}
    first = workers.start()
    buyer = dict(job_title="Director of Engineering", company_size=500, industry="software", country="US")
    kafka.produce(topics.web_activity, [as_json(web_activity(email=e, page_type="pricing")) for e in emails])
    kafka.produce(topics.form_submits, [as_json(form_submit(e, **buyer)) for e in emails])
    kafka.consume(
        topics.assignments,
        until=workers.watch(lambda rs: set(leads) <= {r["value"]["lead_id"] for r in rs}),
        timeout=90,
    )
    second = workers.start()
    ports = [workers.api_port_of(first), workers.api_port_of(second)]
    metrics_ports = [workers.metrics_port_of(first), workers.metrics_port_of(second)]

    # Both workers answer 200 for every lead once the second one holds a partition of its own.
    deadline, answers = time.monotonic() + 120, {}
    while time.monotonic() < deadline:
        try:
            answers = {(lead, port): _get(port, f"/leads/{lead}") for lead in leads for port in ports}
        except httpx.TransportError:  # the second worker's web server is not listening yet
            time.sleep(1)
            continue
        if all(r.status_code == 200 for r in answers.values()) and all(_forwarded(p) > 0 for p in metrics_ports):
            break
        assert all(r.status_code in (200, 503) for r in answers.values()), {
            k: (r.status_code, r.text) for k, r in answers.items() if r.status_code not in (200, 503)
        }
        time.sleep(1)
    assert all(r.status_code == 200 for r in answers.values()), workers.logs()
    assert all(_forwarded(p) > 0 for p in metrics_ports), "each worker forwarded to the other at least once"
    for lead in leads:
        one, other = (answers[(lead, p)].json() for p in ports)
        assert one["lead_id"] == other["lead_id"] == lead
        assert one["stage"] == other["stage"] == "mql"
        assert one["owner"]["owner_id"] == other["owner"]["owner_id"] and one["owner"]["rule"]
        assert one["sla"]["first_touch_due_at"] > one["owner"]["assigned_at"]
        signals = {item["signal"] for item in one["score"]["breakdown"]}
        assert {"contact_request", "pricing_page_visit"} <= signals, signals
        total = sum(item["points"] for item in one["score"]["breakdown"])
        assert abs(total - one["score"]["value"]) < 0.05, "the breakdown adds up to the score"
        assert one["mql"]["history"][0]["mql_number"] == 1
        assert one["sources"]["first_touch"] is not None
        assert "@" not in answers[(lead, ports[0])].text, "no email in the answer"

    # By email: a POST body, hashed on the server, answered through either worker.
    email = emails[0]
    for port in ports:
        found = httpx.post(f"http://127.0.0.1:{port}/leads/lookup", json={"email": email}, headers=AUTH, timeout=10)
        assert found.status_code == 200 and found.json()["lead_id"] == lead_id_for_email(email), found.text

    # Refusals: no token, wrong token, malformed id, unknown lead, bad lookup body.
    assert _get(ports[0], f"/leads/{next(iter(leads))}", headers={}).status_code == 401
    assert _get(ports[0], f"/leads/{next(iter(leads))}", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert _get(ports[1], "/leads/not-a-lead-id").status_code == 400
    assert _get(ports[1], f"/leads/{lead_id_for_email('nobody@nowhere-at-all.com')}").status_code == 404
    bad = httpx.post(f"http://127.0.0.1:{ports[0]}/leads/lookup", content=b"not json", headers=AUTH, timeout=10)
    assert bad.status_code == 400 and "email" in bad.json()["error"]
    # Faust's own views (raw table contents) are off.
    assert _get(ports[0], "/table/lead_to_state/").status_code == 404

    # `leadflow explain EMAIL` through the worker that may not own the lead.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {"LEADFLOW_API_URL": f"http://127.0.0.1:{ports[1]}", "LEADFLOW_API_TOKEN": TOKEN}
    out = subprocess.run(
        [sys.executable, "-m", "leadflow.cli", "explain", email],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert f"Lead {lead_id_for_email(email)}: stage mql" in out.stdout
    assert "contact request 20" in out.stdout and "pricing page visit 15" in out.stdout, out.stdout
    assert "Owner:" in out.stdout and "SLA: first touch" in out.stdout
    assert email not in out.stdout + out.stderr

    # Erased: the lead is unknown to every worker.
    erased = lead_id_for_email(email)
    request = erasure_request(erased, requested_at_ms=int(time.time() * 1000), event_id="erasure-api-test")
    kafka.produce(topics.crm_status, [orjson.dumps(request)], key=erased.encode())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and {_get(p, f"/leads/{erased}").status_code for p in ports} != {404}:
        time.sleep(0.5)
    assert {_get(p, f"/leads/{erased}").status_code for p in ports} == {404}, workers.logs()

    # The email never reached a worker's log.
    assert not any(email in p.log_tail(5000) for p in workers.processes)
