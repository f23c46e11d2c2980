"""Runtime settings: one frozen object, built once by the entry point and passed in.

Nothing reads the environment at import time. `Settings()` reads ``LEADFLOW_*``
environment variables (and an optional ``.env`` file) when the CLI or a test builds it;
the same names are used by docker-compose.yml (a test keeps the two in step).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.topic_names import TopicNames

REPO_ROOT = Path(__file__).resolve().parent.parent


# Kafka topic names: these characters, at most 249 of them (org.apache.kafka.common.internals.Topic).
TOPIC_CHARS = r"^[a-zA-Z0-9._-]+$"
MAX_TOPIC_CHARS = 249
# Faust names changelog topics <app_id>-<table>-changelog: room for the longest table name.
MAX_APP_ID_CHARS = 180


class SettingsError(ValueError):
    """Bad configuration; the message names the offending key and value."""


class Settings(BaseSettings):
    # allow_inf_nan: 'nan' compares false with everything, 'inf' disables a limit; neither is a setting.
    model_config = SettingsConfigDict(
        env_prefix="LEADFLOW_", frozen=True, extra="forbid", env_file=None, allow_inf_nan=False
    )

    # --- Kafka / Faust -------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:19092"
    # Both become Kafka topic names (<topic_prefix>.in.form-submits, <app_id>-<table>-changelog):
    # Kafka's legal characters only, checked with the full names in _topic_names_legal.
    app_id: str = Field("leadflow", min_length=1, max_length=MAX_APP_ID_CHARS)
    topic_prefix: str = Field("leadflow", min_length=1)
    topic_partitions: int = Field(4, ge=1, le=1024)
    topic_replication: int = Field(1, ge=1, le=7)
    store: str = "rocksdb://"
    data_dir: Path = REPO_ROOT / ".leadflow" / "worker"
    # Short session timeout so a worker killed with -9 gives its partitions back quickly.
    # Upper bounds here and below: beyond them a value is a typo, not a choice (a broker caps
    # session timeouts at 30 min by default; a 1e20 s sweep bucket would never fire).
    broker_session_timeout_s: float = Field(10.0, gt=0, le=1800)
    broker_heartbeat_interval_s: float = Field(1.0, gt=0, le=600)
    broker_commit_interval_s: float = Field(1.0, gt=0, le=3600)
    stream_buffer_maxsize: int = Field(4096, ge=1, le=1_000_000)
    # How long the producer waits to fill a batch: a few ms batch outputs and changelog records
    # into fewer requests (issue 14: +12% events/s, -22% broker CPU at 5 ms); 0 sends at once.
    producer_linger_ms: int = Field(5, ge=0, le=1000)
    producer_max_batch_bytes: int = Field(256 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Bytes fetched per partition per request. Table recovery reads the changelogs with it:
    # 8 MiB read 3,841 records/s against 1,229 at Faust's 1 MiB (200k leads, make bench-recovery).
    consumer_max_fetch_bytes: int = Field(8 * 1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024)
    # A table partition whose local state is this many changelog records behind (a lost volume,
    # a new worker) is read in bulk by a plain consumer before Faust's own, per-record recovery
    # (streams/faust_bulk_restore.py: 1M leads in about a fifth of the time); 0 = Faust only.
    bulk_restore_min_records: int = Field(10_000, ge=0, le=1_000_000_000)
    # The worker's event loop: uvloop (issue 14: +9% events/s) or the standard library's.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # Freeze what is alive when the worker is first ready out of garbage collections: full
    # collections walked it every few seconds, the longest pauses of the live loop (streams/gc_tuning.py).
    gc_freeze_at_ready: bool = True
    # Young (generation 1) collections between two looks at a full one (Python's default: 10). A
    # full collection walks every tracked object (100-180 ms in a worker that has drained a
    # backlog); fewer of them keep those pauses out of the live tail (streams/gc_tuning.py).
    gc_full_collection_every: int = Field(100, ge=1, le=100_000)
    standby_replicas: int = Field(0, ge=0, le=7)
    # Broker unreachable: reconnect after base, 2x base, ... up to the cap (+-20%), one log line
    # per interval, and a stop that waits on Kafka gives up after the timeout (streams/kafka_outage.py).
    kafka_reconnect_backoff_s: float = Field(0.1, gt=0, le=60)
    kafka_reconnect_backoff_max_s: float = Field(10.0, gt=0, le=300)
    kafka_outage_log_interval_s: float = Field(10.0, gt=0, le=3600)
    kafka_outage_stop_timeout_s: float = Field(3.0, gt=0, le=300)

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

    # --- Lead API (leadflow/api: GET /leads/{lead_id}, POST /leads/lookup) ----------
    # Every worker serves it through Faust's web server and forwards a request to the worker
    # that owns the lead's partition. 0 = do not serve.
    api_port: int = Field(6066, ge=0, le=65535)
    # Loopback unless a token is set: the API shows scores, owners and touches (no emails).
    api_bind: str = Field("127.0.0.1", min_length=1)
    # How the other workers reach this one (Kubernetes: the pod IP); default: api_bind, or
    # this host's name when api_bind is a wildcard.
    api_host: str | None = None
    # Requests need "Authorization: Bearer <token>" when set; required to bind beyond loopback.
    api_token: SecretStr | None = None  # or api_token_file
    api_token_file: Path | None = None
    # A forwarded request (to the owning worker) gives up after this long: 503.
    api_forward_timeout_s: float = Field(5.0, gt=0, le=120)
    # Where `leadflow explain` sends its request.
    api_url: str = Field("http://127.0.0.1:6066", min_length=1)

    # --- Logs ----------------------------------------------------------------------
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for log shippers

    # --- Input validation (what counts as an absurd value) -------------------------
    max_message_bytes: int = Field(256 * 1024, ge=1024, le=100 * 1024 * 1024)
    max_field_chars: int = Field(2048, ge=16, le=1_000_000)
    max_event_age_days: int = Field(3 * 365, ge=1, le=100 * 365)
    max_clock_skew_s: int = Field(300, ge=0, le=86_400)
    max_company_size: int = Field(5_000_000, ge=1, le=100_000_000)
    dedup_window: int = Field(512, ge=1, le=100_000)  # event ids remembered per lead
    visitor_buffer_max: int = Field(200, ge=1, le=100_000)  # anonymous events kept per visitor

    # --- Event-time order of a lead's events (agents/scoring/reorder.py) -------------
    # A deployment property, not a business rule: how far apart (event time) the input topics
    # can deliver a lead's events after a restart or an outage. MQL crossings follow event time
    # within it; 0 turns it off (arrival order, as before issue 16). 180 s covers a broker outage
    # of a minute or a failover plus the catch-up after it (make chaos: 60 s was exceeded by both).
    reorder_window_s: float = Field(180.0, ge=0, le=3600)
    # Processed at most this long after its event time = live: decided at once. Older events
    # (catch-up) have their MQL decided reorder_window_s after their event time.
    live_event_bound_s: float = Field(2.0, ge=0, le=600)
    # Lead states of rebuilt reorder paths kept in memory, so the next out-of-order or catch-up
    # event of a lead re-applies only what changed (agents.scoring.reorder.PathCache; a few KB
    # each, a path has one per event in its window); 0 turns the cache off.
    reorder_path_cache_steps: int = Field(8192, ge=0, le=1_000_000)
    # Opt-in (0 = off, the default): lead and visitor states written between two offset commits
    # are held in memory and written once per key at the commit (streams/write_behind.py), up
    # to this many keys per table. A draining worker does 15-25 % more events/s with 12-18 %
    # less CPU per event, but after a large catch-up the live tail latency was worse (p95
    # event->lead_scored at 200 events/s 208-685 ms against 21 ms; docs/benchmarks.md).
    state_write_behind_keys: int = Field(0, ge=0, le=1_000_000)

    # --- Dead letters (streams.deadletter) -----------------------------------------
    # The record size limit is read from the topics' max.message.bytes at start; this much
    # stays free under it for Kafka's record/batch framing, so a dead letter always fits.
    dead_letter_margin_bytes: int = Field(16 * 1024, ge=256, le=1024 * 1024)
    # A dead letter the broker refuses is retried (partition blocked, offset not committed)
    # with exponential backoff from the first delay up to the cap, until it is accepted.
    dead_letter_retry_initial_s: float = Field(0.5, gt=0, le=60)
    dead_letter_retry_max_s: float = Field(30.0, gt=0, le=600)
    # An acknowledgement that never comes (no error either) counts as a failure and is re-sent.
    dead_letter_ack_timeout_s: float = Field(60.0, gt=0, le=3600)

    # --- Redis outages (streams.redis_client: the one retry policy of every Redis call) --
    # While Redis is away (down, loading, failing over, full) a call is retried with exponential
    # backoff from the first delay up to the cap; the partition waits, nothing is dropped.
    redis_retry_initial_s: float = Field(0.1, gt=0, le=60)
    redis_retry_max_s: float = Field(5.0, gt=0, le=300)

    # --- Timeouts (decay reviews, SLA clocks): bucket width and sweep period --------
    sweep_bucket_s: int = Field(10, ge=1, le=3600)  # as sla.yaml sweep.bucket_seconds
    sweep_interval_s: float = Field(1.0, gt=0, le=3600)
    # How often parked MQLs (roster_error: pending in routing.yaml) are tried again.
    routing_redrive_interval_s: float = Field(10.0, gt=0, le=3600)
    # Route an MQL in the scoring agent that emits it (one Kafka hop less to its assignment); the
    # routing agent still reads it from <p>.out.mqls and routes whatever the fast path left.
    routing_in_process: bool = True
    # The fast path's bound on each Redis call: slower (or Redis away) leaves the MQL to the
    # routing agent, and the fast path rests for LEADFLOW_REDIS_RETRY_MAX_S.
    routing_in_process_redis_timeout_s: float = Field(0.5, gt=0, le=60)

    # --- Business configuration files ---------------------------------------------
    scoring_model_path: Path = REPO_ROOT / "config" / "scoring-model.yaml"
    routing_config_path: Path = REPO_ROOT / "config" / "routing.yaml"  # priorities, rules, fallback
    roster_path: Path = REPO_ROOT / "config" / "roster.yaml"  # loaded into Redis by `leadflow roster load`
    sla_config_path: Path = REPO_ROOT / "config" / "sla.yaml"  # SLAs, escalation tiers, recycling
    # A candidate scoring model scored in shadow next to the live one (never emits MQLs; its
    # disagreements go to <prefix>.out.shadow-decisions). Unset: no shadow, no extra cost.
    shadow_model_path: Path | None = None
    # `leadflow calibrate` refuses a cohort with fewer MQLs whose outcome is known (converted or
    # lost): below ~200 a conversion rate is +-7 points wide at 95% (docs/model-tuning.md).
    calibration_min_outcomes: int = Field(200, ge=10, le=100_000_000)
    # Empty would put leadflow's keys at the top of a shared Redis (":roster:doc"), mixed with others'.
    redis_key_prefix: str = Field("leadflow", min_length=1, max_length=100, pattern=r"^\S+$")

    # --- Privacy: keyed lead ids, erasure, retention (docs/privacy.md) ------------------
    # Set: lead ids are HMAC-SHA256(key, email), not recomputable from an email without it.
    # Unset: the unkeyed ids of earlier versions. Changing it changes every lead id: migrate
    # into a fresh topic prefix (docs/privacy.md, "Keyed lead ids").
    lead_id_key: SecretStr | None = None  # or lead_id_key_file
    lead_id_key_file: Path | None = None
    # After `leadflow forget` / a CRM erasure_requested: new_lead = a later event for the same
    # email starts a new lead; suppress = it is dropped (keyed-hash suppression list, no email).
    erasure_mode: Literal["new_lead", "suppress"] = "new_lead"
    # Keys the suppression list; defaults to lead_id_key. One of the two is needed for suppress.
    suppression_key: SecretStr | None = None  # or suppression_key_file
    suppression_key_file: Path | None = None
    # Retention of internal topics and the dead-letter topic (hold emails and names): hours.
    internal_retention_hours: int = Field(168, ge=1, le=87_600)  # at most 10 years
    # Retention of input and output topics (out.mqls holds emails): hours, -1 = unlimited.
    io_retention_hours: int = Field(168, ge=-1, le=87_600)
    # Changelogs are compacted; an erased value is compacted away at most this long after its
    # tombstone (max.compaction.lag.ms), and the tombstone itself kept this long (delete.retention.ms).
    changelog_max_compaction_lag_hours: int = Field(24, ge=1, le=87_600)
    changelog_tombstone_retention_hours: int = Field(24, ge=1, le=87_600)

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

    @field_validator("app_id", "topic_prefix")
    @classmethod
    def _topic_chars(cls, value: str) -> str:
        if not re.fullmatch(TOPIC_CHARS, value):
            raise ValueError("part of Kafka topic names, which allow only letters, digits, '.', '_' and '-'")
        return value

    @model_validator(mode="after")
    def _topic_names_legal(self) -> Settings:
        longest = max(TopicNames.for_prefix(self.topic_prefix).all(), key=len)
        if len(longest) > MAX_TOPIC_CHARS:
            raise ValueError(
                f"LEADFLOW_TOPIC_PREFIX is too long: topic {longest[:80]!r}... would have "
                f"{len(longest)} characters (Kafka allows {MAX_TOPIC_CHARS})"
            )
        return self

    @model_validator(mode="after")
    def _live_bound_within_window(self) -> Settings:
        if self.reorder_window_s and self.live_event_bound_s >= self.reorder_window_s:
            raise ValueError(
                f"LEADFLOW_LIVE_EVENT_BOUND_S ({self.live_event_bound_s:g}) must be below "
                f"LEADFLOW_REORDER_WINDOW_S ({self.reorder_window_s:g}): events that late are catch-up"
            )
        return self

    @model_validator(mode="after")
    def _backoff_base_within_cap(self) -> Settings:
        if self.kafka_reconnect_backoff_s > self.kafka_reconnect_backoff_max_s:
            raise ValueError(
                f"LEADFLOW_KAFKA_RECONNECT_BACKOFF_S ({self.kafka_reconnect_backoff_s:g}) must not "
                f"exceed LEADFLOW_KAFKA_RECONNECT_BACKOFF_MAX_S ({self.kafka_reconnect_backoff_max_s:g})"
            )
        return self

    @model_validator(mode="after")
    def _security_consistent(self) -> Settings:
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            if not self.kafka_sasl_username:
                raise ValueError(f"LEADFLOW_KAFKA_SASL_USERNAME is required with {protocol}")
            if self.kafka_sasl_password is None and self.kafka_sasl_password_file is None:
                raise ValueError(
                    f"LEADFLOW_KAFKA_SASL_PASSWORD or LEADFLOW_KAFKA_SASL_PASSWORD_FILE is required with {protocol}"
                )
        for key in (
            "kafka_sasl_password",
            "redis_password",
            "schema_registry_password",
            "lead_id_key",
            "suppression_key",
            "api_token",
        ):
            if getattr(self, key) is not None and getattr(self, f"{key}_file") is not None:
                raise ValueError(f"set LEADFLOW_{key.upper()} or LEADFLOW_{key.upper()}_FILE, not both")
        if bool(self.kafka_ssl_cert_file) != bool(self.kafka_ssl_key_file):
            raise ValueError("LEADFLOW_KAFKA_SSL_CERT_FILE and LEADFLOW_KAFKA_SSL_KEY_FILE go together (mTLS)")
        if bool(self.redis_ssl_cert_file) != bool(self.redis_ssl_key_file):
            raise ValueError("LEADFLOW_REDIS_SSL_CERT_FILE and LEADFLOW_REDIS_SSL_KEY_FILE go together (mTLS)")
        for key in (
            "kafka_sasl_password_file",
            "kafka_ssl_ca_file",
            "kafka_ssl_cert_file",
            "kafka_ssl_key_file",
            "redis_password_file",
            "redis_ssl_ca_file",
            "redis_ssl_cert_file",
            "redis_ssl_key_file",
            "schema_registry_password_file",
            "schema_registry_ca_file",
            "lead_id_key_file",
            "suppression_key_file",
            "api_token_file",
        ):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"LEADFLOW_{key.upper()}: no readable file at {str(path)[:200]!r}")
        if self.api_port and self.api_token_value is None and not is_loopback(self.api_bind):
            raise ValueError(
                f"LEADFLOW_API_BIND={self.api_bind[:100]!r} serves the lead API beyond this machine: "
                "set LEADFLOW_API_TOKEN(_FILE), or bind to 127.0.0.1"
            )
        if self.erasure_mode == "suppress" and self.suppression_key_bytes is None:
            raise ValueError(
                "LEADFLOW_ERASURE_MODE=suppress needs a key for the suppression list: set "
                "LEADFLOW_SUPPRESSION_KEY(_FILE) or LEADFLOW_LEAD_ID_KEY(_FILE)"
            )
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
    def api_token_value(self) -> str | None:
        return _secret(self.api_token, self.api_token_file) or None

    @property
    def api_canonical_url(self) -> str:
        """The URL the other workers forward lead API requests to."""
        host = self.api_host or (self.api_bind if self.api_bind not in WILDCARD_BINDS else socket.gethostname())
        return f"http://{host}:{self.api_port}"

    @property
    def lead_id_key_bytes(self) -> bytes | None:
        """The lead-id HMAC key (None: unkeyed ids); pass it to ``lead_id_for_email``."""
        value = _secret(self.lead_id_key, self.lead_id_key_file)
        return value.encode("utf-8") if value else None

    @property
    def suppression_key_bytes(self) -> bytes | None:
        value = _secret(self.suppression_key, self.suppression_key_file)
        return value.encode("utf-8") if value else self.lead_id_key_bytes

    @property
    def broker_url(self) -> str:
        return ",".join(f"kafka://{s.strip()}" for s in self.kafka_bootstrap.split(","))


WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(value: SecretStr | None, path: Path | None) -> str | None:
    """A secret from its setting or its file (Kubernetes/Docker secrets), trailing newline cut."""
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    return None


# Values of these keys are never echoed in errors.
_SECRET_KEY_PARTS = ("password", "url", "token", "secret", "lead_id_key", "suppression_key")
_MAX_ECHO_CHARS = 200


def _echo(key: str, value: object) -> str:
    if any(part in key for part in _SECRET_KEY_PARTS):
        return "<redacted>"
    text = repr(value)
    return text if len(text) <= _MAX_ECHO_CHARS else text[:_MAX_ECHO_CHARS] + f"... ({len(text)} chars)"


# LEADFLOW_* variables of leadflow's own harnesses (tests, benchmarks) that are not settings.
_NOT_SETTINGS = ("LEADFLOW_TEST_", "LEADFLOW_BENCH_")


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning per LEADFLOW_* variable that is no setting, naming the closest setting.

    Settings ignore such variables, so a typo (LEADFLOW_TOPIC_PARTITONS) silently keeps the
    default. A warning and not an error: other tools may share the prefix."""
    known = {name.upper(): f"LEADFLOW_{name.upper()}" for name in Settings.model_fields}
    warnings = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith("LEADFLOW_") or upper.startswith(_NOT_SETTINGS):
            continue
        suffix = upper.removeprefix("LEADFLOW_")
        if suffix in known:
            continue
        close = difflib.get_close_matches(suffix, known, n=1, cutoff=0.6)
        hint = f"; did you mean {known[close[0]]}?" if close else ""
        warnings.append(f"{variable[:100]} is not a leadflow setting and is ignored{hint}")
    return warnings


_BOUND_TEXT = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _allowed_range(key: str) -> str | None:
    """A numeric setting's bounds as text (``>= 1 and <= 3600``), None for other settings."""
    field = Settings.model_fields.get(key)
    bounds = [
        f"{sign} {getattr(m, attr)}"
        for m in (field.metadata if field else ())
        for attr, sign in _BOUND_TEXT
        if getattr(m, attr, None) is not None
    ]
    return " and ".join(bounds) or None


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
            allowed = _allowed_range(key)
            if allowed and err["type"] != "missing":
                message += f" (allowed: {allowed})"
            problems.append(f"LEADFLOW_{key.upper()} ({key}) = {_echo(key, err.get('input'))}: {message}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
