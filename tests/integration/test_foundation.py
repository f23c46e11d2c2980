"""Foundation: end-to-end slice, dead letters, redelivery and crash recovery through a real
Kafka + Redis and real worker processes."""

from __future__ import annotations

import time
import urllib.request

import orjson
import pytest

from agents.domain.identity import lead_id_for_email
from agents.scoring.state_codec import decode_state
from tests.integration.conftest import WorkerHarness
from tests.integration.factories import as_avro, as_json, form_submit, web_activity

pytestmark = pytest.mark.integration


def _latest_by_lead(records):
    latest = {}
    for r in records:
        latest[r["value"]["lead_id"]] = r["value"]
    return latest


def test_form_submit_yields_lead_state_event(workers, kafka):
    workers.start()
    topics = workers.topics
    email_json, email_avro = "dana.reyes@acme-logistics.com", "li.wei@northwind.io"
    kafka.produce(
        topics.form_submits, [as_json(form_submit(email_json)), as_avro("form_submitted", form_submit(email_avro))]
    )
    wanted = {lead_id_for_email(email_json), lead_id_for_email(email_avro)}
    out = kafka.consume(
        topics.lead_scored, until=workers.watch(lambda rs: wanted <= {r["value"]["lead_id"] for r in rs}), timeout=90
    )
    got = _latest_by_lead(out)
    assert wanted <= set(got), workers.logs()
    for lead_id in wanted:
        scored = got[lead_id]
        assert scored["event_count"] == 1
        assert scored["cause_kind"] == "form_submitted"
        assert scored["model_version"]
        assert scored["breakdown"], "a scored event explains its score"
    # Keyed by lead: the Kafka key is the lead id, not the email.
    assert {r["key"].decode() for r in out} <= {lead_id_for_email(email_json), lead_id_for_email(email_avro)}


BAD_INPUTS = {
    "undecodable": b'{"event_id": "cut-off", "email": "trunc',
    "unknown_encoding": b"\xff\xfe<xml>lead</xml>",
    "missing_field": orjson.dumps({k: v for k, v in form_submit("x@acme.com").items() if k != "email"}),
    "invalid_email": as_json(form_submit("not-an-email")),
    "invalid_value": as_json(form_submit("neg@acme.com", company_size=-5)),
    "unknown_kind": as_json(form_submit("kind@acme.com", form_kind="carrier_pigeon")),
    "timestamp_out_of_range": as_json(
        form_submit("old@acme.com", occurred_at=int((time.time() - 20 * 365 * 86400) * 1000))
    ),
    "schema_invalid": as_json(form_submit("type@acme.com", company_size="lots")),
    "too_large": as_json(form_submit("big@acme.com", company="x" * (3 * 1024 * 1024))),
}


def test_bad_input_goes_to_dead_letters_and_stream_keeps_flowing(workers, kafka):
    workers.start()
    topics = workers.topics
    # One partition key so all of it lands in one partition: the good event behind the bad
    # ones proves the partition was not blocked.
    bad = list(BAD_INPUTS.items())
    good_email = "after.the.bad@acme-logistics.com"
    kafka.produce(topics.form_submits, [raw for _, raw in bad] + [as_json(form_submit(good_email))], key=b"same")

    dead = kafka.consume(topics.dead_letters, until=workers.watch(lambda rs: len(rs) >= len(bad)), timeout=90)
    assert len(dead) == len(bad), workers.logs()
    by_original = {d["value"]["original"]: d["value"] for d in dead}
    for expected_reason, raw in bad:
        letter = by_original[raw]
        assert letter["reason_code"] == expected_reason, letter["reason"]
        assert letter["source_topic"] == topics.form_submits
        assert letter["source_offset"] >= 0 and letter["source_partition"] >= 0
        assert letter["reason"] and "@" not in letter["reason"], "readable reason, no email in it"

    good = kafka.consume(
        topics.lead_scored,
        until=workers.watch(lambda rs: any(r["value"]["lead_id"] == lead_id_for_email(good_email) for r in rs)),
        timeout=60,
    )
    assert any(r["value"]["lead_id"] == lead_id_for_email(good_email) for r in good)

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{workers.metrics_port}/metrics", timeout=5).read().decode()
    for reason, _ in bad:
        assert f'leadflow_dead_letters_total{{reason="{reason}"}} 1.0' in metrics, reason
    assert good_email not in metrics


def test_redelivered_event_is_counted_once(workers, kafka):
    workers.start()
    topics = workers.topics
    email = "twice@acme-logistics.com"
    submit = as_json(form_submit(email, event_id="ev-fixed-1"))
    page = as_json(web_activity(email=email, event_id="ev-fixed-2"))
    kafka.produce(topics.form_submits, [submit, submit])
    kafka.produce(topics.web_activity, [page, page, page])
    marker = "marker@acme-logistics.com"  # processed after the duplicates (same worker)
    kafka.produce(topics.web_activity, [as_json(web_activity(email=marker))])
    out = kafka.consume(
        topics.lead_scored,
        until=workers.watch(
            lambda rs: (
                {lead_id_for_email(email), lead_id_for_email(marker)} <= {r["value"]["lead_id"] for r in rs}
                and sum(r["value"]["lead_id"] == lead_id_for_email(email) for r in rs) >= 2
            )
        ),
        timeout=90,
    )
    time.sleep(2)  # give any (wrong) extra output the chance to show up
    out = kafka.consume(topics.lead_scored, until=workers.watch(lambda rs: False), timeout=3)
    mine = [r["value"] for r in out if r["value"]["lead_id"] == lead_id_for_email(email)]
    assert [m["event_count"] for m in mine] == [1, 2], workers.logs()


