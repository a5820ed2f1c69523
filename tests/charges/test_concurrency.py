"""Concurrent writers of one charge: an ETag admits exactly one change (no lost updates)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from erp_api.charges.repository import ChargeRepository
from erp_api.http import API_PREFIX
from tests.charges.helpers import assert_problem, create

WRITERS = 8


@pytest.fixture
def everyone_reads_before_anyone_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Hold each versioned UPDATE until all WRITERS have read the charge: the race the version
    check exists for, made certain instead of left to the scheduler."""
    barrier = asyncio.Barrier(WRITERS)
    update = ChargeRepository.update_if_version

    async def after_everyone_read(self: ChargeRepository, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(10):  # never a deadlock, should the service lock the row first
                await barrier.wait()
        except (TimeoutError, asyncio.BrokenBarrierError):
            pass
        return await update(self, *args, **kwargs)

    monkeypatch.setattr(ChargeRepository, "update_if_version", after_everyone_read)
    yield


async def test_concurrent_patches_with_one_etag_change_the_charge_exactly_once(
    client: httpx.AsyncClient, everyone_reads_before_anyone_writes: None
) -> None:
    created = await create(client, 1)
    url = f"{API_PREFIX}/charges/{created['id']}"
    etag = f'"c{created["id"]}v1"'
    responses = await asyncio.gather(
        *(client.patch(url, json={"line": f"L{n}"}, headers={"If-Match": etag}) for n in range(WRITERS))
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * (WRITERS - 1)
    for response in responses:
        if response.status_code == 412:
            assert_problem(response, 412)
    (winner,) = [response.json() for response in responses if response.status_code == 200]
    current = await client.get(url)
    assert current.json() == winner
    assert current.json()["version"] == 2
    assert current.headers["etag"] == f'"c{created["id"]}v2"'
