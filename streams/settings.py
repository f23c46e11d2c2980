"""Runtime settings: one frozen object, built once by the entry point and passed in.

Nothing reads the environment at import time. `Settings()` reads ``LEADFLOW_*``
environment variables (and an optional ``.env`` file) when the CLI or a test builds it;
the same names are used by docker-compose.yml (a test keeps the two in step).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, field_validator
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

    # --- Redis ---------------------------------------------------------------------
    redis_url: str = "redis://127.0.0.1:16379/0"

    # --- Metrics -------------------------------------------------------------------
    metrics_port: int = Field(9464, ge=0, le=65535)  # 0 = do not serve

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

    @property
    def broker_url(self) -> str:
        return ",".join(f"kafka://{s.strip()}" for s in self.kafka_bootstrap.split(","))


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides.

    Raises SettingsError naming the key (as its LEADFLOW_* variable) and the bad value.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "?"
            problems.append(
                f"LEADFLOW_{key.upper()} ({key}) = {err.get('input')!r}: {err['msg']}"
            )
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
