"""The one settings object: read from ``ERP_*`` environment variables and validated at start."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

VAR_DIR = Path("var")


class SettingsError(RuntimeError):
    """A setting has a value the service cannot start with; the message names the variable."""


class Settings(BaseSettings):
    """Everything configurable about the service; nothing else reads the environment."""

    model_config = SettingsConfigDict(env_prefix="ERP_", extra="ignore", frozen=True)

    # HTTP server
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    debug: bool = False

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
    cache_backend: Literal["memory", "redis", "none"] = "memory"
    cache_default_ttl_seconds: float = Field(60.0, gt=0)
    cache_max_entries: int = Field(20_000, ge=1)
    cache_max_bytes: int = Field(128 * 2**20, ge=1024)
    cache_prefix: str = Field("erp", min_length=1, max_length=64)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_seconds: float = Field(0.25, gt=0, le=30)
    redis_pool_size: int = Field(50, ge=1, le=1000)

    # Background jobs
    broker_url: str = f"sqla+sqlite:///{VAR_DIR}/broker.sqlite3"
    result_backend_url: str | None = None

    # Requests
    max_body_bytes: int = Field(1 * 2**20, ge=1024)
    max_batch_body_bytes: int = Field(8 * 2**20, ge=1024)
    request_timeout_seconds: float = Field(30.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
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


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings; a bad value raises SettingsError naming its variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        message = error["msg"].removeprefix("Value error, ")
        raise SettingsError(f"ERP_{field.upper()}: {message} (got {error.get('input')!r})") from None
