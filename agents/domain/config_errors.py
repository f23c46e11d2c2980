"""Readable configuration errors: one pydantic error as ``key.path: what was wrong, got <value>``.

Shared by every YAML-configured capability (scoring model, routing, roster, SLA) so they all
name the bad key and value the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

EXPECTED = {
    "float_type": "expected a number", "float_parsing": "expected a number",
    "int_type": "expected an integer", "int_parsing": "expected an integer",
    "int_from_float": "expected an integer", "string_type": "expected a string",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "list_type": "expected a list", "dict_type": "expected a mapping",
    "model_type": "expected a mapping", "model_attributes_type": "expected a mapping",
}
# For closed vocabularies; scoring keeps pydantic's own message, which lists the values.
ALLOWED_VALUES = {"literal_error": "expected one of the allowed values"}


def key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def describe_error(
    err: dict[str, Any],
    label: Callable[[tuple[Any, ...]], str] | None = None,
    expected: Mapping[str, str] = EXPECTED,
) -> str:
    """``label(loc)`` may rewrite the key path (the roster names list entries by their id)."""
    key = label(err["loc"]) if label else key_path(err["loc"])
    kind = err["type"]
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "extra_forbidden":
        return f"{key}: unknown key (value {err.get('input')!r})"
    what = expected.get(kind) or err["msg"][:1].lower() + err["msg"][1:]
    return f"{key}: {what}, got {err.get('input')!r}"


def yaml_error_line(exc: Exception) -> str:
    """A YAML syntax error (``yaml.MarkedYAMLError``) as one line with its position:
    ``not valid YAML at line 3, column 9: mapping values are not allowed here``.

    PyYAML's own text spans several lines with a source excerpt; configuration errors are
    printed as one line by the CLI and the worker."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if not problem:
        problem = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    context = getattr(exc, "context", None)
    text = "not valid YAML"
    if mark is not None:
        text += f" at line {mark.line + 1}, column {mark.column + 1}"
    text += f": {problem}"
    if context and context != problem:
        text += f" ({context})"
    return " ".join(text.split())
