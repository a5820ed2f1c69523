"""Two server processes sharing Redis enforce one rate limit per key between them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testing.processes import Server
from tests.conftest import TEST_ADMIN_KEY, bearer
from tests.integration.limited_servers import redis_prefix, two_limited_servers

pytestmark = [pytest.mark.slow, pytest.mark.redis]
LIMIT = 10


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two server processes sharing one database and one Redis limiter, admin limit LIMIT."""
    with redis_prefix("erp-rl-processes") as prefix, two_limited_servers(tmp_path, prefix, LIMIT) as servers:
        yield servers


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
