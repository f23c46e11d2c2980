"""One-line problem texts shared by every configuration reader: a bounded ``repr`` of a bad
value (:func:`echo`) and a YAML syntax error with its position (:func:`yaml_error_line`).
``agents.domain.config_errors`` re-exports both."""

from __future__ import annotations

import reprlib

# Bounds on what an error message repeats from the input: a value echoed in full once made a
# 2.3 GB message (an alias bomb).
MAX_ECHO_CHARS = 200
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
