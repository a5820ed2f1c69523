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
from tests import services
from tests.conftest import TEST_ADMIN_KEY, bearer
from tests.integration.server import running_server

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


def test_the_excess_over_one_keys_limit_is_refused_by_both_processes(
    tmp_path: Path, redis_prefix: str
) -> None:
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
        "ERP_ACCESS_LOG": "false",
    }
    with running_server(env) as (first_url, _first), running_server(env) as (second_url, _second):
        clients = [
            httpx.Client(base_url=url, headers=bearer(TEST_ADMIN_KEY), timeout=10)
            for url in (first_url, second_url)
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
