"""Dead letters are never lost: one at the broker's size limit arrives truncated with its size
and SHA-256, and one the broker refuses blocks its partition (offset not committed) until the
dead-letter topic accepts it, then arrives exactly once."""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.request

from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.util import size_of_varint

from streams.topics import message_limit
from tests.integration.conftest import WorkerHarness

# DefaultRecordBatch v2 framing of a one-record batch without headers: the 61-byte batch header,
# then the record's attributes, offset delta 0 and timestamp delta 0 (one byte each), key and
# value each prefixed by its length, and the header count.
_BATCH_HEADER = 61


def batch_bytes(key: bytes, value_len: int) -> int:
    """What the broker compares with max.message.bytes for one record sent alone."""
    body = 3 + size_of_varint(len(key)) + len(key) + size_of_varint(value_len) + value_len + size_of_varint(0)
    return _BATCH_HEADER + size_of_varint(body) + body


def _largest_value(key: bytes, limit: int) -> int:
    value_len = limit - _BATCH_HEADER
    while batch_bytes(key, value_len) > limit:
        value_len -= 1
    return value_len


def _failures(harness: WorkerHarness) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{harness.metrics_port}/metrics", timeout=5).read().decode()
    line = next(line for line in text.splitlines() if line.startswith("leadflow_dead_letter_delivery_failures_total "))
    return float(line.rsplit(" ", 1)[1])


def _wait(what: str, condition, harness: WorkerHarness, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{harness.logs()}"
        for process in harness.processes:
            assert process.running_pid() is not None, f"{process.name} exited\n{harness.logs()}"
        time.sleep(0.2)


def test_inputs_at_the_broker_limit_reach_the_dlq_truncated_with_size_and_digest(
    stack, stack_settings, kafka, tmp_path
):
    harness = WorkerHarness(stack_settings, tmp_path)
    topics = harness.topics
    try:
        harness.start()
        limit = asyncio.run(message_limit(harness.settings, [topics.form_submits]))
        key = b"fuzz-lead"
        exact = _largest_value(key, limit)
        assert batch_bytes(key, exact) == limit, "the record fills the broker's limit to the byte"
        values = [b"{" + b"x" * (exact - 1), b"{" + b"y" * exact, b"{" + b"z" * (limit - 200 - 1)]
        results = kafka.produce(topics.form_submits, values, key=key, max_request_size=2 * limit)
        assert not isinstance(results[0], Exception), results[0]
        assert isinstance(results[1], MessageSizeTooLargeError), "one byte more is refused by the broker"
        assert not isinstance(results[2], Exception), results[2]
        accepted = [values[0], values[2]]

        dead = kafka.consume(topics.dead_letters, until=harness.watch(lambda rs: len(rs) >= 2), timeout=90)
        assert len(dead) == 2, harness.logs()
        for record, original in zip(sorted(dead, key=lambda r: r["value"]["source_offset"]), accepted):
            letter = record["value"]
            assert letter["reason_code"] == "too_large"
            assert letter["truncated"] is True
            assert letter["original_size"] == len(original)
            assert letter["original_sha256"] == hashlib.sha256(original).hexdigest()
            # All it can keep: the limit less the margin and the record's other fields (< 1 KiB).
            kept = len(letter["original"])
            assert original.startswith(letter["original"])
            assert limit - harness.settings.dead_letter_margin_bytes - 1024 < kept < len(original)
            assert letter["source_key"] == key and record["key"] == key
    finally:
        harness.stop_all()


def test_a_refused_dead_letter_blocks_its_partition_until_delivered_exactly_once(
    stack, stack_settings, kafka, tmp_path
):
    harness = WorkerHarness(stack_settings, tmp_path, dead_letter_retry_initial_s=0.2, dead_letter_retry_max_s=0.5)
    topics, group = harness.topics, harness.settings.app_id
    try:
        harness.start()
        key = b"same-partition"
        kafka.produce(topics.form_submits, [b"\x01first"], key=key)
        first = kafka.consume(topics.dead_letters, until=harness.watch(lambda rs: len(rs) >= 1), timeout=90)
        assert len(first) == 1, harness.logs()
        partition, first_offset = first[0]["value"]["source_partition"], first[0]["value"]["source_offset"]
        _wait(
            "the first input's offset to be committed",
            lambda: kafka.committed(group, topics.form_submits).get(partition) == first_offset + 1,
            harness,
        )

        # The broker now refuses every dead letter (as it refused the fuzz run's 10 MiB ones).
        kafka.set_topic_config(topics.dead_letters, {"max.message.bytes": "64"})
        _wait("the new limit", lambda: kafka.topic_config(topics.dead_letters, "max.message.bytes") == "64", harness)
        kafka.produce(topics.form_submits, [b"\x01second"], key=key)
        _wait("three failed deliveries", lambda: _failures(harness) >= 3, harness)
        time.sleep(1.5)  # three commit intervals: a commit past the refused record would show now
        assert kafka.committed(group, topics.form_submits).get(partition) == first_offset + 1, (
            "offset committed past a dead letter that was never delivered"
        )

        kafka.set_topic_config(topics.dead_letters, {})  # back to the broker's limit
        _wait(
            "the second input's offset to be committed",
            lambda: kafka.committed(group, topics.form_submits).get(partition) == first_offset + 2,
            harness,
        )
        dead = kafka.consume(topics.dead_letters, until=lambda rs: len(rs) >= 3, timeout=3)
        assert [d["value"]["original"] for d in dead] == [b"\x01first", b"\x01second"], "exactly once, in order"
        assert dead[1]["value"]["source_offset"] == first_offset + 1
        assert _failures(harness) >= 3
    finally:
        harness.stop_all()
