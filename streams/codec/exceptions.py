"""Codec errors. ``DecodeError`` carries a dead-letter reason code (docs/contracts.md)."""

from __future__ import annotations

from agents.capture.exceptions import REASON_CODES, check_reason_code

__all__ = [
    "REASON_CODES", "CodecError", "DecodeError", "EncodeError", "RegistryUnavailable", "SchemaIncompatible",
    "SchemaRegistryError",
]


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
        self.reason_code = check_reason_code(reason_code)
        self.detail = detail
        super().__init__(f"{reason_code}: {detail}")


class EncodeError(CodecError):
    """Our own code built a record that does not match its schema: a bug, raised loudly.

    The message names the subject and field, not the value.
    """
