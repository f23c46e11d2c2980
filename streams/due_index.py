"""Windowed timeouts: keys indexed by due time in fixed-width buckets, held in a table.

Faust's ``on_window_close`` is a poor timer (docs/faust-pitfalls.md item 4), so leadflow follows
Kafka Streams' punctuator design: each owner of a partition keeps ``bucket -> [keys]`` entries
in a changelog-backed table, and a wall-clock timer asks the partition's own agent (through
a command message on that partition) to close every bucket whose end has passed. Work per
sweep is proportional to the buckets and keys that are due, never to all keys.

Entries are appended, never rewritten on reschedule: a stale entry is recognised at sweep
time (the owner's state says it is due later) and skipped. This keeps each schedule a
single append instead of a read-modify-write of two buckets.
"""

from __future__ import annotations

import orjson


def bucket_of(due_ms: int, width_ms: int) -> int:
    return due_ms // width_ms


def bucket_end_ms(bucket: int, width_ms: int) -> int:
    return (bucket + 1) * width_ms


def bucket_key(partition: int, bucket: int) -> bytes:
    # The partition is part of the key so the memory store (one dict for all partitions)
    # and the RocksDB store (one DB per partition) behave the same.
    return b"b:%d:%d" % (partition, bucket)


def cursor_key(partition: int) -> bytes:
    return b"c:%d" % partition


class DueIndex:
    """Bucketed due times over a bytes->bytes Faust table. Call only from the owning agent."""

    def __init__(self, table, width_ms: int) -> None:
        self.table = table
        self.width_ms = width_ms

    def schedule(self, partition: int, key: str, due_ms: int, now_ms: int) -> int:
        """Index ``key`` under its due bucket; returns the bucket used.

        A due time in an already-closed bucket (replayed history, a late event) goes to the
        next open bucket, so it fires at the next sweep instead of never.
        """
        ckey = cursor_key(partition)
        cursor = self.table.get(ckey)
        if cursor is None:
            # First use on this partition: everything before now counts as closed.
            cursor_bucket = bucket_of(now_ms, self.width_ms) - 1
            self.table[ckey] = str(cursor_bucket).encode()
        else:
            cursor_bucket = int(cursor)
        bucket = max(bucket_of(due_ms, self.width_ms), cursor_bucket + 1)
        bkey = bucket_key(partition, bucket)
        current = self.table.get(bkey)
        members = orjson.loads(current) if current else []
        if key not in members:
            members.append(key)
            self.table[bkey] = orjson.dumps(members)
        return bucket

    def take(self, partition: int, bucket: int) -> list[str]:
        """Members of a bucket, removing the bucket and advancing the partition's cursor."""
        bkey = bucket_key(partition, bucket)
        current = self.table.get(bkey)
        if current is not None:
            del self.table[bkey]
        ckey = cursor_key(partition)
        cursor = self.table.get(ckey)
        if cursor is None or int(cursor) < bucket:
            self.table[ckey] = str(bucket).encode()
        return orjson.loads(current) if current else []

    def cursor(self, partition: int) -> int | None:
        """Last bucket closed on this partition (None before the first sweep)."""
        value = self.table.get(cursor_key(partition))
        return int(value) if value is not None else None
