"""leadflow's schemas in a remote, Confluent-compatible Schema Registry.

- ``register``: at start, every schema of the file registry goes under its topic's subject
  (TopicNameStrategy, ``<topic>-value``); the shared named types in ``schemas/types/`` go under
  their full names (``io.leadflow.BreakdownItem``) and are passed as schema references, as
  Confluent's serializers expect. A schema the subject's compatibility rules refuse stops the
  start with ``SchemaIncompatible`` naming the subject.
- ``writer``: an id leadflow has not seen (a publisher registered a new version) is fetched
  once with its references and parsed; the codec caches it. Ids the registry does not know
  are remembered for a while, so garbage with random ids does not mean a request per message.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from fastavro import parse_schema

from streams.codec.avro import TYPES_DIR, RegisteredSchema, SchemaRegistry, _read_json, _without_time_annotations
from streams.codec.exceptions import SchemaIncompatible, SchemaRegistryError
from streams.codec.registry_client import Reference, RegistryClient, RemoteSchema

log = logging.getLogger(__name__)

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})
_MISS_CACHE_MAX = 10_000


class RemoteSchemas:
    def __init__(
        self,
        client: RegistryClient,
        value_subjects: Mapping[str, str],
        *,
        miss_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``value_subjects``: leadflow subject (``lead_scored``) -> registry subject
        (``leadflow.out.lead-scored-value``)."""
        self.client = client
        self.value_subjects = dict(value_subjects)
        self._miss_ttl_s = miss_ttl_s
        self._clock = clock
        self._misses: dict[int, float] = {}  # schema id -> when to ask again

    @property
    def url(self) -> str:
        return self.client.url

    # --- registration (at start) -------------------------------------------------------

    def register(self, registry: SchemaRegistry) -> dict[tuple[str, int], int]:
        """Registers (or finds) every version of every subject; returns (subject, version) -> id.

        A subject new to the registry gets leadflow's whole history, oldest first, so old
        publishers' schemas are known; an existing subject gets only the latest version, if it
        lacks it (older versions are looked up, never appended after newer ones).
        """
        started = time.monotonic()
        references = self._register_types(_types_dir(registry))
        ids: dict[tuple[str, int], int] = {}
        for subject in registry.subjects:
            registry_subject = self.value_subjects.get(subject)
            if registry_subject is None:
                continue
            versions = registry.versions(subject)
            is_new = None
            for registered in versions:
                assert registered.file is not None  # SchemaRegistry.load() gives every version its file
                text, refs = _schema_text(_read_json(registered.file), references)
                found = self.client.lookup(registry_subject, text, refs)
                if found is not None:
                    assert found.id is not None  # a lookup answers with the id and the version
                    ids[(subject, registered.version)] = found.id
                    continue
                if is_new is None:  # only asked when a version is missing
                    is_new = self._subject_is_new(registry_subject)
                if registered is versions[-1] or is_new:
                    ids[(subject, registered.version)] = self._add(
                        registry_subject, text, refs, what=f"{subject} v{registered.version} ({registered.file.name})"
                    )
        log.info(
            "schemas registered in the Schema Registry at %s (%d subjects) in %.2fs",
            self.url,
            len(self.value_subjects),
            time.monotonic() - started,
        )
        return ids

    def _register_types(self, types_dir: Path) -> dict[str, Reference]:
        """Shared named types, each under its full name, referenced ones first."""
        raw_types = {
            _full_name(raw): (path, raw)
            for path, raw in ((path, _read_json(path)) for path in sorted(types_dir.glob("*.avsc")))
        }
        references: dict[str, Reference] = {}
        for name in _dependency_order(raw_types):
            path, raw = raw_types[name]
            text, refs = _schema_text(raw, references)
            found = self.client.lookup(name, text, refs)
            if found is None:
                self._add(name, text, refs, what=f"shared type {name} ({path.name})")
                found = self.client.lookup(name, text, refs)
                if found is None:
                    raise SchemaRegistryError(
                        f"Schema Registry at {self.url}: registered {name} but cannot find it again"
                    )
            assert found.version is not None  # a lookup answers with the id and the version
            references[name] = Reference(name, name, int(found.version))
        return references

    def _add(self, subject: str, text: str, refs: tuple[Reference, ...], *, what: str) -> int:
        # The 409 of the register call is the compatibility check: Apicurio 3.0's ccompat
        # compatibility endpoint cannot evaluate schemas with references (HTTP 422), while its
        # register call applies the subject's rule to them, as Confluent's does.
        try:
            schema_id = self.client.register(subject, text, refs)
        except SchemaIncompatible as exc:
            raise SchemaIncompatible(
                f"{what} is not compatible with subject {subject!r} in the Schema Registry at {self.url} "
                f"(the registry says: {exc.detail}); make the change compatible (new fields need defaults) "
                "or change the subject's compatibility setting"
            ) from None
        log.info("registered %s under subject %s (schema id %d)", what, subject, schema_id)
        return schema_id

    def _subject_is_new(self, subject: str) -> bool:
        return self.client.subject_versions(subject) is None

    # --- unknown ids (per message, rare) -----------------------------------------------------

    def writer(self, schema_id: int, subject_of_name: Mapping[str, str]) -> RegisteredSchema | None:
        """The writer schema of an id leadflow has not seen, or None if the registry does not
        know it (or it is not Avro). Raises RegistryUnavailable, SchemaRegistryError (unparseable)."""
        retry_at = self._misses.get(schema_id)
        if retry_at is not None:
            if self._clock() < retry_at:
                return None
            del self._misses[schema_id]
        remote = self.client.schema_by_id(schema_id)
        if remote is None or remote.schema_type.upper() != "AVRO":
            self._remember_miss(schema_id)
            return None
        declared_types: dict[str, Any] = {}
        wire_types: dict[str, Any] = {}
        self._parse_references(remote.references, declared_types, wire_types, seen=set())
        raw = _loads(remote.schema, f"schema id {schema_id}")
        declared = _parse(raw, declared_types, f"schema id {schema_id}")
        wire = _parse(_without_time_annotations(raw), wire_types, f"schema id {schema_id}")
        name = wire.get("name", "") if isinstance(wire, dict) else ""
        subject = subject_of_name.get(name, name or f"schema id {schema_id}")
        log.info("fetched schema id %d (%s) from the Schema Registry at %s", schema_id, subject, self.url)
        return RegisteredSchema(schema_id, subject, 0, wire, declared, None)

    def remember_miss(self, schema_id: int) -> None:
        """Do not ask about this id again for a while (e.g. the registry was unreachable)."""
        self._remember_miss(schema_id)

    def _remember_miss(self, schema_id: int) -> None:
        if len(self._misses) >= _MISS_CACHE_MAX:
            self._misses.clear()
        self._misses[schema_id] = self._clock() + self._miss_ttl_s

    def _parse_references(
        self,
        references: tuple[Reference, ...],
        declared_types: dict[str, Any],
        wire_types: dict[str, Any],
        seen: set[tuple[str, int]],
    ) -> None:
        for ref in references:
            key = (ref.subject, ref.version)
            if key in seen:
                continue
            seen.add(key)
            remote: RemoteSchema = self.client.subject_version(ref.subject, ref.version)
            self._parse_references(remote.references, declared_types, wire_types, seen)
            raw = _loads(remote.schema, f"reference {ref.subject} v{ref.version}")
            _parse(raw, declared_types, ref.subject)
            _parse(_without_time_annotations(raw), wire_types, ref.subject)


