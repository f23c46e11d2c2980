"""Avro/JSON codec for leadflow's topics (wire format in docs/contracts.md).

    registry = SchemaRegistry.load()          # once, at startup
    codec = Codec(registry)
    record, encoding = codec.decode_input("form_submitted", raw, max_bytes=settings.max_message_bytes)
    payload = codec.encode("lead_scored", record)

With a Confluent-compatible Schema Registry (ids from it, subjects ``<topic>-value``):

    client = RegistryClient(url, username=..., password=..., ca_file=...)
    codec = Codec(SchemaRegistry.load(), RemoteSchemas(client, topic_names.value_subjects()))
    codec.register_schemas()                  # at start: registers, refuses incompatible changes
"""

from streams.codec.avro import DEFAULT_SCHEMA_DIR, RegisteredSchema, SchemaRegistry
from streams.codec.base import AVRO, JSON, Codec
from streams.codec.exceptions import (
    DECODE_REASON_CODES,
    CodecError,
    DecodeError,
    EncodeError,
    RegistryUnavailable,
    SchemaIncompatible,
    SchemaRegistryError,
)
from streams.codec.registry_client import RegistryClient
from streams.codec.remote import RemoteSchemas

__all__ = [
    "AVRO",
    "JSON",
    "DEFAULT_SCHEMA_DIR",
    "DECODE_REASON_CODES",
    "Codec",
    "CodecError",
    "DecodeError",
    "EncodeError",
    "RegisteredSchema",
    "RegistryClient",
    "RegistryUnavailable",
    "RemoteSchemas",
    "SchemaIncompatible",
    "SchemaRegistry",
    "SchemaRegistryError",
]
