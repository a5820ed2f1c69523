"""Two server processes sharing one database and one Redis rate limiter (admin limit as given)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from erp_api.migrate import upgrade
from erp_api.security.ratelimit import redis_client
from erp_api.settings import load_settings
from testing.processes import Server, running_server
from tests import services
from tests.conftest import TEST_ADMIN_KEY


async def _delete_keys(url: str, prefix: str) -> None:
    client = redis_client(url, timeout_seconds=2, max_connections=2)
    try:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
    finally:
        await client.aclose()


@contextmanager
def redis_prefix(name: str) -> Iterator[str]:
    """A key prefix of this test's own, its keys deleted afterwards."""
    url = services.require_redis()
    prefix = services.unique_name(name)
    try:
        yield prefix
    finally:
        asyncio.run(_delete_keys(url, prefix))


@contextmanager
def two_limited_servers(
    tmp_path: Path, prefix: str, admin_limit: int, extra_env: Mapping[str, str] = {}
) -> Iterator[tuple[Server, Server]]:
    database = f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3"
    upgrade(load_settings(database_url=database))
    env = {
        "ERP_DATABASE_URL": database,
        "ERP_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        "ERP_CACHE_BACKEND": "memory",
        "ERP_AUTH_ENABLED": "true",
        "ERP_BOOTSTRAP_ADMIN_KEY": TEST_ADMIN_KEY,
        "ERP_RATE_LIMIT_BACKEND": "redis",
        "ERP_REDIS_URL": services.REDIS_URL,
        "ERP_RATE_LIMIT_PREFIX": prefix,
        "ERP_RATE_LIMIT_ADMIN": str(admin_limit),
        # An hour's window: no request earns a new one while a test runs, however slow the machine.
        "ERP_RATE_LIMIT_WINDOW_SECONDS": "3600",
        # A slow Redis would make the limiter fail open to per-process memory: not what is tested.
        "ERP_REDIS_TIMEOUT_SECONDS": "10",
        "ERP_ACCESS_LOG": "false",
        **extra_env,
    }
    with running_server(env) as first, running_server(env) as second:
        yield first, second
    # A limiter that fell back to per-process memory would make the test prove nothing.
    for server in (first, second):
        assert "rate_limit_redis_unavailable" not in server.process.log()