# --- helpers -------------------------------------------------------------------------------


def _types_dir(registry: SchemaRegistry) -> Path:
    for subject in registry.subjects:
        for registered in registry.versions(subject):
            if registered.file is not None:
                return registered.file.parent / TYPES_DIR
    raise SchemaRegistryError("the schema registry was not loaded from files; nothing to register")


def _schema_text(raw: dict[str, Any], known: Mapping[str, Reference]) -> tuple[str, tuple[Reference, ...]]:
    """Compact JSON (whitespace edits in a file do not make a new version) and the references
    to the shared types it names."""
    names = sorted(name for name in _referenced_names(raw) if name in known)
    return json.dumps(raw, separators=(",", ":"), ensure_ascii=False), tuple(known[n] for n in names)


def _full_name(raw: dict[str, Any], namespace: str | None = None) -> str:
    name: str = raw["name"]
    if "." in name:
        return name
    namespace = raw.get("namespace", namespace)
    return f"{namespace}.{name}" if namespace else name


def _referenced_names(raw: Any) -> set[str]:
    """Full names of named types used by reference (not defined inline) in a schema."""
    used: set[str] = set()
    defined: set[str] = set()

    def walk(node: Any, namespace: str | None) -> None:
        if isinstance(node, str):
            if node not in _PRIMITIVES:
                used.add(node if "." in node or not namespace else f"{namespace}.{node}")
        elif isinstance(node, list):
            for branch in node:
                walk(branch, namespace)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in _NAMED_KINDS and "name" in node:
                full = _full_name(node, namespace)
                defined.add(full)
                namespace = full.rpartition(".")[0] or None
            if kind in ("record", "error"):
                for field in node.get("fields", ()):
                    walk(field.get("type"), namespace)
            elif kind == "array":
                walk(node.get("items"), namespace)
            elif kind == "map":
                walk(node.get("values"), namespace)
            elif not isinstance(kind, str) or kind not in _NAMED_KINDS:
                walk(kind, namespace)

    walk(raw, raw.get("namespace") if isinstance(raw, dict) else None)
    return used - defined


def _dependency_order(raw_types: Mapping[str, tuple[Path, dict[str, Any]]]) -> Iterator[str]:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> Iterator[str]:
        if name in done:
            return
        if name in path:
            raise SchemaRegistryError(f"shared types reference each other in a cycle: {' -> '.join(path + (name,))}")
        for dependency in sorted(_referenced_names(raw_types[name][1]) & raw_types.keys()):
            yield from visit(dependency, path + (name,))
        done.add(name)
        yield name

    for name in sorted(raw_types):
        yield from visit(name, ())


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise SchemaRegistryError(f"{where} in the Schema Registry is not valid JSON") from None


def _parse(raw: Any, named_types: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], parse_schema(raw, named_types))  # the schemas are records
    except Exception as exc:
        raise SchemaRegistryError(
            f"{where} in the Schema Registry is not a valid Avro schema ({type(exc).__name__})"
        ) from None