def test_kill9_mid_stream_keeps_state_without_loss_or_double_count(workers, kafka):
    _kill9_mid_stream(workers, kafka)


def test_kill9_mid_stream_with_write_behind_state_keeps_every_count(stack, stack_settings, tmp_path, kafka):
    """The same with lead states held until each commit (streams/write_behind.py, opt-in)."""
    workers = WorkerHarness(stack_settings, tmp_path, state_write_behind_keys=10_000)
    try:
        _kill9_mid_stream(workers, kafka)
    finally:
        workers.stop_all()


def _kill9_mid_stream(workers, kafka):
    topics = workers.topics
    leads = [f"crash{n}@acme-logistics.com" for n in range(8)]
    per_lead = 40
    batches = [
        [as_json(web_activity(email=email, page_type="blog", url=f"https://example.com/blog/{i}")) for email in leads]
        for i in range(per_lead)
    ]
    first = workers.start()
    half = per_lead // 2
    kafka.produce(topics.web_activity, [m for batch in batches[:half] for m in batch])
    # Wait until the worker is visibly mid-stream, then kill it without warning.
    kafka.consume(topics.lead_scored, until=workers.watch(lambda rs: len(rs) >= 20), timeout=90)
    workers.kill(first)
    time.sleep(0.5)
    kafka.produce(topics.web_activity, [m for batch in batches[half:] for m in batch])
    # New machine: no local RocksDB files, state must come back from the changelog topic.
    workers.wipe_local_state()
    workers.start()
    expected = {lead_id_for_email(e): per_lead for e in leads}

    def complete(rs):
        latest = _latest_by_lead(rs)
        return all(latest.get(k, {}).get("event_count") == v for k, v in expected.items())

    out = kafka.consume(topics.lead_scored, until=complete, timeout=150)
    latest = _latest_by_lead(out)
    assert {k: latest.get(k, {}).get("event_count") for k in expected} == expected, workers.logs()
    assert max(r["value"]["event_count"] for r in out) == per_lead, "no lead counted an event twice"


def test_local_stores_are_rebuilt_after_a_crash_and_reused_after_a_clean_stop(workers, kafka):
    """A store left by kill -9 may be ahead of Kafka (streams/local_state.py): the next worker
    rebuilds it from the changelogs; after a SIGTERM the store is reused. State survives both."""
    topics = workers.topics
    email = "rebuild@acme-logistics.com"
    lead_id = lead_id_for_email(email)

    def visit(i):
        kafka.produce(
            topics.web_activity,
            [as_json(web_activity(email=email, page_type="blog", url=f"https://example.com/blog/r{i}"))],
        )

    def counted(n):
        def done(rs):
            return any(r["value"]["lead_id"] == lead_id and r["value"]["event_count"] == n for r in rs)

        out = kafka.consume(topics.lead_scored, until=workers.watch(done), timeout=120)
        assert done(out), workers.logs()

    first = workers.start()
    visit(1)
    counted(1)
    workers.kill(first)
    second = workers.start()
    visit(2)
    counted(2)
    assert "did not stop cleanly: local table stores discarded" in second.log_tail(400), workers.logs()
    second.stop(timeout=30)
    workers.killed.add(second.name)  # stopped on purpose: not an unexpected exit
    third = workers.start()
    visit(3)
    counted(3)
    assert "did not stop cleanly" not in third.log_tail(400), workers.logs()


@pytest.mark.parametrize("held_keys", [10_000, 0], ids=["write-behind", "write-through"])
def test_a_burst_of_one_leads_events_writes_its_state_once_per_commit_with_write_behind(
    stack, stack_settings, tmp_path, kafka, held_keys
):
    """streams/write_behind.py (LEADFLOW_STATE_WRITE_BEHIND_KEYS): a lead's state is written to
    the changelog at the offset commit, once per key, not once per event; write-through (the
    default) sends one record per event."""
    workers = WorkerHarness(stack_settings, tmp_path, state_write_behind_keys=held_keys)
    try:
        _burst_of_one_lead(workers, kafka, write_behind=held_keys > 0)
    finally:
        workers.stop_all()


def _burst_of_one_lead(workers, kafka, *, write_behind):
    topics = workers.topics
    email = "burst@acme-logistics.com"
    lead_id = lead_id_for_email(email)
    events = 30
    workers.start()
    kafka.produce(
        topics.web_activity,
        [
            as_json(web_activity(email=email, page_type="blog", url=f"https://example.com/blog/burst{i}"))
            for i in range(events)
        ],
    )
    changelog = f"{workers.settings.app_id}-lead_to_state-changelog"

    def all_counted(rs):
        return any(r["key"] == lead_id.encode() and decode_state(r["value"]).event_count == events for r in rs)

    records = kafka.consume(changelog, until=workers.watch(all_counted), timeout=120, decode=False)
    assert all_counted(records), workers.logs()
    written = [r for r in records if r["key"] == lead_id.encode()]
    counts = [decode_state(r["value"]).event_count for r in written]
    if write_behind:  # the 30 events arrive in one batch and take well under a second; commits every 0.5 s
        assert 1 <= len(written) <= 6, counts
    else:
        assert len(counts) >= events and sorted(set(counts)) == list(range(1, events + 1)), counts
    assert counts[-1] == events
