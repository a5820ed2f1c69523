"""Two server processes sharing Redis enforce one rate limit per key between them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from erp_api.migrate import upgrade
from erp_api.security.ratelimit import redis_client
from erp_api.settings import load_settings
from testing.processes import Server, running_server
from tests import services
from tests.conftest import TEST_ADMIN_KEY, bearer

pytestmark = [pytest.mark.slow, pytest.mark.redis]
LIMIT = 10


async def _delete_keys(url: str, prefix: str) -> None:
    client = redis_client(url, timeout_seconds=2, max_connections=2)
    try:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    url = services.require_redis()
    prefix = services.unique_name("erp-rl-processes")
    yield prefix
    asyncio.run(_delete_keys(url, prefix))


@pytest.fixture
def two_servers(tmp_path: Path, redis_prefix: str) -> Iterator[tuple[Server, Server]]:
    """Two server processes sharing one database and one Redis limiter, admin limit LIMIT."""
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
        "ERP_RATE_LIMIT_PREFIX": redis_prefix,
        "ERP_RATE_LIMIT_ADMIN": str(LIMIT),
        # An hour's window: no request earns a new one while a test runs, however slow the machine.
        "ERP_RATE_LIMIT_WINDOW_SECONDS": "3600",
        # A slow Redis would make the limiter fail open to per-process memory: not what is tested.
        "ERP_REDIS_TIMEOUT_SECONDS": "10",
        "ERP_ACCESS_LOG": "false",
    }
    with running_server(env) as first, running_server(env) as second:
        yield first, second
    for server in (first, second):
        assert "rate_limit_redis_unavailable" not in server.process.log()


def test_the_excess_over_one_keys_limit_is_refused_by_both_processes(
    two_servers: tuple[Server, Server],
) -> None:
    clients = [
        httpx.Client(base_url=server.base_url, headers=bearer(TEST_ADMIN_KEY), timeout=10)
        for server in two_servers
    ]
    try:
        responses = [clients[n % 2].get("/api/v1/charges") for n in range(LIMIT + 6)]
    finally:
        for client in clients:
            client.close()
    statuses = [response.status_code for response in responses]
    assert statuses == [200] * LIMIT + [429] * 6
    assert [int(r.headers["ratelimit-remaining"]) for r in responses[:LIMIT]] == list(
        range(LIMIT - 1, -1, -1)
    )
    assert all(int(r.headers["retry-after"]) >= 1 for r in responses[LIMIT:])


async def test_concurrent_hits_on_both_processes_allow_exactly_the_limit(
    two_servers: tuple[Server, Server],
) -> None:
    # All at once, half on each process: a check that reads, computes and writes in separate steps
    # lets several hits read the same state and all pass; the atomic one counts each exactly once.
    hits = 3 * LIMIT
    limits = httpx.Limits(max_connections=hits)
    clients = [
        httpx.AsyncClient(base_url=server.base_url, headers=bearer(TEST_ADMIN_KEY), timeout=30, limits=limits)
        for server in two_servers
    ]
    try:
        responses = await asyncio.gather(*(clients[n % 2].get("/api/v1/charges") for n in range(hits)))
    finally:
        for client in clients:
            await client.aclose()
    allowed = [response for response in responses if response.status_code == 200]
    refused = [response for response in responses if response.status_code == 429]
    assert (len(allowed), len(refused)) == (LIMIT, hits - LIMIT)
    # Each allowed hit took its own place in the quota.
    assert sorted(int(r.headers["ratelimit-remaining"]) for r in allowed) == list(range(LIMIT))
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
