"""A write-behind table holds its writes until the commit and writes each key once, under the
event that last wrote it (streams/write_behind.py). The Faust side runs through real Kafka in
tests/integration/test_foundation.py."""

from __future__ import annotations

import asyncio
import weakref
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from faust.streams import _current_event, current_event

from streams import write_behind
from streams.write_behind import WriteBehindTable


class _Table(dict):
    """Stands in for a Faust table: records each write with the event's partition, as Faust
    picks the store and changelog partition from the current event."""

    name = "lead_to_state"

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[bytes, bytes | None, int]] = []

    def __setitem__(self, key, value):
        self.writes.append((key, value, _partition()))
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self.writes.append((key, None, _partition()))
        super().__delitem__(key)


def _partition() -> int:
    event = current_event()
    assert event is not None, "written outside of an event"
    return event.message.partition


class _Event:
    """What Faust's current event offers a table: the message's partition and topic partition."""

    def __init__(self, partition: int, topic: str) -> None:
        self.message = SimpleNamespace(partition=partition, topic=topic, tp=(topic, partition))


def _event(partition: int, topic: str = "leadflow.internal.lead-events") -> _Event:
    return _Event(partition, topic)


@contextmanager
def _processing(event):
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def test_a_key_written_many_times_is_written_once_at_the_flush_with_its_last_value():
    table = _Table()
    behind = WriteBehindTable(table, max_keys=100)
    first, second = _event(1), _event(1)
    with _processing(first):
        behind[b"ld_a"] = b"v1"
        behind[b"ld_b"] = b"b1"
    with _processing(second):
        behind[b"ld_a"] = b"v2"
        assert behind[b"ld_a"] == b"v2" and behind.get(b"ld_b") == b"b1"  # reads see held values
    assert table.writes == [] and behind.held_keys() == 2
    assert behind.flush(None) == 2
    assert table.writes == [(b"ld_a", b"v2", 1), (b"ld_b", b"b1", 1)]
    assert behind.held_keys() == 0 and behind.flush(None) == 0
    assert current_event() is None  # the flush leaves no event behind


def test_each_key_is_written_under_the_partition_of_the_event_that_last_wrote_it():
    table = _Table()
    behind = WriteBehindTable(table, max_keys=100)
    with _processing(_event(0)):
        behind[b"k"] = b"old"
    with _processing(_event(3)):
        behind[b"k"] = b"new"
        behind[b"other"] = b"x"
    behind.flush(None)
    assert sorted(table.writes) == [(b"k", b"new", 3), (b"other", b"x", 3)]


def test_deletions_are_held_and_read_as_absent():
    table = _Table()
    table.update({b"gone": b"v", b"kept": b"w"})
    behind = WriteBehindTable(table, max_keys=100)
    with _processing(_event(2)):
        del behind[b"gone"]
        behind[b"new"] = b"n"
        del behind[b"new"]  # set and deleted before any flush: nothing to write for it
        with pytest.raises(KeyError):
            del behind[b"never"]
    assert b"gone" not in behind and behind.get(b"gone", b"default") == b"default"
    assert b"gone" in table  # not yet written
    with pytest.raises(KeyError):
        behind[b"gone"]
    assert b"kept" in behind
    behind.flush(None)
    assert table.writes == [(b"gone", None, 2)] and b"gone" not in table


def test_keys_of_partitions_no_longer_owned_are_dropped_not_written():
    table = _Table()
    behind = WriteBehindTable(table, max_keys=100)
    topic = "leadflow.internal.lead-events"
    with _processing(_event(0, topic)):
        behind[b"mine"] = b"1"
    with _processing(_event(1, topic)):
        behind[b"moved"] = b"2"
    assert behind.flush({(topic, 0)}) == 2  # both leave the held keys
    assert table.writes == [(b"mine", b"1", 0)] and behind.dropped == 1 and behind.held_keys() == 0


def test_reaching_the_bound_writes_everything_held_at_once():
    table = _Table()
    behind = WriteBehindTable(table, max_keys=3)
    with _processing(_event(0)):
        behind[b"a"] = b"1"
        behind[b"b"] = b"1"
        assert table.writes == []
        behind[b"c"] = b"1"
    assert [w[0] for w in table.writes] == [b"a", b"b", b"c"] and behind.held_keys() == 0


def test_a_write_outside_of_a_stream_is_refused_like_faust_does():
    behind = WriteBehindTable(_Table(), max_keys=10)
    with pytest.raises(RuntimeError, match="lead_to_state.*outside of its stream"):
        behind[b"k"] = b"v"


def test_a_failed_write_keeps_it_and_the_keys_after_it_held():
    class _Failing(_Table):
        def __setitem__(self, key, value):
            if key == b"bad":
                raise OSError("store closed")
            super().__setitem__(key, value)

    table = _Failing()
    behind = WriteBehindTable(table, max_keys=100)
    with _processing(_event(0)):
        for key in (b"a", b"bad", b"c"):
            behind[key] = b"v"
    with pytest.raises(OSError):
        behind.flush(None)
    assert [w[0] for w in table.writes] == [b"a"]
    assert behind.held_keys() == 2 and behind.get(b"c") == b"v"  # nothing lost: still held, still read


