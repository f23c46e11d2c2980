"""The codec: publishers' Avro or JSON in, leadflow's framed Avro out (docs/contracts.md).

Everything schema-dependent (parsed schemas, frame headers, JSON coercers) is prepared in
``Codec.__init__``; per message the work is a size check, a one-byte sniff and one fastavro
call or one orjson parse.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import replace
from types import ModuleType
from typing import Any

import orjson
from fastavro.validation import validate

from streams.codec.avro import (
    MAGIC_BYTE,
    RegisteredSchema,
    SchemaRegistry,
    avro_header,
    read_avro,
    read_schema_id,
    write_avro,
)
from streams.codec.exceptions import (
    TOO_LARGE,
    UNKNOWN_ENCODING,
    UNKNOWN_SCHEMA_ID,
    DecodeError,
    EncodeError,
    RegistryUnavailable,
    SchemaRegistryError,
)
from streams.codec.json import compile_record_coercer, parse_json_object
from streams.codec.remote import RemoteSchemas

_diagnostic_validation: ModuleType | None
try:  # the pure-Python validator reports which field failed; the compiled one only the record
    from fastavro import _validation_py as _diagnostic_validation
except ImportError:  # pragma: no cover - fastavro layout changed: lose only the field name
    _diagnostic_validation = None

AVRO = "avro"
JSON = "json"
_AVRO_MAGIC = bytes([MAGIC_BYTE])
_JSON_OBJECT_START = re.compile(rb"[ \t\r\n]*\{")  # JSON's own whitespace, then '{'


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class Codec:
    def __init__(self, registry: SchemaRegistry, remote: RemoteSchemas | None = None) -> None:
        """``remote``: a Schema Registry whose ids replace the file registry's (None: offline,
        ids from ``schemas/registry.yaml``). Call ``register_schemas()`` at start with it."""
        self.registry = registry
        self.remote = remote
        self._latest: dict[str, RegisteredSchema] = {s: registry.latest(s) for s in registry.subjects}
        self._latest_fields = {s: frozenset(r.field_names) for s, r in self._latest.items()}
        self._json_coercers = {s: compile_record_coercer(r.declared) for s, r in self._latest.items()}
        self._subject_of_name = {r.schema["name"]: s for s, r in self._latest.items()}
        if remote is None:
            self._by_id = {r.id: r for s in registry.subjects for r in registry.versions(s)}
            self._latest_header = {s: avro_header(r.id) for s, r in self._latest.items()}
        else:  # a registry's ids are another numbering: only what it tells us counts
            self._by_id = {}
            self._latest_header = {}

    def register_schemas(self) -> None:
        """Registers leadflow's schemas in the remote registry (idempotent) and frames outputs
        with its ids. Raises RegistryUnavailable or SchemaIncompatible (one line each)."""
        if self.remote is None:
            return
        ids = self.remote.register(self.registry)
        for subject in self.registry.subjects:
            latest = self.registry.latest(subject)
            for registered in self.registry.versions(subject):
                schema_id = ids.get((subject, registered.version))
                if schema_id is None:
                    continue
                remote_registered = replace(registered, id=schema_id)
                self._by_id[schema_id] = remote_registered
                if registered is latest:
                    # Same object in both maps: decode_input skips resolution when writer is reader.
                    self._latest[subject] = remote_registered
                    self._latest_header[subject] = avro_header(schema_id)

    def decode_input(self, subject: str, raw: bytes, *, max_bytes: int) -> tuple[dict[str, Any], str]:
        """(record in the shape of the subject's latest schema, "avro" | "json").

        Raises DecodeError with a dead-letter reason code. An unregistered ``subject`` is a
        wiring bug and raises SchemaRegistryError instead.
        """
        reader = self._latest.get(subject)
        if reader is None:
            raise SchemaRegistryError(f"unknown subject {subject!r}")
        if len(raw) > max_bytes:
            raise DecodeError(TOO_LARGE, f"message is {len(raw)} bytes, the limit is {max_bytes}")
        if raw[:1] == _AVRO_MAGIC:
            writer = self._writer_schema(raw)
            if writer.subject != subject:
                raise DecodeError(
                    UNKNOWN_SCHEMA_ID,
                    f"schema id {writer.id} is registered for {writer.subject}, not {subject}",
                )
            # Old versions are resolved to the latest (defaults fill the new fields).
            return read_avro(raw, writer, None if writer is reader else reader), AVRO
        if _JSON_OBJECT_START.match(raw):
            return self._json_coercers[subject](parse_json_object(raw)), JSON
        raise DecodeError(UNKNOWN_ENCODING, _describe_unknown_encoding(raw))

    def encode(self, subject: str, record: Mapping[str, Any]) -> bytes:
        """Framed Avro with the subject's latest schema.

        Raises EncodeError naming the field when ``record`` does not match the schema, including
        keys the schema does not have (a misspelt optional field would otherwise vanish).
        """
        registered = self._checked(subject, record)
        header = self._latest_header.get(subject)
        if header is None:  # with a remote registry: ids come from registering (once)
            self.register_schemas()
            header = self._latest_header[subject]
        return write_avro(registered, header, record)

    def encode_json(self, subject: str, record: Mapping[str, Any]) -> bytes:
        """The same record as one JSON object (same field names, times as epoch ms, bytes as
        base64), validated against the same schema, for sinks that do not speak Avro."""
        self._checked(subject, record)
        return orjson.dumps(record, default=_json_default)

    def encode_output(self, subject: str, record: Mapping[str, Any], output_format: str) -> bytes:
        return self.encode_json(subject, record) if output_format == JSON else self.encode(subject, record)

    def _checked(self, subject: str, record: Mapping[str, Any]) -> RegisteredSchema:
        registered = self._latest.get(subject)
        if registered is None:
            raise EncodeError(f"unknown subject {subject!r}")
        if not isinstance(record, Mapping):
            raise EncodeError(f"{subject}: expected a mapping, got {type(record).__name__}")
        unexpected = record.keys() - self._latest_fields[subject]
        if unexpected:
            raise EncodeError(
                f"{subject}: fields not in schema v{registered.version}: {', '.join(sorted(map(str, unexpected)))}"
            )
        # raise_errors=False: raising builds an exception per failed union branch (4x slower).
        if not validate(record, registered.schema, raise_errors=False, strict=True):
            raise EncodeError(_describe_invalid_record(registered, record))
        return registered

    def decode(self, raw: bytes, subject: str | None = None) -> tuple[str, dict[str, Any]]:
        """(subject, record as written) of an output: framed Avro (the subject comes from the
        schema id), or - with ``output_format=json`` - a JSON object, whose subject the reader
        knows from the topic and passes in."""
        if raw[:1] != _AVRO_MAGIC:
            if subject is not None and _JSON_OBJECT_START.match(raw):
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise DecodeError(UNKNOWN_ENCODING, f"not valid JSON: {exc}") from None
                if isinstance(value, dict):
                    return subject, value
            raise DecodeError(UNKNOWN_ENCODING, _describe_unknown_encoding(raw))
        writer = self._writer_schema(raw)
        return writer.subject, read_avro(raw, writer, None)

    def _writer_schema(self, raw: bytes) -> RegisteredSchema:
        schema_id = read_schema_id(raw)
        writer = self._by_id.get(schema_id)
        if writer is None:
            writer = self._fetch_writer(schema_id)
        return writer

    def _fetch_writer(self, schema_id: int) -> RegisteredSchema:
        """An id first seen on the wire: asked of the remote registry once, then cached."""
        if self.remote is None:
            raise DecodeError(UNKNOWN_SCHEMA_ID, f"schema id {schema_id} is not registered")
        try:
            writer = self.remote.writer(schema_id, self._subject_of_name)
        except RegistryUnavailable as exc:
            # Not the message's fault, but holding the partition would stall every lead on it;
            # the dead letter keeps the bytes for a replay once the registry is back.
            self.remote.remember_miss(schema_id)
            raise DecodeError(UNKNOWN_SCHEMA_ID, f"schema id {schema_id} could not be looked up: {exc}") from None
        except SchemaRegistryError as exc:
            self.remote.remember_miss(schema_id)
            raise DecodeError(UNKNOWN_SCHEMA_ID, str(exc)) from None
        if writer is None:
            raise DecodeError(
                UNKNOWN_SCHEMA_ID,
                f"schema id {schema_id} is not registered (as Avro) in the Schema Registry at {self.remote.url}",
            )
        self._by_id[schema_id] = writer
        return writer


def _describe_unknown_encoding(raw: bytes) -> str:
    if not raw.strip():
        return "message is empty or only whitespace"
    first = raw.lstrip()[:1]
    return f"first byte 0x{first.hex()} is neither the Avro magic byte 0x00 nor '{{' (a JSON object)"


def _describe_invalid_record(registered: RegisteredSchema, record: Mapping[str, Any]) -> str:
    """Which fields failed and what type they needed; only the Python type of the value."""
    prefix = f"{registered.subject} v{registered.version}: invalid record"
    if _diagnostic_validation is None:
        return prefix
    try:
        _diagnostic_validation.validate(record, registered.schema, raise_errors=True, strict=True)
    except _diagnostic_validation.ValidationError as exc:
        problems: dict[str, tuple[list[str], str]] = {}  # field -> (expected types, got)
        for error in exc.errors:
            field = error.field.removeprefix("io.leadflow.") or "record"
            if error.datum is _diagnostic_validation.NoValue:
                got = "missing"
            else:
                got = type(error.datum).__name__
            expected = problems.setdefault(field, ([], got))[0]
            expected.append(_schema_label(error.schema))
        details = "; ".join(
            f"field {field!r} expected {' or '.join(expected)}, got {got}"
            for field, (expected, got) in problems.items()
        )
        return f"{prefix}: {details}"
    return prefix  # pragma: no cover - the two validators disagree


def _schema_label(schema: Any) -> str:
    if isinstance(schema, str):
        return schema.removeprefix("io.leadflow.")
    if isinstance(schema, list):
        return " or ".join(_schema_label(branch) for branch in schema)
    kind = schema.get("type")
    if kind in ("record", "enum", "fixed"):
        return str(schema.get("name", kind)).removeprefix("io.leadflow.")
    return str(kind)
