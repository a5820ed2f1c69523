"""Reach the real services the suite runs against, or explain why a test cannot.

Locally a missing service skips its tests with the reason; with ``ERP_REQUIRE_SERVICES=1`` (CI) the
same absence fails them, so a green CI run always means the service-backed tests ran.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import redis

REQUIRE_SERVICES = os.environ.get("ERP_REQUIRE_SERVICES", "") in {"1", "true", "yes"}
PG_ADMIN_URL = os.environ.get("ERP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ERP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def unavailable(service: str, url: str) -> None:
    """Skip (locally) or fail (CI) a test whose service is not reachable."""
    reason = f"{service} is not reachable at {url}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}, and ERP_REQUIRE_SERVICES=1 makes it mandatory", pytrace=False)
    pytest.skip(f"{reason} (start it, or set ERP_TEST_* to point at one)")


def require_redis() -> str:
    if not _reachable(REDIS_URL, 6379):
        unavailable("Redis", REDIS_URL)
    return REDIS_URL


def require_postgres() -> str:
    if not _reachable(PG_ADMIN_URL, 5432):
        unavailable("PostgreSQL", PG_ADMIN_URL)
    return PG_ADMIN_URL


def unique_name(prefix: str) -> str:
    """A name no concurrent test run will pick (databases, Redis key prefixes, queues)."""
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def delete_redis_keys(url: str, pattern: str) -> None:
    """Delete every key matching ``pattern`` (never FLUSHDB: the server is shared)."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextmanager
def own_redis_prefix(label: str, separator: str = ":") -> Iterator[tuple[str, str]]:
    """(URL, key prefix): a prefix of the caller's own on the shared Redis (``unique_name(label)``
    then ``separator``); every key under it is deleted afterwards."""
    url = require_redis()
    prefix = unique_name(label) + separator
    try:
        yield url, prefix
    finally:
        delete_redis_keys(url, f"{prefix}*")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_postgres_database() -> tuple[str, str]:
    """Create an empty database of its own for a test session; returns (name, asyncpg SQLAlchemy URL)."""
    require_postgres()
    name = unique_name("erp_test")
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(PG_ADMIN_URL)
    url = f"postgresql+asyncpg://{parts.netloc}/{name}"
    return name, url


def drop_postgres_database(name: str) -> None:
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
