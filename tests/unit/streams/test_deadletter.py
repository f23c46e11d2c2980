"""Dead letters always fit their topic (truncated, with size and SHA-256) and are delivered."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agents.domain.identity import deterministic_id
from streams.codec import Codec
from streams.codec.avro import avro_header, read_avro, write_avro
from streams.deadletter import (
    DeadLetterTooLarge,
    dead_letter_id,
    dead_letter_key,
    dead_letter_message,
    dead_letter_record,
    deliver,
    fit_dead_letter,
)

FORMATS = ("avro", "json")


def _record(value: bytes, key: bytes | None = b"lead-1") -> dict:
    return dead_letter_record(
        topic="p.in.form-submits",
        partition=1,
        offset=42,
        timestamp_ms=1_700_000_000_000,
        key=key,
        value=value,
        reason_code="too_large",
        reason="message is 300000 bytes; the limit is 262144",
        failed_at_ms=1_700_000_000_500,
    )


def _encoder(codec: Codec, output_format: str):
    return lambda record: codec.encode_output("dead_letter", record, output_format)


def _decoded(codec: Codec, output_format: str, payload: bytes) -> dict:
    if output_format == "avro":
        return codec.decode(payload)[1]
    record = codec.decode(payload, "dead_letter")[1]  # JSON: bytes as base64 text
    return {**record, **{name: base64.b64decode(record[name]) for name in ("original", "source_key") if record[name]}}


@pytest.mark.parametrize("output_format", FORMATS)
def test_a_record_that_fits_is_kept_whole_with_its_size_and_digest(codec, output_format):
    value = b"\x01not json nor avro"
    record, payload = fit_dead_letter(_record(value), _encoder(codec, output_format), 10_000)
    assert payload == _encoder(codec, output_format)(record)
    letter = _decoded(codec, output_format, payload)
    assert letter["original"] == value and letter["truncated"] is False
    assert letter["original_size"] == len(value)
    assert letter["original_sha256"] == hashlib.sha256(value).hexdigest()


@pytest.mark.parametrize("output_format", FORMATS)
def test_a_large_original_is_cut_to_the_longest_prefix_that_fits(codec, output_format):
    value = bytes(range(256)) * 400  # 102,400 bytes, every byte value
    limit = 50_000
    encode = _encoder(codec, output_format)
    record, payload = fit_dead_letter(_record(value), encode, limit)
    assert len(payload) <= limit
    kept = record["original"]
    assert value.startswith(kept) and 0 < len(kept) < len(value)
    # Longest: one more byte would not fit.
    assert len(encode({**record, "original": value[: len(kept) + 1]})) > limit
    letter = _decoded(codec, output_format, payload)
    assert letter["truncated"] is True and letter["original"] == kept
    assert letter["original_size"] == len(value)
    assert letter["original_sha256"] == hashlib.sha256(value).hexdigest()
    assert letter["source_key"] == b"lead-1", "the key is kept when the original alone can be cut"


def test_at_the_fuzz_run_sizes_the_encoding_fits_the_broker_limit(codec):
    """The case found by the fuzz run: 10 MiB - 200 bytes of input, 10 MiB topic limit."""
    limit = 10 * 1024 * 1024 - 16 * 1024
    value = b"x" * (10 * 1024 * 1024 - 200)
    record, payload = fit_dead_letter(_record(value), _encoder(codec, "avro"), limit)
    assert limit - 8 <= len(payload) <= limit  # cut to within a varint of the limit
    assert record["truncated"] and record["original_size"] == len(value)


@pytest.mark.parametrize("output_format", FORMATS)
def test_a_key_too_large_for_the_record_is_cut_too(codec, output_format):
    key = b"k" * 5000
    record, payload = fit_dead_letter(_record(b"v" * 5000, key=key), _encoder(codec, output_format), 3000)
    assert len(payload) <= 3000
    assert record["original"] == b"" and key.startswith(record["source_key"]) and record["source_key"]
    assert record["truncated"] is True


def test_a_limit_below_the_fixed_fields_is_a_clear_error(codec):
    with pytest.raises(DeadLetterTooLarge, match=r"p\.in\.form-submits needs more than 100 bytes.*max\.message\.bytes"):
        fit_dead_letter(_record(b"v" * 500), _encoder(codec, "avro"), 100)


@settings(max_examples=60, deadline=None)
@example(value=b"", key=None, limit=408, output_format="json")  # once failed: the oracle assumed key b""
@example(value=b"\x00" * 4, key=None, limit=418, output_format="json")  # "truncated": true fitted, nothing cut
@example(value=b"\x00" * 10, key=b"", limit=408, output_format="json")  # the oracle's original_size was 0
@given(
    value=st.binary(min_size=0, max_size=4000),
    key=st.one_of(st.none(), st.binary(max_size=300)),
    limit=st.integers(min_value=400, max_value=5000),
    output_format=st.sampled_from(FORMATS),
)
def test_whatever_the_sizes_the_encoding_fits_and_keeps_a_prefix(codec, value, key, limit, output_format):
    try:
        record, payload = fit_dead_letter(_record(value, key=key), _encoder(codec, output_format), limit)
    except DeadLetterTooLarge:
        # The smallest honest record: original and key emptied (a missing key stays null) and
        # flagged truncated - or, with nothing to cut, the record as it is.
        if value or key:  # size and SHA-256 stay those of the value as received
            smallest = {
                **_record(value, key=key),
                "original": b"",
                "source_key": None if key is None else b"",
                "truncated": True,
            }
        else:
            smallest = _record(value, key=key)
        assert len(_encoder(codec, output_format)(smallest)) > limit
        return
    assert len(payload) <= limit and payload == _encoder(codec, output_format)(record)
    assert value.startswith(record["original"]) and record["original_size"] == len(value)
    assert record["truncated"] is (record["original"] != value or record["source_key"] != key)


def test_a_dead_letter_id_is_the_one_earlier_versions_gave_the_same_source_record():
    assert _record(b"x")["event_id"] == "dl_3f42f444aeb23037efa570a9"  # as published before issue 13


@settings(max_examples=200)
@given(topic=st.text(min_size=1, max_size=60), partition=st.integers(0, 10_000), offset=st.integers(0, 2**63 - 1))
def test_dead_letter_ids_follow_the_output_id_scheme(topic, partition, offset):
    """The runtime hashes as ``agents.domain.identity.deterministic_id`` does, without importing it."""
    assert dead_letter_id(topic, partition, offset) == deterministic_id(topic, partition, offset, prefix="dl_")


def test_the_kafka_key_is_hashed_only_when_it_would_crowd_out_the_record():
    assert dead_letter_key(b"lead-1", 1000) == b"lead-1"
    assert dead_letter_key(None, 1000) == b""
    big = b"k" * 600
    assert dead_letter_key(big, 1000) == hashlib.sha256(big).hexdigest().encode()


def test_a_v1_dead_letter_read_as_v2_gets_the_new_fields_defaulted(codec):
    v1, v2 = codec.registry.by_id(1601), codec.registry.latest("dead_letter")
    old = {name: value for name, value in _record(b"raw").items() if name in v1.field_names}
    letter = read_avro(write_avro(v1, avro_header(1601), old), v1, v2)
    assert letter["original"] == b"raw" and letter["truncated"] is False
    assert letter["original_size"] is None and letter["original_sha256"] is None


# --- delivery -------------------------------------------------------------------------------


class FlakyTopic:
    """Refuses the first ``failures`` sends the way Faust reports it: the delivery future fails."""

    def __init__(self, failures: int) -> None:
        self.failures, self.sent = failures, 0

    async def send(self):
        self.sent += 1
        future = asyncio.get_running_loop().create_future()
        if self.sent <= self.failures:
            future.set_exception(RuntimeError("MessageSizeTooLargeError"))
        else:
            future.set_result(("metadata", self.sent))
        return future


def test_delivery_is_retried_until_acknowledged_and_every_failure_reported():
    topic, failures = FlakyTopic(failures=3), []
    result = asyncio.run(deliver(topic.send, on_failure=failures.append, initial_s=0.001, max_s=0.004))
    assert result == ("metadata", 4) and topic.sent == 4
    assert [str(exc) for exc in failures] == ["MessageSizeTooLargeError"] * 3


def test_delivery_never_gives_up_but_stops_when_cancelled():
    topic, failures = FlakyTopic(failures=10**9), []

    async def run() -> None:
        task = asyncio.ensure_future(deliver(topic.send, on_failure=failures.append, initial_s=0.001, max_s=0.002))
        await asyncio.sleep(0.2)
        assert not task.done(), "still retrying"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert len(failures) >= 20


class SilentTopic(FlakyTopic):
    """The first ``failures`` delivery futures never resolve: no acknowledgement, no error."""

    async def send(self):
        self.sent += 1
        future = asyncio.get_running_loop().create_future()
        if self.sent > self.failures:
            future.set_result(("metadata", self.sent))
        return future


def test_an_acknowledgement_that_never_comes_is_a_failure_and_the_record_is_sent_again():
    topic, failures = SilentTopic(failures=2), []
    result = asyncio.run(
        deliver(topic.send, on_failure=failures.append, initial_s=0.001, max_s=0.002, ack_timeout_s=0.05)
    )
    assert result == ("metadata", 3) and topic.sent == 3
    assert len(failures) == 2 and all(isinstance(exc, TimeoutError) for exc in failures)


@pytest.mark.parametrize("output_format", FORMATS)
def test_a_dead_letter_message_keeps_key_and_value_within_the_room(codec, output_format):
    from streams.consume import Meta

    big_key = b"k" * 700
    meta = Meta("p.in.form-submits", 1, 42, big_key, b"v" * 5000, 1_700_000_000_000, None)
    key, payload = dead_letter_message(
        meta, "too_large", "too big", failed_at_ms=1, room=1000, encode=_encoder(codec, output_format)
    )
    record = _decoded(codec, output_format, payload)
    assert key == hashlib.sha256(big_key).hexdigest().encode() and len(key) + len(payload) <= 1000
    assert record["truncated"] and record["source_offset"] == 42 and record["reason_code"] == "too_large"
    assert record["event_id"] == dead_letter_id("p.in.form-submits", 1, 42)
