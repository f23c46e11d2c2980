"""Every Kafka and Redis client leadflow makes is configured here, from the one settings object.

Workers, topic administration, `publish`, `tail`, `replay`, `simulate`, `bench` and the tests all
call these functions, so a company's SASL/TLS settings apply everywhere (production parity) and
credentials are handled in one place. Nothing here logs a password, and URLs are shown only
through :func:`redact_url`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from streams.settings import Settings

if TYPE_CHECKING:  # the clients are imported on demand, never at import
    import redis
    import redis.asyncio
    from faust.types.auth import CredentialsT

    from streams.codec.registry_client import RegistryClient


class KafkaUnavailable(ConnectionError):
    """Kafka cannot be used with these settings; the message is one actionable line."""


class RedisUnavailable(ConnectionError):
    """Redis cannot be used with these settings; the message is one actionable line."""


# --- redaction ---------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (user names stay: they help debugging)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None and "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    netloc = f"{user}:***@{hostport}" if user else f":***@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def kafka_description(settings: Settings) -> str:
    """What we are connecting to, for messages: servers and protocol, never credentials."""
    text = f"Kafka at {settings.kafka_bootstrap} ({settings.kafka_security_protocol}"
    if settings.kafka_security_protocol.startswith("SASL_"):
        text += f", {settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username!r}"
    return text + ")"


# --- Kafka -------------------------------------------------------------------------------


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS context for SSL / SASL_SSL: the CA file (or system trust), optional client cert."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    return _ssl_context(
        ca_file=settings.kafka_ssl_ca_file,
        cert_file=settings.kafka_ssl_cert_file,
        key_file=settings.kafka_ssl_key_file,
        key_password=(settings.kafka_ssl_key_password.get_secret_value() if settings.kafka_ssl_key_password else None),
        check_hostname=settings.kafka_ssl_check_hostname,
    )


def _ssl_context(
    *,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    key_password: str | None,
    check_hostname: bool,
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None)
    context.check_hostname = check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    if cert_file:
        context.load_cert_chain(str(cert_file), str(key_file), password=key_password)
    return context


def kafka_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = kafka_ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL_"):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = settings.kafka_sasl_password_value
    return kwargs


def librdkafka_client_config(settings: Settings) -> dict[str, str]:
    """:func:`kafka_client_kwargs` in librdkafka's terms (confluent-kafka, Quix Streams): the same
    servers, protocol, SASL and TLS settings; librdkafka takes file paths, not an SSL context."""
    protocol = settings.kafka_security_protocol
    config = {"bootstrap.servers": settings.kafka_bootstrap, "security.protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        # No CA file means the system trust store; librdkafka's wheels look it up only with "probe".
        config["ssl.ca.location"] = str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else "probe"
        if settings.kafka_ssl_cert_file:
            config["ssl.certificate.location"] = str(settings.kafka_ssl_cert_file)
            config["ssl.key.location"] = str(settings.kafka_ssl_key_file)
        if settings.kafka_ssl_key_password:
            config["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
        config["ssl.endpoint.identification.algorithm"] = "https" if settings.kafka_ssl_check_hostname else "none"
    if protocol.startswith("SASL_"):
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username or ""
        config["sasl.password"] = settings.kafka_sasl_password_value or ""
    return config


def faust_broker_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` for the same settings (None = PLAINTEXT)."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(kafka_ssl_context(settings))
    credentials = faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password_value,
        ssl_context=kafka_ssl_context(settings),
        mechanism=settings.kafka_sasl_mechanism,
    )
    return credentials


async def check_kafka(settings: Settings, timeout_s: float | None = None) -> None:
    """Connect to each bootstrap server once (TCP, TLS, SASL) and ask for metadata.

    Raises :class:`KafkaUnavailable` with one line naming the servers, the protocol and the
    cause (refused, TLS verification, authentication), within ``timeout_s``. aiokafka itself
    logs these failures at length and retries; this check runs first so a person gets the cause.
    """
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    timeout_s = timeout_s if timeout_s is not None else settings.kafka_connect_timeout_s
    kwargs = kafka_client_kwargs(settings)
    kwargs.pop("bootstrap_servers")
    causes: list[str] = []
    deadline = time.monotonic() + timeout_s
    for server in settings.kafka_bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        remaining = max(0.5, deadline - time.monotonic())
        conn = None
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host.strip("[]"),
                    int(port),
                    request_timeout_ms=int(remaining * 1000),
                    client_id="leadflow-check",
                    **kwargs,
                ),
                timeout=remaining,
            )
            await asyncio.wait_for(conn.send(MetadataRequest([])), timeout=remaining)
            return
        except asyncio.TimeoutError:
            causes.append(f"{server.strip()}: no answer within {remaining:.0f}s")
        except Exception as exc:  # noqa: BLE001 - turned into one readable line below
            causes.append(f"{server.strip()}: {describe_kafka_error(exc, settings)}")
        finally:
            if conn is not None:
                conn.close()
    raise KafkaUnavailable(f"cannot connect to {kafka_description(settings)}: " + "; ".join(causes))


def _cause_chain(exc: BaseException, limit: int = 5) -> list[BaseException]:
    """The exception and what it was raised from (clients wrap TLS and auth errors)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < limit:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_kafka_error(exc: BaseException, settings: Settings) -> str:
    """A short, credential-free cause for a connection failure."""
    for error in _cause_chain(exc):
        if isinstance(error, ssl.SSLCertVerificationError):
            return (
                f"TLS certificate verification failed ({error.verify_message}); "
                "check LEADFLOW_KAFKA_SSL_CA_FILE and LEADFLOW_KAFKA_SSL_CHECK_HOSTNAME"
            )
        if isinstance(error, ssl.SSLError):
            return (
                f"TLS handshake failed ({error.reason or error}); is the listener {settings.kafka_security_protocol}?"
            )
        name = type(error).__name__
        if "Sasl" in name or "Authentication" in name or "IllegalSaslState" in name:
            return (
                f"authentication failed ({name}); check LEADFLOW_KAFKA_SASL_USERNAME, the password "
                "and LEADFLOW_KAFKA_SASL_MECHANISM"
            )
        if isinstance(error, ConnectionRefusedError):
            return "connection refused (is the broker running and the port right?)"
        if isinstance(error, OSError) and error.strerror:
            return error.strerror
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def check_kafka_sync(settings: Settings, timeout_s: float | None = None) -> None:
    """:func:`check_kafka` for synchronous callers (CLI commands, worker start)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(check_kafka(settings, timeout_s))
    finally:
        loop.close()


# --- Redis -------------------------------------------------------------------------------


def redis_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``Redis.from_url(settings.redis_url, **kwargs)`` (sync or asyncio)."""
    kwargs: dict[str, Any] = {}
    if settings.redis_username:
        kwargs["username"] = settings.redis_username
    password = settings.redis_password_value
    if password is not None:
        kwargs["password"] = password
    if settings.redis_url.startswith("rediss://"):
        kwargs["ssl_cert_reqs"] = "required"
        kwargs["ssl_check_hostname"] = settings.redis_ssl_check_hostname
        if settings.redis_ssl_ca_file:
            kwargs["ssl_ca_certs"] = str(settings.redis_ssl_ca_file)
        if settings.redis_ssl_cert_file:
            kwargs["ssl_certfile"] = str(settings.redis_ssl_cert_file)
            kwargs["ssl_keyfile"] = str(settings.redis_ssl_key_file)
    return kwargs


