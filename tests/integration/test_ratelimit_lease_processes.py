"""Two server processes sharing Redis, each leasing a key's quota in batches, stay within the stated bound."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from erp_api.migrate import upgrade
from erp_api.security.rate_lease import lease_size
from erp_api.security.ratelimit import redis_client
from erp_api.settings import load_settings
from testing.processes import Server, running_server
from tests import services
from tests.conftest import TEST_ADMIN_KEY, bearer

pytestmark = [pytest.mark.slow, pytest.mark.redis]
LIMIT = 400
WINDOW_SECONDS = 3600
LEASE_TOKENS = 100
LEASE = lease_size(LIMIT, LEASE_TOKENS)  # 4
PROCESSES = 2


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
    prefix = services.unique_name("erp-rl-lease")
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
        "ERP_RATE_LIMIT_LEASE_TOKENS": str(LEASE_TOKENS),
        # An hour's window: a place refills every 9 s, so the test sees at most one or two.
        "ERP_RATE_LIMIT_WINDOW_SECONDS": str(WINDOW_SECONDS),
        # A slow Redis would make the limiter fail open to per-process memory: not what is tested.
        "ERP_REDIS_TIMEOUT_SECONDS": "10",
        "ERP_ACCESS_LOG": "false",
    }
    with running_server(env) as first, running_server(env) as second:
        yield first, second
    for server in (first, second):
        assert "rate_limit_redis_unavailable" not in server.process.log()


async def test_concurrent_requests_on_both_processes_are_admitted_within_the_lease_bound(
    two_servers: tuple[Server, Server],
) -> None:
    limits = httpx.Limits(max_connections=16)
    clients = [
        httpx.AsyncClient(base_url=server.base_url, headers=bearer(TEST_ADMIN_KEY), timeout=60, limits=limits)
        for server in two_servers
    ]
    started = time.monotonic()
    try:
        first = await clients[0].get("/api/v1/charges")
        second = await clients[1].get("/api/v1/charges")
        hits = 2 * LIMIT  # half on each process: both still busy long after the quota is gone
        responses = [first, second]
        responses += await asyncio.gather(*(clients[n % 2].get("/api/v1/charges") for n in range(hits)))
    finally:
        for client in clients:
            await client.aclose()
    elapsed = time.monotonic() - started

    # Each process took a lease of LEASE places: the second one's first answer counts both leases.
    assert int(first.headers["ratelimit-remaining"]) == LIMIT - 1
    assert int(second.headers["ratelimit-remaining"]) == LIMIT - LEASE - 1

    allowed = [response for response in responses if response.status_code == 200]
    refused = [response for response in responses if response.status_code == 429]
    assert len(allowed) + len(refused) == len(responses)
    refilled = math.ceil(elapsed * LIMIT / WINDOW_SECONDS)
    # The bound of erp_api/security/rate_lease.py: limit + T * limit / window + P * N.
    assert LIMIT <= len(allowed) <= LIMIT + refilled + PROCESSES * LEASE
    assert all(0 <= int(r.headers["ratelimit-remaining"]) < LIMIT for r in allowed)
    assert all(r.headers["ratelimit-limit"] == str(LIMIT) for r in responses)
    assert all(
        int(r.headers["retry-after"]) >= 1 and r.headers["ratelimit-remaining"] == "0" for r in refused
    )
