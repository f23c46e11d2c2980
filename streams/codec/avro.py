"""leadflow's schema registry (``schemas/registry.yaml`` + ``.avsc`` files) and Avro framing.

Schemas are parsed once at load; per message only ``schemaless_reader``/``schemaless_writer``
run. Times stay epoch-ms ints end to end: fastavro would turn ``timestamp-millis`` into
``datetime`` objects on read, so the *wire* schemas used for reading and writing have the time
annotations removed (the binary encoding is a plain long either way). The schemas *as declared*
are kept too: they tell the JSON path which fields are timestamps.
"""

from __future__ import annotations

import io
import json
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import UnknownType

from configio.yamlio import read_yaml
from streams.codec.exceptions import UNDECODABLE, DecodeError, SchemaRegistryError

DEFAULT_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
REGISTRY_FILE = "registry.yaml"
TYPES_DIR = "types"

MAGIC_BYTE = 0x00
_HEADER = struct.Struct(">BI")  # magic byte, schema id (big-endian uint32): Confluent framing
HEADER_SIZE = _HEADER.size
MAX_SCHEMA_ID = 2**32 - 1

# Logical types fastavro converts to datetime/date/time objects on read.
_TIME_LOGICAL_TYPES = frozenset(
    {
        "timestamp-millis",
        "timestamp-micros",
        "local-timestamp-millis",
        "local-timestamp-micros",
        "date",
        "time-millis",
        "time-micros",
    }
)
_SUBJECT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ENTRY_KEYS = frozenset({"version", "id", "file"})


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """One version of one subject.

    ``schema`` is the parsed wire schema (time annotations removed, so times read and write as
    int epoch ms); ``declared`` is the same schema parsed as written in the file.
    """

    id: int
    subject: str
    version: int
    schema: dict[str, Any] = field(compare=False, repr=False)
    declared: dict[str, Any] = field(compare=False, repr=False)
    file: Path | None = field(default=None, compare=False)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f["name"] for f in self.schema["fields"])


class SchemaRegistry:
    """Immutable lookup of registered schemas by subject (latest version) and by id."""

    def __init__(self, schemas: Iterable[RegisteredSchema]) -> None:
        by_id: dict[int, RegisteredSchema] = {}
        by_subject: dict[str, list[RegisteredSchema]] = {}
        for registered in schemas:
            if registered.id in by_id:
                raise SchemaRegistryError(f"schema id {registered.id} is registered twice")
            by_id[registered.id] = registered
            by_subject.setdefault(registered.subject, []).append(registered)
        self._by_id = MappingProxyType(by_id)
        self._versions = MappingProxyType(
            {subject: tuple(sorted(versions, key=lambda r: r.version)) for subject, versions in by_subject.items()}
        )

    @classmethod
    def load(cls, directory: Path = DEFAULT_SCHEMA_DIR) -> SchemaRegistry:
        """Reads ``registry.yaml`` and every schema it names (shared types in ``types/`` first).

        Raises SchemaRegistryError naming the file at fault.
        """
        directory = Path(directory)
        declared_types, wire_types = _load_named_types(directory / TYPES_DIR)
        registry_path = directory / REGISTRY_FILE
        schemas = []
        for subject, version, schema_id, path in _read_registry_file(registry_path):
            raw = _read_json(path)
            if not isinstance(raw, dict) or raw.get("type") != "record":
                raise SchemaRegistryError(f"{path}: a subject schema must be an Avro record")
            declared = _parse(raw, declared_types, path)
            wire = _parse(_without_time_annotations(raw), wire_types, path)
            schemas.append(RegisteredSchema(schema_id, subject, version, wire, declared, path))
        registry = cls(schemas)
        for subject in registry.subjects:
            _check_backward_compatible(registry.versions(subject))
        return registry

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(self._versions)

    def versions(self, subject: str) -> tuple[RegisteredSchema, ...]:
        """All versions of a subject, oldest first."""
        try:
            return self._versions[subject]
        except KeyError:
            raise SchemaRegistryError(f"unknown subject {subject!r}; registered: {', '.join(self._versions)}") from None

    def latest(self, subject: str) -> RegisteredSchema:
        return self.versions(subject)[-1]

    def by_id(self, schema_id: int) -> RegisteredSchema:
        registered = self._by_id.get(schema_id)
        if registered is None:
            raise SchemaRegistryError(f"schema id {schema_id} is not registered")
        return registered

    def get(self, schema_id: int) -> RegisteredSchema | None:
        """Like ``by_id`` without raising: for the per-message path."""
        return self._by_id.get(schema_id)


