"""JSON input: parse with orjson, then coerce the object to the shape of an Avro schema.

The coercer is compiled once per schema into nested closures, so per message there is no
schema walking. What it accepts (docs/contracts.md):

- absent optional fields get their default; ``null`` for a non-nullable field counts as absent;
- timestamp fields take int epoch ms or an ISO-8601 string with a zone;
- long/int take integral numbers (``120.0``), double/float take ints;
- unknown extra fields are ignored (publishers may add fields before the schema does).

Error details name the field and the expected type, never the value: it could be an email.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from streams.codec.exceptions import MISSING_FIELD, SCHEMA_INVALID, UNDECODABLE, DecodeError, SchemaRegistryError

# (value, path of the value for error messages) -> coerced value
Coercer = Callable[[Any, str], Any]

_TIMESTAMP_MILLIS = "timestamp-millis"
_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)
_ABSENT = object()


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson messages describe the syntax error without quoting the input.
        raise DecodeError(UNDECODABLE, f"not valid JSON at byte {exc.pos}: {exc.msg}") from None
    if not isinstance(value, dict):  # the caller sniffs '{', so only reachable if it did not
        raise DecodeError(SCHEMA_INVALID, f"expected a JSON object, got {_json_type(value)}")
    return value


def compile_record_coercer(declared_schema: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Coercer for a parsed record schema *as declared* (it must keep its logical types)."""
    compiler = _Compiler(declared_schema.get("__named_schemas", {}))
    coerce = compiler.compile(declared_schema)

    def coerce_record(value: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = coerce(value, "")  # a record coercer returns a dict
        return record

    return coerce_record


def iso_to_epoch_ms(text: str) -> int:
    """ISO-8601 with a zone (``Z`` or an offset) -> epoch ms; ValueError otherwise."""
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"  # Python < 3.11 does not read "Z"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("timestamp has no zone")
    return (moment - _EPOCH) // _ONE_MS


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _wrong_type(path: str, expected: str, value: Any) -> DecodeError:
    return DecodeError(SCHEMA_INVALID, f"{path or 'message'}: expected {expected}, got {_json_type(value)}")


def _type_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema.rpartition(".")[2]
    if isinstance(schema, list):
        return " or ".join(_type_name(branch) for branch in schema)
    if schema.get("logicalType") == _TIMESTAMP_MILLIS:
        return "timestamp (epoch ms or ISO-8601 with zone)"
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        return f"{kind} {_type_name(schema['name'])}"
    return kind if isinstance(kind, str) and kind not in ("array", "map") else str(kind)


def _copier(default: Any) -> Callable[[], Any]:
    if isinstance(default, (list, dict)):
        return lambda: copy.deepcopy(default)  # never hand out a shared mutable default
    return lambda: default


class _Compiler:
    def __init__(self, named_schemas: dict[str, Any]) -> None:
        self._named = named_schemas
        self._by_name: dict[str, Coercer] = {}

    def compile(self, schema: Any, nullable: bool = False) -> Coercer:
        """``nullable`` only changes the error text ("string or null")."""
        if isinstance(schema, list):
            return self._union(schema)
        if isinstance(schema, str):
            if schema in self._named:
                return self._named_type(schema)
            return self._primitive(schema, schema, nullable)
        kind = schema["type"]
        if schema.get("logicalType") == _TIMESTAMP_MILLIS and kind == "long":
            return self._timestamp(nullable)
        if kind in ("record", "error"):
            return self._record(schema)
        if kind == "array":
            return self._array(schema, nullable)
        if kind == "map":
            return self._map(schema, nullable)
        if kind == "enum":
            return self._enum(schema, nullable)
        if kind == "fixed":
            return self._fixed(schema, nullable)
        if isinstance(kind, str) and kind in self._named:
            return self._named_type(kind)
        return self._primitive(kind, _type_name(schema), nullable)

    def _named_type(self, name: str) -> Coercer:
        if name not in self._by_name:
            # Placeholder first, so a recursive type refers to itself through the table.
            self._by_name[name] = lambda value, path: self._by_name[name](value, path)
            self._by_name[name] = self.compile(self._named[name])
        return self._by_name[name]

    def _union(self, branches: list[Any]) -> Coercer:
        non_null = [b for b in branches if b != "null"]
        accepts_null = len(non_null) < len(branches)
        if len(non_null) == 1:
            inner = self.compile(non_null[0], nullable=accepts_null)

            def coerce_optional(value: Any, path: str) -> Any:
                return None if value is None else inner(value, path)

            return coerce_optional

        options = [self.compile(branch) for branch in non_null]
        expected = _type_name(branches)

        def coerce_union(value: Any, path: str) -> Any:
            if value is None and accepts_null:
                return None
            for option in options:
                try:
                    return option(value, path)
                except DecodeError:
                    continue
            raise _wrong_type(path, expected, value)

        return coerce_union

    def _record(self, schema: dict[str, Any]) -> Coercer:
        fields = []
        for field in schema["fields"]:
            field_type = field["type"]
            nullable = field_type == "null" or (isinstance(field_type, list) and "null" in field_type)
            default = _copier(field["default"]) if "default" in field else None
            fields.append((field["name"], self.compile(field_type), nullable, default))
        expected = f"object ({_type_name(schema['name'])})"

        def coerce_record(value: Any, path: str) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise _wrong_type(path, expected, value)
            out = {}
            for name, coerce, nullable, default in fields:
                field_path = f"{path}.{name}" if path else name
                item = value.get(name, _ABSENT)
                if item is _ABSENT or (item is None and not nullable):
                    if default is None:
                        raise DecodeError(MISSING_FIELD, f"{field_path}: required field is missing")
                    out[name] = default()
                else:
                    out[name] = coerce(item, field_path)
            return out

        return coerce_record

    def _array(self, schema: dict[str, Any], nullable: bool) -> Coercer:
        coerce_item = self.compile(schema["items"])
        expected = "array" + (" or null" if nullable else "")

        def coerce_array(value: Any, path: str) -> list[Any]:
            if not isinstance(value, list):
                raise _wrong_type(path, expected, value)
            return [coerce_item(item, f"{path}[{i}]") for i, item in enumerate(value)]

        return coerce_array

    def _map(self, schema: dict[str, Any], nullable: bool) -> Coercer:
        coerce_value = self.compile(schema["values"])
        expected = "object" + (" or null" if nullable else "")

        def coerce_map(value: Any, path: str) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise _wrong_type(path, expected, value)
            # Map keys are data (could be anything): keep them out of the error path.
            return {key: coerce_value(item, f"{path}.<value>") for key, item in value.items()}

        return coerce_map

    def _enum(self, schema: dict[str, Any], nullable: bool) -> Coercer:
        symbols = frozenset(schema["symbols"])
        expected = f"one of {', '.join(schema['symbols'])}" + (" or null" if nullable else "")

        def coerce_enum(value: Any, path: str) -> str:
            if not isinstance(value, str) or value not in symbols:
                raise DecodeError(SCHEMA_INVALID, f"{path}: expected {expected}")
            return value

        return coerce_enum

    def _fixed(self, schema: dict[str, Any], nullable: bool) -> Coercer:
        size = schema["size"]
        coerce_bytes = self._primitive("bytes", f"{size} bytes", nullable)

        def coerce_fixed(value: Any, path: str) -> bytes:
            data: bytes = coerce_bytes(value, path)
            if len(data) != size:
                raise DecodeError(SCHEMA_INVALID, f"{path}: expected {size} bytes, got {len(data)}")
            return data

        return coerce_fixed

    def _timestamp(self, nullable: bool) -> Coercer:
        expected = "epoch milliseconds or an ISO-8601 string with a zone" + (" or null" if nullable else "")
        low, high = _INT_RANGES["long"]

        def coerce_timestamp(value: Any, path: str) -> int:
            if isinstance(value, str):
                try:
                    return iso_to_epoch_ms(value)
                except (ValueError, OverflowError):
                    raise DecodeError(
                        SCHEMA_INVALID, f"{path}: expected {expected}, got a string that is not one"
                    ) from None
            millis = _as_integral(value)
            if millis is None or not low <= millis <= high:
                raise _wrong_type(path, expected, value)
            return millis

        return coerce_timestamp

    def _primitive(self, kind: str, label: str, nullable: bool) -> Coercer:
        expected = label + (" or null" if nullable else "")
        if kind in _INT_RANGES:
            low, high = _INT_RANGES[kind]

            def coerce_integer(value: Any, path: str) -> int:
                number = _as_integral(value)
                if number is None:
                    raise _wrong_type(path, expected, value)
                if not low <= number <= high:
                    raise DecodeError(SCHEMA_INVALID, f"{path}: number out of range for Avro {kind}")
                return number

            return coerce_integer
        if kind in ("double", "float"):

            def coerce_real(value: Any, path: str) -> float:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise _wrong_type(path, expected, value)
                return float(value)

            return coerce_real
        if kind == "bytes":

            def coerce_bytes(value: Any, path: str) -> bytes:
                # Avro's JSON encoding: bytes are a string of code points 0-255.
                if not isinstance(value, str):
                    raise _wrong_type(path, expected, value)
                try:
                    return value.encode("latin-1")
                except UnicodeEncodeError:
                    raise DecodeError(SCHEMA_INVALID, f"{path}: bytes must be code points 0-255") from None

            return coerce_bytes
        python_types = {"string": str, "boolean": bool, "null": type(None)}
        if kind not in python_types:
            raise SchemaRegistryError(f"cannot coerce JSON to Avro type {kind!r}")
        python_type = python_types[kind]

        def coerce_exact(value: Any, path: str) -> Any:
            if type(value) is not python_type:
                raise _wrong_type(path, expected, value)
            return value

        return coerce_exact


def _as_integral(value: Any) -> int | None:
    """int for ints and integral floats (``120.0``); None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
