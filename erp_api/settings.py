"""The one settings object: read from ``ERP_*`` environment variables and validated at start."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _var_dir() -> Path:
    """Where the local state lives (SQLite files, the local admin key, metric files): ``ERP_VAR_DIR``,
    else ``var/`` of the source checkout the package runs from, else the user's data directory;
    never the current directory, so a command run elsewhere finds the same database."""
    configured = os.environ.get("ERP_VAR_DIR", "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "alembic").is_dir():
        return checkout / "var"
    data_home = os.environ.get("XDG_DATA_HOME", "").strip() or Path.home() / ".local" / "share"
    return Path(data_home) / "erp-api"


VAR_DIR = _var_dir()
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


BODY_TIMEOUT_DEFAULT_SECONDS: Final = 20.0


class SettingsError(RuntimeError):
    """A setting has a value the service cannot start with; the message names the variable."""


class Settings(BaseSettings):
    """Everything configurable about the service; nothing else reads the environment.

    Test only: ``analysis_task_delay_seconds`` (a sleep inside each analysis run) and
    ``analysis_task_pause_after_commit_seconds`` (a sleep after a run's outcome is committed, before
    its message is acknowledged) let process tests kill a worker at a chosen point;
    ``rule_check_delay_seconds`` (a sleep before each round of the on-ingest rule check) lets them kill
    the server between a commit and its check. All stay 0.
    """

    model_config = SettingsConfigDict(env_prefix="ERP_", extra="ignore", frozen=True)

    # HTTP server
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    debug: bool = False
    workers: int = Field(1, ge=1, le=64)

    # Database
    database_url: str = f"sqlite+aiosqlite:///{VAR_DIR}/erp.sqlite3"
    db_pool_size: int = Field(10, ge=1, le=200)
    db_max_overflow: int = Field(10, ge=0, le=500)
    db_pool_pre_ping: bool = True
    db_pool_recycle_seconds: int = Field(1800, ge=1)
    db_pool_timeout_seconds: float = Field(5.0, gt=0)
    db_connect_timeout_seconds: float = Field(5.0, gt=0)
    db_statement_timeout_ms: int = Field(10_000, ge=0)
    db_echo: bool = False

    # Cache
    cache_backend: Literal["memory", "redis", "none"] = Field("memory", validate_default=True)
    cache_default_ttl_seconds: float = Field(60.0, gt=0)
    cache_max_entries: int = Field(20_000, ge=1)
    cache_max_bytes: int = Field(128 * 2**20, ge=1024)
    cache_prefix: str = Field("erp", min_length=1, max_length=64)
    # Redis only: a per-process L1 in front of Redis, kept coherent over pub/sub (cache/README.md).
    # auto = on with ERP_CACHE_BACKEND=redis. Another worker's invalidation reaches the L1 within
    # the coherence window; this worker's own invalidations at once.
    cache_l1: Literal["auto", "on", "off"] = "auto"
    cache_l1_max_entries: int = Field(10_000, ge=1)
    cache_coherence_window_ms: float = Field(50.0, ge=1, le=10_000)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_seconds: float = Field(0.25, gt=0, le=30)
    redis_pool_size: int = Field(50, ge=1, le=1000)

    # Background jobs (tasks/celery_app.py): Redis in production, an embedded SQLite broker by default
    broker_url: str = f"sqla+sqlite:///{VAR_DIR}/broker.sqlite3"
    result_backend_url: str | None = None
    broker_connect_timeout_seconds: float = Field(5.0, gt=0, le=60)
    broker_key_prefix: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9:._-]*$")
    broker_poll_interval_seconds: float = Field(0.1, gt=0, le=10)
    worker_concurrency: int = Field(2, ge=1, le=64)
    worker_metrics_port: int = Field(0, ge=0, le=65535)
    analysis_soft_time_limit_seconds: float = Field(60.0, gt=0)
    analysis_hard_time_limit_seconds: float = Field(90.0, gt=0)
    analysis_max_retries: int = Field(3, ge=0, le=10)
    analysis_retry_backoff_seconds: float = Field(1.0, gt=0, le=600)
    analysis_retry_backoff_max_seconds: float = Field(60.0, gt=0, le=3600)
    broker_visibility_timeout_seconds: float = Field(3600.0, gt=0)
    analysis_stuck_after_seconds: float = Field(600.0, gt=0)
    analysis_requeue_after_seconds: float = Field(120.0, gt=0)
    analysis_max_attempts: int = Field(5, ge=1, le=100)
    analysis_task_delay_seconds: float = Field(0.0, ge=0, le=600)  # test only
    analysis_task_pause_after_commit_seconds: float = Field(0.0, ge=0, le=600)  # test only
    reaper_interval_seconds: float = Field(60.0, gt=0)
    # A running analysis renews its heartbeat every interval; one silent for the timeout is requeued
    # by the recovery loop every worker runs (0 turns the loop off, leaving recovery to beat).
    analysis_heartbeat_interval_seconds: float = Field(10.0, gt=0, le=300)
    analysis_heartbeat_timeout_seconds: float = Field(60.0, gt=0, le=3600)
    analysis_recovery_interval_seconds: float = Field(30.0, ge=0, le=3600)
    # A queued analysis published this long ago whose message left the queue but was never claimed
    # (its worker died holding it) is published again by the same loop, not an hour later.
    analysis_redeliver_after_seconds: float = Field(60.0, gt=0, le=3600)
    cache_warm_interval_seconds: float = Field(300.0, ge=0)
    retention_enabled: bool = False
    retention_max_age_days: int = Field(365, ge=1)
    retention_interval_seconds: float = Field(86_400.0, gt=0)

    # Webhooks (erp_api/webhooks): each attempt's timeout (connect, read, write, and the whole), the
    # delays between attempts (one attempt more than delays: 8), how often the sweeper runs, and how
    # long a due delivery's task may stay unconsumed before the sweeper publishes another.
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    webhook_retry_delays_seconds: tuple[Annotated[float, Field(gt=0, le=7 * 86_400)], ...] = Field(
        (5.0, 30.0, 120.0, 600.0, 3600.0, 4 * 3600.0, 12 * 3600.0), max_length=20
    )
    webhook_sweep_interval_seconds: float = Field(30.0, gt=0)
    webhook_requeue_after_seconds: float = Field(60.0, gt=0)

    # Live events (erp_api/events): how long the event log keeps events (Last-Event-ID resumes
    # within it), how often each process reads new events (the wake-up on PostgreSQL makes this a
    # fallback), the SSE heartbeat and retry hint, each client's buffer, and clients per process.
    event_retention_hours: float = Field(24.0, gt=0, le=24 * 365)
    event_poll_interval_ms: float = Field(200.0, ge=10, le=10_000)
    event_heartbeat_seconds: float = Field(15.0, gt=0, le=3600)
    event_retry_ms: int = Field(3000, ge=0, le=600_000)
    event_client_buffer: int = Field(1000, ge=1, le=100_000)
    event_max_clients: int = Field(500, ge=1, le=100_000)
    event_replay_max: int = Field(10_000, ge=1, le=1_000_000)
    event_ticket_ttl_seconds: int = Field(60, ge=1, le=3600)

    # Requests
    max_body_bytes: int = Field(1 * 2**20, ge=1024)
    max_batch_body_bytes: int = Field(8 * 2**20, ge=1024)
    request_timeout_seconds: float = Field(30.0, gt=0)
    # HTTP edges (erp_api/serving.py, erp_api/security/body_limit.py): how long a connection may idle
    # between requests; take to send a request's headers (from its first byte, or from connecting);
    # take to send its whole body (else 408). ERP_REQUEST_TIMEOUT_SECONDS, from the headers' end to the
    # first byte of the answer, must be longer than the body's (else 504).
    keep_alive_timeout_seconds: float = Field(5.0, gt=0, le=300)
    header_timeout_seconds: float = Field(10.0, gt=0, le=300)
    # The most bytes a request line and its headers may take (else 431 and a close): uvicorn's h11
    # default; its httptools protocol, which serves, sets none.
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=2**20)
    body_timeout_seconds: float = Field(BODY_TIMEOUT_DEFAULT_SECONDS, gt=0, le=3600)
    # Addresses or networks (comma-separated) of the proxies whose X-Forwarded-For/-Proto are believed;
    # none by default: a client could otherwise pick the address its anonymous rate limit counts.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()

    # Exports (erp_api/exports): rows per keyset query, and the most rows one export sends (a larger
    # one is cut off by closing the connection, so that it never looks complete).
    export_chunk_rows: int = Field(5_000, ge=1, le=50_000)
    export_max_rows: int = Field(5_000_000, ge=1)

    # Measurement ingestion (erp_api/quality/ingest.py): single measurements arriving within the window
    # share one INSERT and one commit. Max rows 1 turns grouping off (one transaction per request).
    ingest_window_ms: float = Field(2.0, ge=0, le=1000)
    ingest_max_rows_per_commit: int = Field(1000, ge=1, le=5000)
    ingest_queue_bound: int = Field(10_000, ge=1, le=1_000_000)
    # On-ingest rule check (erp_api/quality/alerts/rule_check_runner.py): woken after each commit of
    # measurements, plus a sweep this often for rows a stopped or crashed process left behind.
    rule_check_sweep_seconds: float = Field(5.0, gt=0, le=3600)
    rule_check_delay_seconds: float = Field(0.0, ge=0, le=3600)  # test only

    # Observability and HTTP hygiene (erp_api/observability)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = True
    # Off only to measure what request ids, HTTP metrics and access logs cost (benchmarks).
    observability_middleware: bool = True
    # False: /metrics needs an admin key (erp_api/security/roles.py).
    metrics_public: bool = True
    # prometheus-client's own variable; `python -m erp_api serve` sets it up for ERP_WORKERS > 1.
    prometheus_multiproc_dir: Path | None = Field(
        None, validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR", "ERP_PROMETHEUS_MULTIPROC_DIR")
    )
    health_timeout_seconds: float = Field(1.0, gt=0, le=30)
    hsts_max_age_seconds: int = Field(0, ge=0)  # 0: no Strict-Transport-Security header
    cors_allow_origins: Annotated[tuple[str, ...], NoDecode] = ()
    gzip_minimum_bytes: int = Field(1024, ge=0)

    # Security (erp_api/security): API keys, roles, rate limits
    # Off only to measure what authentication costs (benchmarks): every request then acts as an admin.
    auth_enabled: bool = True
    # When set, an admin key with exactly this value exists after start (created once; never re-activated
    # once revoked). At least 32 characters of a random secret.
    bootstrap_admin_key: SecretStr | None = Field(None, min_length=32, max_length=256)
    # How long a worker trusts its last lookup of a key: a revocation reaches every worker within it.
    # Keys in use are refreshed in the background before then (erp_api/security/key_store.py).
    auth_cache_ttl_seconds: float = Field(10.0, ge=0, le=3600)
    auth_cache_max_entries: int = Field(10_000, ge=1)
    rate_limit_enabled: bool = True
    # auto: Redis (shared by all workers) when ERP_CACHE_BACKEND=redis, else per-process memory.
    rate_limit_backend: Literal["auto", "memory", "redis"] = "auto"
    rate_limit_prefix: str = Field(
        "erp:ratelimit", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:._-]+$"
    )
    rate_limit_window_seconds: float = Field(60.0, gt=0, le=86_400)
    # Requests per window: per key for each role, per client address for requests without a valid key.
    rate_limit_anonymous: int = Field(120, ge=1)
    rate_limit_viewer: int = Field(1_200, ge=1)
    rate_limit_operator: int = Field(6_000, ge=1)
    rate_limit_quality_manager: int = Field(6_000, ge=1)
    # Above what a host serves (~6,000 req/s per worker measured): benchmarks and load tests run as
    # shipped, limits on, with an admin key. For the admin role it only stops a runaway script.
    rate_limit_admin: int = Field(1_000_000, ge=1)
    rate_limit_max_buckets: int = Field(100_000, ge=1)
    # With Redis, each worker takes up to this many of a key's requests at once (never more than 1 % of
    # its limit) and counts them locally: see erp_api/security/rate_lease.py for the bound. 1: one Redis
    # call per request. The cap matters only for limits above 100,000 (the admin's): 1,000 places of
    # 1,000,000 are 0.1 %, and a worker serving thousands of that key's requests a second renews its
    # lease a few times a second instead of dozens (each renewal holds that key's requests for a round
    # trip: measured, the cached read with Redis 12 % faster than with 100).
    rate_limit_lease_tokens: int = Field(1_000, ge=1, le=10_000)

    @field_validator("cache_backend")
    @classmethod
    def _shared_cache_for_workers(cls, value: str, info: ValidationInfo) -> str:
        workers = info.data.get("workers", 1)
        if value == "memory" and workers > 1:
            raise ValueError(
                f"memory is private to each process and ERP_WORKERS={workers} starts {workers} of them: one "
                "worker's invalidations would not reach the others; use redis (or none)"
            )
        return value

    @field_validator("cache_l1")
    @classmethod
    def _l1_needs_redis(cls, value: str, info: ValidationInfo) -> str:
        backend = info.data.get("cache_backend")
        if value == "on" and backend is not None and backend != "redis":
            raise ValueError(f"on needs ERP_CACHE_BACKEND=redis (it is {backend})")
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [origin.strip() for origin in value.split(",") if origin.strip()]
        for origin in value if isinstance(value, list | tuple) else ():
            if not isinstance(origin, str) or not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin like https://erp.example.com (no path)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _body_timeout_follows_request(cls, data: object) -> object:
        # A slow body must get its 408, not the 504 of a request the service failed to answer. Left
        # unset, the body's timeout follows a shorter request timeout (two thirds of it); named, it
        # must fit (``_body_within_request``). Unset means absent from what was given, whatever value.
        if not isinstance(data, dict) or "body_timeout_seconds" in data:
            return data
        try:
            request = float(data["request_timeout_seconds"])
        except (KeyError, TypeError, ValueError):
            return data  # the default, or a value its own field rejects
        if 0 < request <= BODY_TIMEOUT_DEFAULT_SECONDS:
            return {**data, "body_timeout_seconds": request * 2 / 3}
        return data

    @field_validator("body_timeout_seconds")
    @classmethod
    def _body_within_request(cls, value: float, info: ValidationInfo) -> float:
        request = info.data.get("request_timeout_seconds")
        if request is not None and value >= request:
            raise ValueError(f"must be less than ERP_REQUEST_TIMEOUT_SECONDS ({request})")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list | tuple):
            return value
        try:
            return tuple(str(ipaddress.ip_network(item, strict=False)) for item in value)
        except (TypeError, ValueError):
            raise ValueError("must be IP addresses or networks like 10.0.0.0/8, comma-separated") from None

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("bootstrap_admin_key", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "sqla+sqlite://")):
            raise ValueError("must start with redis://, rediss:// or sqla+sqlite:// (the embedded broker)")
        return value

    @field_validator("analysis_hard_time_limit_seconds")
    @classmethod
    def _hard_after_soft(cls, value: float, info: ValidationInfo) -> float:
        soft = info.data.get("analysis_soft_time_limit_seconds")
        if soft is not None and value <= soft:
            raise ValueError(f"must exceed ERP_ANALYSIS_SOFT_TIME_LIMIT_SECONDS ({soft})")
        return value

    @field_validator("broker_visibility_timeout_seconds", "analysis_stuck_after_seconds")
    @classmethod
    def _longer_than_a_task(cls, value: float, info: ValidationInfo) -> float:
        # A message redelivered (or an analysis reaped) while its task still runs would run twice.
        hard = info.data.get("analysis_hard_time_limit_seconds")
        backoff = info.data.get("analysis_retry_backoff_max_seconds")
        if hard is not None and backoff is not None and value <= hard + backoff:
            raise ValueError(
                "must exceed ERP_ANALYSIS_HARD_TIME_LIMIT_SECONDS + ERP_ANALYSIS_RETRY_BACKOFF_MAX_SECONDS "
                f"({hard + backoff})"
            )
        return value

    @field_validator("analysis_heartbeat_timeout_seconds")
    @classmethod
    def _several_heartbeats(cls, value: float, info: ValidationInfo) -> float:
        # One late or failed heartbeat must not make a live analysis look abandoned.
        interval = info.data.get("analysis_heartbeat_interval_seconds")
        if interval is not None and value < 3 * interval:
            raise ValueError(f"must be at least 3 x ERP_ANALYSIS_HEARTBEAT_INTERVAL_SECONDS ({3 * interval})")
        return value

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def sqlite_path(self) -> Path | None:
        """The file behind a SQLite URL, or None for PostgreSQL and in-memory SQLite."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1].split("?", 1)[0]
        return None if path in {"", ":memory:"} else Path(path)


_SECRET_FIELDS = frozenset({"bootstrap_admin_key"})


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings; a bad value raises SettingsError naming its variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        message = error["msg"].removeprefix("Value error, ")
        shown = "a hidden value" if field in _SECRET_FIELDS else repr(error.get("input"))
        raise SettingsError(f"ERP_{field.upper()}: {message} (got {shown})") from None