# --- Avro framing (per message) ----------------------------------------------------------


def avro_header(schema_id: int) -> bytes:
    return _HEADER.pack(MAGIC_BYTE, schema_id)


def read_schema_id(raw: bytes) -> int:
    """Schema id of a framed message whose first byte is already known to be the magic byte."""
    if len(raw) < HEADER_SIZE:
        raise DecodeError(UNDECODABLE, f"Avro frame is {len(raw)} bytes, shorter than its 5-byte header")
    schema_id: int = _HEADER.unpack_from(raw)[1]
    return schema_id


def read_avro(raw: bytes, writer: RegisteredSchema, reader: RegisteredSchema | None) -> dict[str, Any]:
    """Decodes the body of a framed message; ``reader`` None means "read as written"."""
    buffer = io.BytesIO(raw)
    buffer.seek(HEADER_SIZE)
    try:
        record = schemaless_reader(buffer, writer.schema, None if reader is None else reader.schema)
    except EOFError:
        raise DecodeError(UNDECODABLE, f"{_label(writer)}: Avro body is truncated") from None
    except UnicodeDecodeError:
        raise DecodeError(UNDECODABLE, f"{_label(writer)}: a string is not valid UTF-8") from None
    except Exception as exc:  # garbage bytes surface as IndexError, ValueError, MemoryError...
        # Only the exception type: fastavro messages may quote the data.
        raise DecodeError(
            UNDECODABLE, f"{_label(writer)}: Avro body does not match its schema ({type(exc).__name__})"
        ) from None
    trailing = len(raw) - buffer.tell()
    if trailing:
        # Extra bytes mean the publisher used another schema than the id it wrote.
        raise DecodeError(UNDECODABLE, f"{_label(writer)}: {trailing} unexpected bytes after the record")
    return cast(dict[str, Any], record)  # the schemas are records


