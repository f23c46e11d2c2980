"""Readable configuration errors: one pydantic error as ``key.path: what was wrong, got <value>``.

Shared by every YAML-configured capability (scoring model, routing, roster, SLA) so they all
name the bad key and value the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from configio.messages import MAX_ECHO_CHARS, echo, yaml_error_line  # noqa: F401 (re-exported)

EXPECTED = {
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "finite_number": "expected a finite number (not NaN or infinity)",
}
# For closed vocabularies; scoring keeps pydantic's own message, which lists the values.
ALLOWED_VALUES = {"literal_error": "expected one of the allowed values"}


# Bounds on what an error message repeats from the input (echo: configio.messages, re-exported
# here), and a file with thousands of bad entries is one big line.
MAX_PROBLEM_CHARS = 500
MAX_PROBLEMS = 50


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
    err: Mapping[str, Any],  # a pydantic ErrorDetails
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
