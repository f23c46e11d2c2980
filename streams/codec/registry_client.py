"""A small client for the Confluent Schema Registry REST API (Confluent, Apicurio's ccompat,
Redpanda and others speak it): register, look up, check compatibility, fetch by id.

Messages name the registry by its URL *without* user info, never a credential. Every error is
one line: ``RegistryUnavailable`` (network, TLS, auth, 5xx: the registry cannot be used) or
``SchemaIncompatible`` (the registry refused a schema under its compatibility rules).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from streams.codec.exceptions import RegistryUnavailable, SchemaIncompatible

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_ACCEPT = f"{_CONTENT_TYPE}, application/json"
# Confluent error codes (Apicurio's ccompat uses the same): 40401 subject, 40402 version,
# 40403 schema not found.
_NOT_FOUND_CODES = frozenset({40401, 40402, 40403})
_MAX_DETAIL_CHARS = 300

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class Reference:
    """A schema reference: a named type (``name``) defined by ``subject`` at ``version``."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True, slots=True)
class RemoteSchema:
    id: int | None
    schema: str
    references: tuple[Reference, ...] = ()
    schema_type: str = "AVRO"
    version: int | None = None


def display_url(url: str) -> str:
    """The URL without user info (``https://user:pw@host/x`` -> ``https://host/x``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


class RegistryClient:
    """Synchronous: used at start (registration) and for the rare unknown id on the hot path,
    whose result is cached by the caller."""

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx  # imported here: ~0.2 s that only registry users should pay

        # httpx logs every request at INFO: noise in a worker's log.
        logging.getLogger("httpx").setLevel(max(logging.getLogger("httpx").level, logging.WARNING))
        parts = urlsplit(url)
        # Credentials may come in the URL (as Confluent's clients accept); explicit settings win.
        username = username or (parts.username and unquote(parts.username)) or None
        password = password or (parts.password and unquote(parts.password)) or None
        self.url = display_url(url)
        verify = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        self._client = httpx.Client(
            base_url=self.url + "/",
            auth=(username, password or "") if username else None,
            timeout=timeout_s,
            headers={"Accept": _ACCEPT},
            # TLS is the transport's business (a client's own `verify` is ignored with one);
            # retries=2 repeats failed connection attempts only, never a sent request.
            transport=transport or httpx.HTTPTransport(verify=verify, retries=2),
        )

    def close(self) -> None:
        self._client.close()

    # --- API ------------------------------------------------------------------------------

    def lookup(self, subject: str, schema: str, references: tuple[Reference, ...] = ()) -> RemoteSchema | None:
        """The version of ``subject`` holding exactly this schema, or None (no such subject or schema)."""
        body = self._request("POST", f"subjects/{_path(subject)}", _schema_body(schema, references), not_found_ok=True)
        if body is None:
            return None
        return RemoteSchema(int(body["id"]), schema, references, version=int(body["version"]))

    def register(self, subject: str, schema: str, references: tuple[Reference, ...] = ()) -> int:
        """Registers (or finds) ``schema`` under ``subject``; returns its global id."""
        body = self._request(
            "POST", f"subjects/{_path(subject)}/versions", _schema_body(schema, references), subject=subject
        )
        return int(body["id"])

    def subject_versions(self, subject: str) -> list[int] | None:
        """Version numbers of ``subject``, or None if the registry has no such subject."""
        body = self._request("GET", f"subjects/{_path(subject)}/versions", not_found_ok=True)
        return None if body is None else [int(v) for v in body]

    def schema_by_id(self, schema_id: int) -> RemoteSchema | None:
        body = self._request("GET", f"schemas/ids/{schema_id}", not_found_ok=True)
        if body is None:
            return None
        return _remote_schema(body, schema_id)

    def subject_version(self, subject: str, version: int) -> RemoteSchema:
        """A referenced schema (reference lists name subject and version)."""
        body = self._request("GET", f"subjects/{_path(subject)}/versions/{version}")
        return _remote_schema(body, body.get("id"))

    # --- internals --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None = None,
        *,
        not_found_ok: bool = False,
        subject: str | None = None,
    ) -> Any:
        import httpx

        try:
            response = self._client.request(
                method, path, json=json, headers={"Content-Type": _CONTENT_TYPE} if json is not None else None
            )
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"Schema Registry at {self.url}: {_describe_transport_error(exc)}") from None
        if response.status_code == 404 and not_found_ok and _error_code(response) in _NOT_FOUND_CODES | {None}:
            return None
        if response.status_code == 409 and subject is not None:
            raise SchemaIncompatible(
                f"Schema Registry at {self.url} refused the schema for subject {subject!r} as incompatible "
                f"with its registered versions: {_error_message(response)}",
                detail=_error_message(response),
            )
        if response.status_code in (401, 403):
            raise RegistryUnavailable(
                f"Schema Registry at {self.url}: {'authentication failed' if response.status_code == 401 else 'access denied'} "
                f"(HTTP {response.status_code}); check LEADFLOW_SCHEMA_REGISTRY_USERNAME / "
                "LEADFLOW_SCHEMA_REGISTRY_PASSWORD"
            )
        if response.status_code >= 300:
            raise RegistryUnavailable(
                f"Schema Registry at {self.url}: {method} /{path.split('/')[0]} answered HTTP "
                f"{response.status_code}: {_error_message(response)}"
            )
        try:
            return response.json()
        except ValueError:
            raise RegistryUnavailable(
                f"Schema Registry at {self.url}: {method} /{path} did not answer JSON; is this a "
                "Confluent-compatible API (e.g. Apicurio's /apis/ccompat/v7)?"
            ) from None


def _schema_body(schema: str, references: tuple[Reference, ...]) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": schema, "schemaType": "AVRO"}
    if references:
        body["references"] = [ref.to_json() for ref in references]
    return body


def _remote_schema(body: dict[str, Any], schema_id: int | None) -> RemoteSchema:
    references = tuple(
        Reference(ref["name"], ref["subject"], int(ref["version"])) for ref in body.get("references") or ()
    )
    return RemoteSchema(
        None if schema_id is None else int(schema_id),
        body["schema"],
        references,
        body.get("schemaType") or "AVRO",
        body.get("version"),
    )


def _path(subject: str) -> str:
    return quote(subject, safe="")


def _error_code(response: httpx.Response) -> int | None:
    try:
        return int(response.json().get("error_code"))
    except (ValueError, TypeError, AttributeError):
        return None


def _error_message(response: httpx.Response) -> str:
    try:
        message = str(response.json().get("message") or "")
    except (ValueError, AttributeError):
        message = response.text
    message = " ".join(message.split()) or "(no message)"
    return message[:_MAX_DETAIL_CHARS]


def _describe_transport_error(exc: httpx.HTTPError) -> str:
    """The cause in a few words: httpx's message can carry the request URL with its user info."""
    import httpx

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({cause.verify_message}); check LEADFLOW_SCHEMA_REGISTRY_CA_FILE"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed ({cause.reason or type(cause).__name__})"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({_first_line(exc)})"
    return f"{type(exc).__name__} ({_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:_MAX_DETAIL_CHARS]