def write_avro(registered: RegisteredSchema, header: bytes, record: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    buffer.write(header)
    schemaless_writer(buffer, registered.schema, record)
    return buffer.getvalue()


def _label(registered: RegisteredSchema) -> str:
    if registered.version == 0:  # fetched from a remote registry by id: not one of our versions
        return f"{registered.subject} (schema id {registered.id} from the Schema Registry)"
    return f"{registered.subject} v{registered.version} (schema id {registered.id})"


# --- Loading (once) -----------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SchemaRegistryError(f"{path}: cannot read schema file: {exc.strerror}") from None
    except ValueError as exc:
        raise SchemaRegistryError(f"{path}: not valid JSON: {exc}") from None


def _parse(raw: Any, named_types: dict[str, Any], path: Path) -> dict[str, Any]:
    # A private copy of the shared types: versions of one subject reuse the same record name.
    try:
        return cast(dict[str, Any], parse_schema(raw, dict(named_types)))  # the schemas are records
    except UnknownType as exc:
        raise SchemaRegistryError(f"{path}: references unknown type {exc.name!r}") from None
    except Exception as exc:
        raise SchemaRegistryError(f"{path}: not a valid Avro schema: {exc}") from None


def _without_time_annotations(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _without_time_annotations(value)
            for key, value in node.items()
            if not (key == "logicalType" and value in _TIME_LOGICAL_TYPES)
        }
    if isinstance(node, list):
        return [_without_time_annotations(item) for item in node]
    return node


def _load_named_types(types_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parses every ``types/*.avsc``; returns (declared, wire) named-type maps.

    Types may reference each other, so files are parsed in rounds until all resolve; no file
    order to maintain.
    """
    pending = {path: _read_json(path) for path in sorted(types_dir.glob("*.avsc"))}
    declared_types: dict[str, Any] = {}
    wire_types: dict[str, Any] = {}
    while pending:
        unresolved: dict[Path, str] = {}
        for path, raw in pending.items():
            if not isinstance(raw, dict) or "name" not in raw:
                raise SchemaRegistryError(f"{path}: a shared type must be a named Avro type")
            # Parse into copies: a failed parse can leave a half-registered name behind.
            declared_trial, wire_trial = dict(declared_types), dict(wire_types)
            try:
                parse_schema(raw, declared_trial)
                parse_schema(_without_time_annotations(raw), wire_trial)
            except UnknownType as exc:
                unresolved[path] = exc.name
                continue
            except Exception as exc:
                raise SchemaRegistryError(f"{path}: not a valid Avro schema: {exc}") from None
            declared_types, wire_types = declared_trial, wire_trial
        if len(unresolved) == len(pending):
            path, name = next(iter(unresolved.items()))
            raise SchemaRegistryError(f"{path}: references unknown type {name!r}")
        pending = {path: pending[path] for path in unresolved}
    return declared_types, wire_types


def _read_registry_file(path: Path) -> list[tuple[str, int, int, Path]]:
    """Validated (subject, version, id, schema path) entries of ``registry.yaml`` (read with
    the configuration files' one reader: a duplicated subject is an error, not a lost one)."""
    document = read_yaml(path, lambda problems, source: SchemaRegistryError(f"{source}: {problems[0]}"))
    if not isinstance(document, dict) or not document:
        raise SchemaRegistryError(f"{path}: expected a mapping of subject -> list of versions")

    entries = []
    seen_ids: dict[int, str] = {}
    for subject, versions in document.items():
        where = f"{path}: subject {subject!r}"
        if not isinstance(subject, str) or not _SUBJECT_NAME.match(subject):
            raise SchemaRegistryError(f"{where}: subject names are lower_snake_case")
        if not isinstance(versions, list) or not versions:
            raise SchemaRegistryError(f"{where}: expected a non-empty list of {{version, id, file}}")
        seen_versions: set[int] = set()
        for entry in versions:
            if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
                raise SchemaRegistryError(f"{where}: each entry needs exactly version, id and file")
            version, schema_id, file = entry["version"], entry["id"], entry["file"]
            if not _is_int(version) or version < 1 or version in seen_versions:
                raise SchemaRegistryError(f"{where}: version {version!r} must be a unique integer >= 1")
            if not _is_int(schema_id) or not 0 <= schema_id <= MAX_SCHEMA_ID:
                raise SchemaRegistryError(f"{where} v{version}: id {schema_id!r} must be a uint32")
            if schema_id in seen_ids:
                raise SchemaRegistryError(
                    f"{where} v{version}: id {schema_id} is already used by {seen_ids[schema_id]}"
                )
            if not isinstance(file, str) or Path(file).is_absolute() or ".." in Path(file).parts:
                raise SchemaRegistryError(f"{where} v{version}: file must be a path inside {path.parent}")
            seen_versions.add(version)
            seen_ids[schema_id] = f"{subject} v{version}"
            entries.append((subject, version, schema_id, path.parent / file))
    return entries


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_backward_compatible(versions: tuple[RegisteredSchema, ...]) -> None:
    """The latest version must read every older one: same record name, new fields defaulted.

    (Type changes are not checked here; the unit tests read old messages with the new schema.)
    """
    latest = versions[-1]
    for older in versions[:-1]:
        if older.schema["name"] != latest.schema["name"]:
            raise SchemaRegistryError(
                f"{latest.file}: record name {latest.schema['name']!r} differs from "
                f"{older.schema['name']!r} in version {older.version}; readers could not resolve it"
            )
        older_names = set(older.field_names)
        for latest_field in latest.schema["fields"]:
            known_as = {latest_field["name"], *latest_field.get("aliases", ())}
            if not known_as & older_names and "default" not in latest_field:
                raise SchemaRegistryError(
                    f"{latest.file}: field {latest_field['name']!r} is new since version "
                    f"{older.version} and has no default, so version {older.version} messages "
                    "could not be read"
                )
