"""Why an input message is refused: a bounded vocabulary shared by the codec and the capture
rules, used verbatim as the dead-letter ``reason_code`` and as a metric label."""

from __future__ import annotations

TOO_LARGE = "too_large"
UNKNOWN_ENCODING = "unknown_encoding"
UNDECODABLE = "undecodable"
UNKNOWN_SCHEMA_ID = "unknown_schema_id"
SCHEMA_INVALID = "schema_invalid"
MISSING_FIELD = "missing_field"
INVALID_VALUE = "invalid_value"
INVALID_EMAIL = "invalid_email"
UNKNOWN_KIND = "unknown_kind"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
PROCESSING_ERROR = "processing_error"  # unexpected exception in our own code

# Exactly the list at the end of docs/contracts.md; a metric label set must stay bounded.
REASON_CODES = (
    TOO_LARGE, UNKNOWN_ENCODING, UNDECODABLE, UNKNOWN_SCHEMA_ID, SCHEMA_INVALID, MISSING_FIELD,
    INVALID_VALUE, INVALID_EMAIL, UNKNOWN_KIND, TIMESTAMP_OUT_OF_RANGE, PROCESSING_ERROR,
)


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
