"""Erasure on request through real Kafka, Redis and a worker: a lead with email, name and
company reaches MQL, assignment and conversion (account registry entries in Redis); then
`leadflow forget EMAIL`. Keyed lead ids and suppress mode are on, so the same run checks that
the CLI derives the keyed id and that a later form for the email is suppressed.

How "nothing holds the person any more" is checked: every changelog topic is read from the
beginning to its end offsets and the *latest* record per key is compared (a tombstone for the
lead's and its visitor's keys, no email or name in any latest value), and the topics'
compaction settings are read back from the broker. A forced compaction was not used: the log
cleaner runs on its own schedule (backoff 15 s, only on rolled segments), so waiting for it
would make the test slow and flaky, while the latest-per-key view is exactly what compaction
converges to; ``max.compaction.lag.ms`` (checked here) bounds how long the old values survive.
"""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
import yaml

from agents.domain.identity import lead_id_for_email, visitor_key
from streams.settings import REPO_ROOT
from streams.topics import TABLE_NAMES
from tests.integration.conftest import WorkerHarness
from tests.integration.factories import as_json, form_submit, now_ms, web_activity
from tests.integration.test_routing import _redis_call, load_roster
from tests.integration.test_security import cli
from tests.integration.test_sla import metric

pytestmark = pytest.mark.integration


def _redis_dump(settings) -> dict[str, str]:
    """Every key under the harness's prefix -> its value(s) as text."""

    async def dump(store):
        client, out = store.client, {}
        async for raw_key in client.scan_iter(match=f"{settings.redis_key_prefix}:*"):
            key, kind = raw_key.decode(), (await client.type(raw_key)).decode()
            value = {
                "string": client.get,
                "set": client.smembers,
                "hash": client.hgetall,
                "list": lambda k: client.lrange(k, 0, -1),
                "zset": lambda k: client.zrange(k, 0, -1),
            }[kind]
            out[key] = repr(await value(raw_key))
        return out

    return _redis_call(settings, dump)


def _leftovers(kafka, harness, lead: str, visitor_key: bytes, personal: list[str]) -> list[str]:
    """What still holds the person: changelog keys not tombstoned, personal values, Redis keys."""
    problems = []
    for table in TABLE_NAMES:
        latest = kafka.latest_values(f"{harness.settings.app_id}-{table}-changelog")
        for key, value in latest.items():
            if key in (lead.encode(), visitor_key) and value is not None:
                problems.append(f"{table}: {key!r} is not tombstoned")
            text = (value or b"").decode("utf-8", "replace").lower()
            problems += [f"{table}: {key!r} holds {p!r}" for p in personal if p.lower() in text]
    for key, value in _redis_dump(harness.settings).items():
        problems += [f"redis {key} holds {p!r}" for p in [lead, *personal] if p.lower() in (key + value).lower()]
    return problems


def test_forget_erases_the_lead_from_every_table_changelog_and_redis_key(stack, kafka, stack_settings, tmp_path):
    uid = uuid.uuid4().hex[:8]
    harness = WorkerHarness(
        stack_settings,
        tmp_path,
        redis_key_prefix="t" + uid,
        erasure_mode="suppress",
        lead_id_key=f"it-key-{uuid.uuid4().hex}",
        internal_retention_hours=24,
    )
    load_roster(harness, yaml.safe_load((REPO_ROOT / "config" / "roster.yaml").read_text()))
    harness.start()
    try:
        names, email, visitor = harness.topics, f"zephyrine.{uid}@acme-logistics.com", f"vis-{uid}"
        first, last, company = "Zephyrine", f"Quillfeather{uid}", f"Quillco Freight {uid}"
        lead = lead_id_for_email(email, harness.settings.lead_id_key_bytes)
        assert lead != lead_id_for_email(email)  # keyed: not the id anyone could compute

        kafka.produce(
            names.web_activity,
            [  # an anonymous page (buffered, then linked) and known ones
                as_json(web_activity(visitor_id=visitor, page_type="product", url="https://example.com/product")),
                as_json(web_activity(email=email)),
                as_json(web_activity(email=email, page_type="demo", url="https://example.com/demo")),
            ],
        )
        kafka.produce(
            names.form_submits,
            [as_json(form_submit(email, visitor_id=visitor, first_name=first, last_name=last, company=company))],
        )
        assigned = kafka.consume(
            names.assignments,
            timeout=90,
            until=harness.watch(lambda rs: any(r["value"]["lead_id"] == lead for r in rs)),
        )
        assert any(r["value"]["lead_id"] == lead for r in assigned), harness.logs()
        kafka.produce(
            names.crm_status,
            [
                orjson.dumps(
                    {
                        "event_id": f"conv-{uid}",
                        "occurred_at": now_ms(),
                        "lead_id": lead,
                        "status": "converted",
                        "account_id": f"acc-{uid}",
                        "account_domain": "acme-logistics.com",
                    }
                )
            ],
        )
        kafka.consume(
            names.dispositions,
            timeout=30,
            until=harness.watch(
                lambda rs: any(r["value"]["lead_id"] == lead and r["value"]["status"] == "converted" for r in rs)
            ),
        )
        before = _redis_dump(harness.settings)
        assert any(lead in k for k in before) and any(company.lower() in v.lower() for v in before.values()), before

        result = cli(["forget", email], harness.env_overrides)
        assert result.returncode == 0, result.stderr.decode()
        assert lead in result.stdout.decode() and email not in (result.stdout + result.stderr).decode()

        erased = kafka.consume(names.erasures, timeout=30, decode=False, until=harness.watch(lambda rs: len(rs) >= 1))
        assert erased and email.encode() not in erased[0]["value"], harness.logs()
        [record] = [r["value"] for r in kafka.consume(names.erasures, timeout=5, until=lambda rs: len(rs) >= 1)]
        assert (record["lead_id"], record["found"], record["visitors_erased"], record["later_events"]) == (
            lead,
            True,
            1,
            "suppress",
        )

        personal = [email, first, last, company]
        deadline, problems = time.monotonic() + 30, ["not checked"]
        while problems and time.monotonic() < deadline:
            problems = _leftovers(kafka, harness, lead, visitor_key(visitor), personal)
            time.sleep(0.5 if problems else 0)
        assert not problems, "\n".join(problems) + harness.logs()
        visitors = kafka.latest_values(f"{harness.settings.app_id}-visitor_to_activity-changelog")
        assert visitors == {visitor_key(visitor): None}, visitors  # it existed, and is a tombstone now

        # Suppress mode: the same email later creates nothing (counted, not scored).
        kafka.produce(names.form_submits, [as_json(form_submit(email, first_name=first, last_name=last))])
        sample = 'leadflow_duplicates_skipped_total{stage="erased"}'
        deadline = time.monotonic() + 30
        while metric(harness.metrics_port, sample) < 1 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert metric(harness.metrics_port, sample) >= 1, harness.logs()
        assert kafka.latest_values(f"{harness.settings.app_id}-lead_to_state-changelog").get(lead.encode()) is None

        # Retention and compaction were set when the topics were created.
        assert kafka.topic_config(names.lead_events, "retention.ms") == str(24 * 3_600_000)
        assert kafka.topic_config(names.dead_letters, "retention.ms") == str(24 * 3_600_000)
        changelog = f"{harness.settings.app_id}-lead_to_state-changelog"
        assert kafka.topic_config(changelog, "cleanup.policy") == "compact"
        assert kafka.topic_config(changelog, "max.compaction.lag.ms") == str(24 * 3_600_000)
    finally:
        harness.stop_all()
