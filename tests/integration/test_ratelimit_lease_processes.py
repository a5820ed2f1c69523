"""Two server processes sharing Redis, each leasing a key's quota in batches, stay within the stated bound."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from erp_api.security.rate_lease import lease_size
from testing.processes import Server
from tests.conftest import TEST_ADMIN_KEY, bearer
from tests.integration.limited_servers import redis_prefix, two_limited_servers

pytestmark = [pytest.mark.slow, pytest.mark.redis]
LIMIT = 400
WINDOW_SECONDS = 3600
LEASE_TOKENS = 100
LEASE = lease_size(LIMIT, LEASE_TOKENS)  # 4
PROCESSES = 2


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two server processes sharing one database and one Redis limiter, admin limit LIMIT."""
    extra = {
        "ERP_RATE_LIMIT_LEASE_TOKENS": str(LEASE_TOKENS),
        "ERP_RATE_LIMIT_WINDOW_SECONDS": str(WINDOW_SECONDS),
    }
    with (
        redis_prefix("erp-rl-lease") as prefix,
        two_limited_servers(tmp_path, prefix, LIMIT, extra) as (first, second),
    ):
        yield first, second


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
