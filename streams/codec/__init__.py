"""Avro/JSON codec for leadflow's topics (wire format in docs/contracts.md).

    registry = SchemaRegistry.load()          # once, at startup
    codec = Codec(registry)
    record, encoding = codec.decode_input("form_submitted", raw, max_bytes=settings.max_message_bytes)
    payload = codec.encode("lead_scored", record)
"""

from streams.codec.avro import DEFAULT_SCHEMA_DIR, RegisteredSchema, SchemaRegistry
from streams.codec.base import AVRO, JSON, Codec
from streams.codec.exceptions import (
    REASON_CODES,
    CodecError,
    DecodeError,
    EncodeError,
    SchemaRegistryError,
)

__all__ = [
    "AVRO", "JSON", "DEFAULT_SCHEMA_DIR", "REASON_CODES",
    "Codec", "CodecError", "DecodeError", "EncodeError", "RegisteredSchema", "SchemaRegistry",
    "SchemaRegistryError",
]
