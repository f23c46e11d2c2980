"""Readable configuration errors: one pydantic error as ``key.path: what was wrong, got <value>``.

Shared by every YAML-configured capability (scoring model, routing, roster, SLA) so they all
name the bad key and value the same way."""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping
from typing import Any

EXPECTED = {
    "float_type": "expected a number", "float_parsing": "expected a number",
    "int_type": "expected an integer", "int_parsing": "expected an integer",
    "int_from_float": "expected an integer", "string_type": "expected a string",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "list_type": "expected a list", "dict_type": "expected a mapping",
    "model_type": "expected a mapping", "model_attributes_type": "expected a mapping",
    "finite_number": "expected a finite number (not NaN or infinity)",
}
# For closed vocabularies; scoring keeps pydantic's own message, which lists the values.
ALLOWED_VALUES = {"literal_error": "expected one of the allowed values"}


# Bounds on what an error message repeats from the input: a value echoed in full once made a
# 2.3 GB message (an alias bomb), and a file with thousands of bad entries is one big line.
MAX_ECHO_CHARS = 200
MAX_PROBLEM_CHARS = 500
MAX_PROBLEMS = 50
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 3, 8, 8, 8, 8
_REPR.maxstring = _REPR.maxother = MAX_ECHO_CHARS
_REPR.maxlong = 60


def echo(value: object, limit: int = MAX_ECHO_CHARS) -> str:
    """``repr(value)`` in at most ``limit`` characters, computed without walking the whole value."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a repr that fails (e.g. an int too long to print)
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bounded_problems(problems: list[str]) -> list[str]:
    """At most MAX_PROBLEMS lines of at most MAX_PROBLEM_CHARS each, then how many were left out."""
    lines = [p if len(p) <= MAX_PROBLEM_CHARS else p[: MAX_PROBLEM_CHARS - 3] + "..." for p in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        lines.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
    return lines


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
        return f"{key}: unknown key (value {echo(err.get('input'))})"
    what = expected.get(kind) or err["msg"][:1].lower() + err["msg"][1:]
    return f"{key}: {what}, got {echo(err.get('input'))}"


def removed_key_problems(raw: object, removed: Mapping[str, str]) -> list[str]:
    """A configuration key that no longer exists fails the load with what to do instead, not a
    bare "unknown key": ``removed`` maps dotted key paths (``default_lead_type.use_priority_hint``)
    to that advice. One problem per removed key present in ``raw`` (the parsed YAML)."""
    problems = []
    for dotted, advice in removed.items():
        *parents, last = dotted.split(".")
        node = raw
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            problems.append(f"{dotted}: removed, delete it - {advice}")
    return problems


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