def redis_sync(settings: Settings, **overrides: Any) -> redis.Redis:
    """A ``redis.Redis`` client (created on demand, never at import)."""
    import redis

    options: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 5, "health_check_interval": 10}
    options.update(redis_client_kwargs(settings))
    options.update(overrides)
    return redis.Redis.from_url(settings.redis_url, **options)


def redis_async(settings: Settings, **overrides: Any) -> redis.asyncio.Redis:
    """A ``redis.asyncio.Redis`` client (created on demand, never at import)."""
    import redis.asyncio as aioredis

    options: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 5}
    options.update(redis_client_kwargs(settings))
    options.update(overrides)
    client: aioredis.Redis = aioredis.Redis.from_url(settings.redis_url, **options)  # from_url is unannotated
    return client


def describe_redis_error(exc: BaseException, settings: Settings) -> str:
    """One credential-free line: which Redis, and why it failed."""
    import redis

    where = f"Redis at {redact_url(settings.redis_url)}"
    for error in _cause_chain(exc):
        if isinstance(error, ssl.SSLCertVerificationError):
            return f"{where}: TLS certificate verification failed ({error.verify_message}); check LEADFLOW_REDIS_SSL_CA_FILE"
        if "NOAUTH" in str(error) or "Authentication required" in str(error):
            return f"{where}: authentication required; set LEADFLOW_REDIS_PASSWORD or LEADFLOW_REDIS_PASSWORD_FILE"
        if (
            isinstance(error, redis.exceptions.AuthenticationError)
            or "WRONGPASS" in str(error)
            or "invalid password" in str(error)
        ):
            return f"{where}: authentication failed; check LEADFLOW_REDIS_USERNAME / LEADFLOW_REDIS_PASSWORD"
        if isinstance(error, redis.exceptions.AuthenticationWrongNumberOfArgsError):
            return f"{where}: this server has no password set but one was given"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    password = settings.redis_password_value
    if password:
        text = text.replace(password, "***")
    return f"{where}: {text[:200]}"


# --- Schema Registry ---------------------------------------------------------------------


def schema_registry_client(settings: Settings) -> RegistryClient | None:
    """A client for LEADFLOW_SCHEMA_REGISTRY_URL (basic auth, CA file), or None when unset."""
    if not settings.schema_registry_url:
        return None
    from streams.codec.registry_client import RegistryClient

    return RegistryClient(
        settings.schema_registry_url,
        username=settings.schema_registry_username,
        password=settings.schema_registry_password_value,
        ca_file=settings.schema_registry_ca_file,
    )
