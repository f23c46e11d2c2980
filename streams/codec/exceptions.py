"""Codec errors. ``DecodeError`` carries one of the codec's own dead-letter reason codes
(docs/contracts.md, "Dead-letter reason codes"; the rest of that list belongs to the runtime,
``streams.deadletter.RUNTIME_REASON_CODES``, and to capture's rules)."""

from __future__ import annotations

__all__ = [
    "DECODE_REASON_CODES",
    "CodecError",
    "DecodeError",
    "EncodeError",
    "RegistryUnavailable",
    "SchemaIncompatible",
    "SchemaRegistryError",
]

# Why the codec cannot turn an input message into a record: used verbatim as the dead letter's
# ``reason_code`` and as a metric label, so the set stays closed.
TOO_LARGE = "too_large"
UNKNOWN_ENCODING = "unknown_encoding"
UNDECODABLE = "undecodable"
UNKNOWN_SCHEMA_ID = "unknown_schema_id"
SCHEMA_INVALID = "schema_invalid"
MISSING_FIELD = "missing_field"
DECODE_REASON_CODES = (TOO_LARGE, UNKNOWN_ENCODING, UNDECODABLE, UNKNOWN_SCHEMA_ID, SCHEMA_INVALID, MISSING_FIELD)


class CodecError(Exception):
    """Base of every error raised by ``streams.codec``."""


class SchemaRegistryError(CodecError):
    """The schema registry or a schema file is broken, or a subject/id is not registered.

    Load-time messages name the offending file.
    """


class RegistryUnavailable(SchemaRegistryError):
    """A remote Schema Registry cannot be used (network, TLS, authentication, server error).

    One line naming the registry URL without its user info, and the cause.
    """


class SchemaIncompatible(SchemaRegistryError):
    """The remote registry refuses one of leadflow's schemas under the subject's compatibility
    rules; the message names the subject, ``detail`` is the registry's own words."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class DecodeError(CodecError):
    """An input message cannot be turned into a record; it goes to the dead-letter topic.

    ``detail`` names the field and expected type, never the value (it could be an email).
    """

    def __init__(self, reason_code: str, detail: str) -> None:
        if reason_code not in DECODE_REASON_CODES:  # a typo would mint a new metric label silently
            raise ValueError(f"unknown reason code {reason_code!r}; expected one of {DECODE_REASON_CODES}")
        self.reason_code = reason_code
        self.detail = detail
        super().__init__(f"{reason_code}: {detail}")


class EncodeError(CodecError):
    """Our own code built a record that does not match its schema: a bug, raised loudly.

    The message names the subject and field, not the value.
    """
