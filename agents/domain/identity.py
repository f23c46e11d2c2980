"""Lead identity: one lead per normalized email; lead ids are deterministic and carry no PII."""

from __future__ import annotations

import hashlib
import hmac
import re

# Pragmatic address check (RFC 5322 is far wider; this rejects what breaks routing).
_EMAIL_RE = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)


class InvalidEmail(ValueError):
    pass


def normalize_email(raw: str) -> str:
    """Lower-case, trimmed; rejects anything that is not a plausible mailbox.

    Plus-addressing is kept (``a+x@b.com`` and ``a@b.com`` are different leads): vendors
    and customers use it for separate inboxes, and merging them silently loses data.
    """
    email = (raw or "").strip().lower()
    if len(email) > 254 or not _EMAIL_RE.match(email):
        raise InvalidEmail("not a valid email address")
    local, _, domain = email.rpartition("@")
    if len(local) > 64 or ".." in email or local.startswith(".") or local.endswith("."):
        raise InvalidEmail("not a valid email address")
    return email


def email_domain(email: str) -> str:
    return email.rpartition("@")[2]


def lead_id_for_email(email: str, key: bytes | None = None) -> str:
    """Deterministic id for a normalized email: the same email is always the same lead.

    ``key`` (``Settings.lead_id_key_bytes``, from LEADFLOW_LEAD_ID_KEY): HMAC-SHA256 under that
    secret, so nobody without it can recompute a person's id from their email. Without a key:
    the unkeyed BLAKE2b id of earlier versions (compatible, but recomputable by anyone). Both are
    ``ld_`` + 20 hex digits, so every contract and validation stays the same; the two kinds of
    ids must not be mixed under one topic prefix (docs/privacy.md, "Keyed lead ids").
    """
    data = email.encode("utf-8")
    if key:
        return "ld_" + hmac.new(key, data, hashlib.sha256).hexdigest()[:20]
    return "ld_" + hashlib.blake2b(data, digest_size=10).hexdigest()


def redact_email(email: str) -> str:
    """For logs: keeps the domain, hides the mailbox."""
    return "***@" + email_domain(email) if "@" in email else "***"


def visitor_key(visitor_id: str) -> bytes:
    """Kafka/table key of an anonymous visitor (``vi_`` + 20 hex digits). Visitor ids come from
    cookies; hashing keeps key sizes bounded and uniform."""
    return b"vi_" + hashlib.blake2b(visitor_id.encode(), digest_size=10).hexdigest().encode()


def deterministic_id(*parts: object, prefix: str = "") -> str:
    """Stable id for an output derived from its causes (redelivery gives the same id)."""
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(str(part).encode("utf-8"))
        h.update(b"\x1f")
    return prefix + h.hexdigest()
