"""Cache administration: an admin reads the counters and invalidates tags (audited)."""

from __future__ import annotations

import httpx

from tests.charges.helpers import assert_problem, create


async def test_stats_count_the_cache_traffic_per_namespace(client: httpx.AsyncClient) -> None:
    charge = await create(client, 1)
    for _ in range(3):
        await client.get(f"/api/v1/charges/{charge['id']}")
    response = await client.get("/api/v1/cache/stats")
    assert response.status_code == 200
    charges = response.json()["charges"]
    assert charges["hits"] >= 2 and charges["misses"] >= 1


async def test_invalidating_a_tag_makes_its_entries_misses_and_is_audited(client: httpx.AsyncClient) -> None:
    charge = await create(client, 1)
    url = f"/api/v1/charges/{charge['id']}"
    await client.get(url)
    before = (await client.get("/api/v1/cache/stats")).json()["charges"]["misses"]
    response = await client.post("/api/v1/cache/invalidate", json={"tags": [f"charge:{charge['id']}"]})
    assert response.status_code == 200
    assert response.json() == {"tags": [f"charge:{charge['id']}"]}
    await client.get(url)
    assert (await client.get("/api/v1/cache/stats")).json()["charges"]["misses"] == before + 1
    events = (await client.get("/api/v1/audit", params={"entity": "cache"})).json()["items"]
    assert [(e["action"], e["after"]) for e in events] == [
        ("invalidate", {"tags": [f"charge:{charge['id']}"]})
    ]


async def test_invalidate_needs_at_least_one_printable_tag(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/api/v1/cache/invalidate", json={"tags": []}), 422)
    assert_problem(await client.post("/api/v1/cache/invalidate", json={"tags": ["a\nb"]}), 422)
