"""`leadflow whatif` through real Kafka: a few inputs (framed Avro and JSON) on the input topics,
one lead erased; the command's JSON counts must be those the candidate's lower threshold gives,
and the replay must leave the broker as it found it (no new record on any topic, no consumer
group)."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest
import yaml

from agents.domain.erasure import erasure_request
from agents.domain.identity import lead_id_for_email
from streams.settings import load_settings
from streams.topics import TopicNames, ensure_topics
from tests.integration.factories import as_avro, as_json, form_submit, now_ms, web_activity
from tests.integration.test_security import cli
from tests.repo_config import default_raw

pytestmark = pytest.mark.integration


def _broker_state(kafka) -> tuple[dict, set]:
    """(end offset of every partition of every topic, consumer group ids)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def ends() -> dict:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=None)
        await consumer.start()
        try:
            topics = await consumer.topics()
            tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
            return await consumer.end_offsets(tps)
        finally:
            await consumer.stop()

    groups = kafka._admin(lambda admin: admin.list_consumer_groups())  # noqa: SLF001
    return asyncio.run(ends()), {group[0] for group in groups}


def test_whatif_replays_the_input_topics_and_writes_nothing(stack, stack_settings, kafka, tmp_path):
    prefix = "wif" + uuid.uuid4().hex[:8]
    settings = load_settings(kafka_bootstrap=stack_settings.kafka_bootstrap, topic_prefix=prefix)
    asyncio.run(ensure_topics(settings))
    names = TopicNames.from_settings(settings)
    run = uuid.uuid4().hex[:6]
    near, hot, gone = (f"{who}.{run}@acme-logistics.com" for who in ("near", "hot", "gone"))
    t = now_ms() - 60_000
    kafka.produce(
        names.form_submits,
        [
            as_avro("form_submitted", form_submit(near, occurred_at=t)),  # 35 points: MQL only above 30
            as_json(form_submit(hot, occurred_at=t + 1000)),
            as_avro("form_submitted", form_submit(gone, occurred_at=t + 2000)),
        ],
    )
    kafka.produce(
        names.web_activity,
        [
            as_json(web_activity(email=hot, occurred_at=t + 3000, page_type="pricing")),
            as_json(web_activity(email=hot, occurred_at=t + 4000, page_type="roi_calculator")),
            as_json(web_activity(email=gone, occurred_at=t + 5000, page_type="pricing")),
            as_json(web_activity(email=gone, occurred_at=t + 6000, page_type="roi_calculator")),
        ],
    )
    erase = erasure_request(lead_id_for_email(gone, None), requested_at_ms=t + 7000, event_id="erase-" + run)
    kafka.produce(names.crm_status, [as_json(erase)])

    raw = copy.deepcopy(default_raw("scoring-model.yaml"))
    raw["version"] = "candidate-30"
    raw["thresholds"].update(mql=30, mql_rearm_at=30)
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump(raw))
    start = (datetime.now(timezone.utc) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    env = {"kafka_bootstrap": stack_settings.kafka_bootstrap, "topic_prefix": prefix}

    before = _broker_state(kafka)
    result = cli(["whatif", "--model", str(candidate), "--from", start, "--json"], env, timeout=120)
    after = _broker_state(kafka)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    report = orjson.loads(result.stdout)
    assert report["inputs_read"] == 8
    assert report["events_replayed"] == 4  # near's form, hot's form and pages (not gone's, nor the request)
    assert report["erased_leads_skipped"] == 1
    assert (report["live"]["mqls"], report["candidate"]["mqls"]) == (1, 2)
    assert (report["mqls_gained"], report["mqls_lost"]) == (1, 0)
    assert report["candidate"]["priorities"]["P1"] == report["live"]["priorities"]["P1"] + 1
    assert sum(d["delta"] for d in report["rep_deltas"].values()) == 1
    assert after == before  # no topic got a record, no consumer group appeared

    table = cli(["whatif", "--model", str(candidate), "--from", start], env, timeout=120)
    text = table.stdout.decode()
    assert table.returncode == 0, text + table.stderr.decode()
    assert "read 8 input records, replayed 4 events" in " ".join(text.split())  # rich wraps lines
    assert "leads gained" in text
    for email in (near, hot, gone):
        assert email not in text and email not in result.stdout.decode()


def test_whatif_says_when_from_predates_the_retained_history(stack, stack_settings, kafka, tmp_path):
    """Retention deleting the oldest records is what ``delete_records`` does here: the replay
    starts at the earliest record left, and says so."""
    from aiokafka import TopicPartition
    from aiokafka.admin import RecordsToDelete

    prefix = "wir" + uuid.uuid4().hex[:8]
    settings = load_settings(kafka_bootstrap=stack_settings.kafka_bootstrap, topic_prefix=prefix)
    asyncio.run(ensure_topics(settings))
    names = TopicNames.from_settings(settings)
    run = uuid.uuid4().hex[:6]
    t = now_ms() - 60_000
    (old,) = kafka.produce(names.form_submits, [as_json(form_submit(f"old.{run}@acme-logistics.com", occurred_at=t))], key=b"k")  # fmt: skip
    tp = TopicPartition(names.form_submits, old.partition)
    kafka._admin(lambda admin: admin.delete_records({tp: RecordsToDelete(old.offset + 1)}))  # noqa: SLF001
    kafka.produce(names.form_submits, [as_json(form_submit(f"new.{run}@acme-logistics.com", occurred_at=t + 1000))], key=b"k")  # fmt: skip

    start = (datetime.now(timezone.utc) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    model = tmp_path / "same.yaml"
    model.write_text(yaml.safe_dump(default_raw("scoring-model.yaml")))
    env = {"kafka_bootstrap": stack_settings.kafka_bootstrap, "topic_prefix": prefix}
    result = cli(["whatif", "--model", str(model), "--from", start, "--json"], env, timeout=120)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    report = orjson.loads(result.stdout)
    assert report["inputs_read"] == 1  # the deleted record is gone
    (note,) = report["notes"]
    assert f"--from predates the retained history of {names.form_submits}" in note