def test_zero_keys_is_not_a_write_behind_table():
    with pytest.raises(ValueError, match="max_keys"):
        WriteBehindTable(_Table(), max_keys=0)


def test_the_commit_flushes_every_registered_table_before_it_commits():
    topic = "leadflow.internal.lead-events"
    table, other = _Table(), _Table()
    app = SimpleNamespace(consumer=SimpleNamespace(assignment=lambda: {(topic, 0)}))
    for t in (table, other):
        behind = WriteBehindTable(t, max_keys=100)
        write_behind.register(app, behind)
        with _processing(_event(0, topic)):
            behind[b"k"] = b"v"
    seen_at_commit = []

    async def force_commit(consumer, *args, **kwargs):
        seen_at_commit.append((list(table.writes), list(other.writes), args, kwargs))
        return True

    commit = write_behind._flushing_first(force_commit)
    assert asyncio.run(commit(SimpleNamespace(app=app), {"t"}, start_new_transaction=False)) is True
    assert seen_at_commit == [([(b"k", b"v", 0)], [(b"k", b"v", 0)], ({"t"},), {"start_new_transaction": False})]


def test_install_wraps_fausts_force_commit_once():
    from faust.transport.consumer import Consumer

    write_behind.install()
    wrapped = Consumer.force_commit
    write_behind.install()
    assert Consumer.force_commit is wrapped and wrapped.__name__ == "flushed_then_committed"


class _Counting:
    """encode/decode that count their calls."""

    def __init__(self) -> None:
        self.encoded = self.decoded = 0

    def encode(self, value: dict) -> bytes:
        self.encoded += 1
        return repr(sorted(value.items())).encode()

    def decode(self, raw: bytes) -> dict:
        self.decoded += 1
        return dict(eval(raw.decode()))  # noqa: S307 - test data written by encode above


def test_a_held_object_is_read_back_without_decoding_and_encoded_once_when_written():
    codec = _Counting()
    table = _Table()
    table.update({b"k": codec.encode({"n": 0})})  # stored before
    codec.encoded = 0
    behind = WriteBehindTable(table, max_keys=100)
    with _processing(_event(1)):
        for n in range(1, 6):
            state = write_behind.read_decoded(behind, b"k", codec.decode)
            assert state == {"n": n - 1}
            write_behind.write_encoded(behind, b"k", {"n": n}, codec.encode)
    assert codec.decoded == 1 and codec.encoded == 0  # the stored bytes decoded once, nothing encoded yet
    behind.flush(None)
    assert codec.encoded == 1 and table.writes == [(b"k", codec.encode({"n": 5}), 1)]


def test_a_held_object_read_as_bytes_is_encoded_once_and_stays_readable_as_an_object():
    codec = _Counting()
    behind = WriteBehindTable(_Table(), max_keys=100)
    with _processing(_event(0)):
        write_behind.write_encoded(behind, b"k", {"a": 1}, codec.encode)
    raw = behind.get(b"k")
    assert raw == behind[b"k"] and codec.encoded == 1  # the lead API reads bytes
    assert write_behind.read_decoded(behind, b"k", codec.decode) == {"a": 1} and codec.decoded == 1
    behind.flush(None)
    assert codec.encoded == 1  # not encoded again at the flush


def test_the_helpers_encode_and_decode_at_once_on_a_plain_table():
    codec = _Counting()
    table: dict[bytes, bytes] = {}
    write_behind.write_encoded(table, b"k", {"a": 1}, codec.encode)
    assert table == {b"k": codec.encode({"a": 1})}
    assert write_behind.read_decoded(table, b"k", codec.decode) == {"a": 1}
    assert write_behind.read_decoded(table, b"absent", codec.decode) is None


def test_a_commit_after_a_burst_writes_in_slices_letting_the_streams_run_in_between():
    topic = "leadflow.internal.lead-events"
    table = _Table()
    behind = WriteBehindTable(table, max_keys=10_000)
    app = SimpleNamespace(consumer=SimpleNamespace(assignment=lambda: {(topic, 0)}))
    write_behind.register(app, behind)
    with _processing(_event(0, topic)):
        for n in range(600):
            behind[b"k%d" % n] = b"v"
    written_when_the_stream_ran: list[int] = []

    async def stream() -> None:  # an agent holding one more key while the commit writes
        written_when_the_stream_ran.append(len(table.writes))
        with _processing(_event(0, topic)):
            behind[b"late"] = b"v"

    async def commit() -> int:
        task = asyncio.ensure_future(stream())
        done = await write_behind.flush_yielding(app, slice_keys=256)
        await task
        return done

    assert asyncio.run(commit()) == 601
    assert written_when_the_stream_ran == [256]  # the stream ran after the first slice
    assert behind.held_keys() == 0 and table.writes[-1][0] == b"late"
    assert len(table.writes) == 601
