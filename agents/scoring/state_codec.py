"""Lead state bytes as stored in the tables: orjson of ``LeadState.to_dict()``, deflated with a
preset dictionary (issue 14: lead state <= 800 B per lead).

Why. On simulator traffic a lead's state is about 4.7 KB of JSON: field names repeated in every
lead, and the reorder window's snapshot, which repeats most of the state. Deflate removes the
repeats inside a state; the preset dictionary (``state_dictionary.py``) removes what every lead
repeats (field, stage and signal names, touch kinds). About 600 B per lead, for some 70 µs per
write (mostly setting the dictionary) and 17 µs per read; the changelog, the local RocksDB store
and a cold recovery all move the smaller bytes.

Format: a first byte naming the encoding, then its payload.
- ``{`` (plain orjson, the only format before this one): read as is, so existing tables and
  changelogs need no migration; values go back compressed the next time the lead changes.
- ``\\x01``: raw deflate (no zlib header or checksum: Kafka and RocksDB carry their own) with
  the v1 dictionary.
A published dictionary never changes: a new one gets a new first byte, and readers keep the old.
"""

from __future__ import annotations

import zlib

import orjson

from agents.scoring.state import LeadState
from agents.scoring.state_dictionary import STATE_DICTIONARY_V1

__all__ = ["encode_state", "decode_state", "pack", "unpack", "StateDecodeError"]

PLAIN_JSON = ord("{")
DEFLATE_V1 = 0x01
_DICTIONARIES = {DEFLATE_V1: STATE_DICTIONARY_V1}
# Level 3 of 9: 614 B per simulator state against 719 B at level 1 and 543 B at 6, which costs
# about twice the CPU of 3 for 12 % fewer bytes.
_LEVEL = 3
_RAW_DEFLATE = -15  # window bits: 32 KiB window, no zlib header or trailer


class StateDecodeError(ValueError):
    """Stored bytes that are no lead state this version can read (the message names why, never the bytes)."""


def pack(document: bytes) -> bytes:
    """The stored form of one orjson document."""
    deflate = zlib.compressobj(_LEVEL, zlib.DEFLATED, _RAW_DEFLATE, 9, zlib.Z_DEFAULT_STRATEGY, STATE_DICTIONARY_V1)
    return b"\x01" + deflate.compress(document) + deflate.flush()


def unpack(raw: bytes) -> bytes:
    """The orjson document of stored bytes, whichever format wrote them."""
    if not raw:
        raise StateDecodeError("empty state value")
    fmt = raw[0]
    if fmt == PLAIN_JSON:
        return raw
    dictionary = _DICTIONARIES.get(fmt)
    if dictionary is None:
        raise StateDecodeError(f"unknown state encoding 0x{fmt:02x} (a newer leadflow wrote it?)")
    inflate = zlib.decompressobj(_RAW_DEFLATE, dictionary)
    try:
        document = inflate.decompress(raw[1:]) + inflate.flush()
    except zlib.error as exc:
        raise StateDecodeError(f"corrupt state value ({exc})") from None
    if not inflate.eof:
        raise StateDecodeError("truncated state value")
    return document


def encode_state(state: LeadState) -> bytes:
    return pack(orjson.dumps(state.to_dict()))


def decode_state(raw: bytes) -> LeadState:
    return LeadState.from_dict(orjson.loads(unpack(raw)))
