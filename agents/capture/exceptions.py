"""Why capture's rules refuse a decoded input: a bounded vocabulary, used verbatim as the
dead-letter ``reason_code`` and as a metric label.

The codec owns its own decode codes (``streams.codec.exceptions.DECODE_REASON_CODES``) and the
runtime its ``processing_error``/``unknown_kind`` (``streams.deadletter``); together they are
the list in docs/contracts.md (``leadflow.compose.DEAD_LETTER_REASONS``, checked by a test).
These rules stay pure, so they name their codes themselves.
"""

from __future__ import annotations

MISSING_FIELD = "missing_field"
INVALID_VALUE = "invalid_value"
INVALID_EMAIL = "invalid_email"
UNKNOWN_KIND = "unknown_kind"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"

REASON_CODES = (MISSING_FIELD, INVALID_VALUE, INVALID_EMAIL, UNKNOWN_KIND, TIMESTAMP_OUT_OF_RANGE)


def check_reason_code(reason_code: str) -> str:
    """Guards the bounded vocabulary: a typo here would mint a new metric label silently."""
    if reason_code not in REASON_CODES:
        raise ValueError(f"unknown reason code {reason_code!r}; expected one of {REASON_CODES}")
    return reason_code


class Rejected(Exception):
    """A decoded input that breaks a business rule; goes to the dead-letter topic.

    ``detail`` is readable and names the field; it never contains an email address.
    """

    def __init__(self, reason_code: str, detail: str) -> None:
        self.reason_code = check_reason_code(reason_code)
        self.detail = detail
        super().__init__(f"{reason_code}: {detail}")
