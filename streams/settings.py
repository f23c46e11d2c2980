"""Runtime settings: one frozen object, built once by the entry point and passed in.

Nothing reads the environment at import time. `Settings()` reads ``LEADFLOW_*``
environment variables (and an optional ``.env`` file) when the CLI or a test builds it;
the same names are used by docker-compose.yml (a test keeps the two in step).
"""

from __future__ import annotations

from pathlib import Path

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """Bad configuration; the message names the offending key and value."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEADFLOW_", frozen=True, extra="forbid", env_file=None
    )

    # --- Kafka / Faust -------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:19092"
    app_id: str = "leadflow"
    topic_prefix: str = "leadflow"
    topic_partitions: int = Field(4, ge=1, le=1024)
    topic_replication: int = Field(1, ge=1, le=7)
    store: str = "rocksdb://"
    data_dir: Path = REPO_ROOT / ".leadflow" / "worker"
    # Short session timeout so a worker killed with -9 gives its partitions back quickly.
    broker_session_timeout_s: float = Field(10.0, gt=0)
    broker_heartbeat_interval_s: float = Field(1.0, gt=0)
    broker_commit_interval_s: float = Field(1.0, gt=0)
    stream_buffer_maxsize: int = Field(4096, ge=1)
    standby_replicas: int = Field(0, ge=0)

    # --- Kafka security (every client: worker, admin, CLI, bench) --------------------
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None  # or kafka_sasl_password_file
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_ca_file: Path | None = None  # PEM; default: the system trust store
    kafka_ssl_cert_file: Path | None = None  # PEM client certificate (mTLS)
    kafka_ssl_key_file: Path | None = None  # PEM client key (mTLS)
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    kafka_connect_timeout_s: float = Field(15.0, gt=0, le=300)  # start-up check of the brokers

    # --- Redis ---------------------------------------------------------------------
    # redis://host:port/db, or rediss:// for TLS. Prefer the password settings to a password
    # in the URL; either way it is redacted wherever the URL is shown.
    redis_url: str = "redis://127.0.0.1:16379/0"
    redis_username: str | None = None  # ACL user
    redis_password: SecretStr | None = None  # or redis_password_file
    redis_password_file: Path | None = None
    redis_ssl_ca_file: Path | None = None
    redis_ssl_cert_file: Path | None = None
    redis_ssl_key_file: Path | None = None
    redis_ssl_check_hostname: bool = True

    # --- Schema Registry (optional) and output format ------------------------------
    # Unset: the file registry (schemas/registry.yaml) frames messages, offline. Set: a
    # Confluent-compatible registry's ids (subjects <topic>-value), basic auth from these.
    schema_registry_url: str | None = None
    schema_registry_username: str | None = None
    schema_registry_password: SecretStr | None = None  # or schema_registry_password_file
    schema_registry_password_file: Path | None = None
    schema_registry_ca_file: Path | None = None
    # avro: framed Avro (file ids or the registry's); json: one orjson object per message
    # with the same field names, for sinks without Avro (Kafka Connect JsonConverter, HTTP).
    output_format: Literal["avro", "json"] = "avro"

    # --- Metrics -------------------------------------------------------------------
    metrics_port: int = Field(9464, ge=0, le=65535)  # 0 = do not serve
    # /metrics, /livez, /readyz bind here: loopback unless a container sets 0.0.0.0.
    metrics_host: str = Field("127.0.0.1", min_length=1)

    # --- Logs ----------------------------------------------------------------------
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for log shippers

    # --- Input validation (what counts as an absurd value) -------------------------
    max_message_bytes: int = Field(256 * 1024, ge=1024)
    max_field_chars: int = Field(2048, ge=16)
    max_event_age_days: int = Field(3 * 365, ge=1)
    max_clock_skew_s: int = Field(300, ge=0)
    max_company_size: int = Field(5_000_000, ge=1)
    dedup_window: int = Field(512, ge=1)  # event ids remembered per lead
    visitor_buffer_max: int = Field(200, ge=1)  # anonymous events kept per visitor

    # --- Timeouts (decay reviews, SLA clocks): bucket width and sweep period --------
    sweep_bucket_s: int = Field(10, ge=1)
    sweep_interval_s: float = Field(1.0, gt=0)

    # --- Business configuration files ---------------------------------------------
    scoring_model_path: Path = REPO_ROOT / "config" / "scoring-model.yaml"
    routing_config_path: Path = REPO_ROOT / "config" / "routing.yaml"  # priorities, rules, fallback
    roster_path: Path = REPO_ROOT / "config" / "roster.yaml"  # loaded into Redis by `leadflow roster load`
    sla_config_path: Path = REPO_ROOT / "config" / "sla.yaml"  # SLAs, escalation tiers, recycling
    redis_key_prefix: str = "leadflow"

    # --- Local dev stack -----------------------------------------------------------
    stack_dir: Path = REPO_ROOT / ".leadflow"
    kafka_version: str = "3.9.1"
    kafka_port: int = Field(19092, ge=1, le=65535)
    kafka_controller_port: int = Field(19093, ge=1, le=65535)
    kafka_heap: str = "512m"
    redis_port: int = Field(16379, ge=1, le=65535)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if value not in ("rocksdb://", "memory://"):
            raise ValueError(f"expected 'rocksdb://' or 'memory://', got {value!r}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            # Never echo the value: it may hold a password.
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_scheme(cls, value: str | None) -> str | None:
        if not value:  # empty (e.g. a blank compose variable) = no registry
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")  # not echoed: may hold a password
        return value.rstrip("/")

    @model_validator(mode="after")
    def _security_consistent(self) -> "Settings":
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            if not self.kafka_sasl_username:
                raise ValueError(f"LEADFLOW_KAFKA_SASL_USERNAME is required with {protocol}")
            if self.kafka_sasl_password is None and self.kafka_sasl_password_file is None:
                raise ValueError(
                    f"LEADFLOW_KAFKA_SASL_PASSWORD or LEADFLOW_KAFKA_SASL_PASSWORD_FILE is required with {protocol}"
                )
        for key in ("kafka_sasl_password", "redis_password", "schema_registry_password"):
            if getattr(self, key) is not None and getattr(self, f"{key}_file") is not None:
                raise ValueError(f"set LEADFLOW_{key.upper()} or LEADFLOW_{key.upper()}_FILE, not both")
        if bool(self.kafka_ssl_cert_file) != bool(self.kafka_ssl_key_file):
            raise ValueError("LEADFLOW_KAFKA_SSL_CERT_FILE and LEADFLOW_KAFKA_SSL_KEY_FILE go together (mTLS)")
        if bool(self.redis_ssl_cert_file) != bool(self.redis_ssl_key_file):
            raise ValueError("LEADFLOW_REDIS_SSL_CERT_FILE and LEADFLOW_REDIS_SSL_KEY_FILE go together (mTLS)")
        for key in ("kafka_sasl_password_file", "kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file",
                    "redis_password_file", "redis_ssl_ca_file", "redis_ssl_cert_file", "redis_ssl_key_file",
                    "schema_registry_password_file", "schema_registry_ca_file"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"LEADFLOW_{key.upper()}: no readable file at {str(path)[:200]!r}")
        return self

    @property
    def kafka_sasl_password_value(self) -> str | None:
        return _secret(self.kafka_sasl_password, self.kafka_sasl_password_file)

    @property
    def redis_password_value(self) -> str | None:
        return _secret(self.redis_password, self.redis_password_file)

    @property
    def schema_registry_password_value(self) -> str | None:
        return _secret(self.schema_registry_password, self.schema_registry_password_file)

    @property
    def broker_url(self) -> str:
        return ",".join(f"kafka://{s.strip()}" for s in self.kafka_bootstrap.split(","))


def _secret(value: SecretStr | None, path: Path | None) -> str | None:
    """A secret from its setting or its file (Kubernetes/Docker secrets), trailing newline cut."""
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    return None


# Values of these keys are never echoed in errors.
_SECRET_KEY_PARTS = ("password", "url", "token", "secret")
_MAX_ECHO_CHARS = 200


def _echo(key: str, value: object) -> str:
    if any(part in key for part in _SECRET_KEY_PARTS):
        return "<redacted>"
    text = repr(value)
    return text if len(text) <= _MAX_ECHO_CHARS else text[:_MAX_ECHO_CHARS] + f"... ({len(text)} chars)"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides.

    Raises SettingsError naming the key (as its LEADFLOW_* variable) and the bad value.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            if not key:  # a rule across keys: the message names them
                problems.append(message)
                continue
            problems.append(f"LEADFLOW_{key.upper()} ({key}) = {_echo(key, err.get('input'))}: {message}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
