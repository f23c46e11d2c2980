"""Lead state bytes (agents/scoring/state_codec.py): compact, lossless, readable across versions."""

from __future__ import annotations

import hashlib
import statistics
import zlib

import orjson
import pytest

from agents.scoring import state_codec
from agents.scoring.state import LeadState
from agents.scoring.state_codec import StateDecodeError, decode_state, encode_state, pack, unpack
from agents.scoring.state_dictionary import STATE_DICTIONARY_V1
from leadflow.bench.recovery_state import simulate_pool
from streams.settings import load_settings

END_MS = 1_795_000_000_000


@pytest.fixture(scope="module")
def documents() -> list[bytes]:
    """Simulator lead states as the worker builds them (reorder window included), another seed
    than the dictionary's."""
    from leadflow.compose import load_configs

    settings = load_settings()
    return [s.value for s in simulate_pool(settings, load_configs(settings), 120, seed=29, end_ms=END_MS).states]


def test_every_state_survives_the_round_trip_exactly(documents):
    for document in documents:
        state = LeadState.from_dict(orjson.loads(document))
        assert unpack(pack(document)) == document
        assert decode_state(encode_state(state)).to_dict() == state.to_dict()


def test_states_are_stored_in_a_fraction_of_their_json(documents):
    json_sizes = [len(d) for d in documents]
    stored_sizes = [len(pack(d)) for d in documents]
    # The goal is 800 B per lead; simulator states are about 4.7 KB of JSON.
    assert statistics.mean(stored_sizes) < 800, statistics.mean(stored_sizes)
    assert statistics.mean(stored_sizes) * 4 < statistics.mean(json_sizes)


def test_the_dictionary_pays_for_itself(documents):
    plain_deflate = statistics.mean(len(zlib.compress(d, 3)) for d in documents)
    assert statistics.mean(len(pack(d)) for d in documents) < 0.75 * plain_deflate


def test_plain_json_written_before_the_codec_is_still_read(documents):
    state = LeadState.from_dict(orjson.loads(documents[0]))
    legacy = orjson.dumps(state.to_dict())
    assert legacy[:1] == b"{"
    assert decode_state(legacy).to_dict() == state.to_dict()
    assert encode_state(state)[:1] == b"\x01"


def test_the_published_dictionary_never_changes():
    # States on disk and in changelogs need exactly these bytes: a new dictionary takes a new
    # format byte (state_codec's docstring), it never replaces this one.
    assert len(STATE_DICTIONARY_V1) == 8192
    assert hashlib.sha256(STATE_DICTIONARY_V1).hexdigest() == DICTIONARY_V1_SHA256


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty state value"),
        (b"\x07abc", "unknown state encoding 0x07"),
        (b"\x01\xff\xfe\xfd", "corrupt state value"),
    ],
)
def test_unreadable_bytes_are_named_without_echoing_them(raw, message):
    with pytest.raises(StateDecodeError) as caught:
        unpack(raw)
    assert message in str(caught.value)
    assert "abc" not in str(caught.value)


def test_a_truncated_value_is_refused(documents):
    packed = pack(documents[0])
    with pytest.raises(StateDecodeError, match="truncated"):
        unpack(packed[: len(packed) // 2])


def test_the_format_byte_is_the_first_and_only_framing():
    assert state_codec.pack(b"{}")[:1] == bytes([state_codec.DEFLATE_V1])
    assert state_codec.PLAIN_JSON == ord("{")


DICTIONARY_V1_SHA256 = "c514d788e3082e85318a578651e86485dfe4491be74434a8c70bddf43cefc161"
