"""Listing with filters and keyset cursors, batch create and bulk lookup."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from starlette.applications import Starlette

from tests.charges.helpers import assert_problem, charge_payload

API = "/api/v1/charges"


async def _batch(client: httpx.AsyncClient, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = await client.post(f"{API}/batch", json={"items": payloads})
    assert response.status_code == 201, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _all_pages(client: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(API, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= params.get("limit", 50)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def _mixed(count: int) -> list[dict[str, Any]]:
    products = ("PUMP-A", "VALVE-B", "GEAR-C")
    return [
        charge_payload(serial, product_sku=products[serial % 3], line=f"L{serial % 2 + 1}")
        for serial in range(1, count + 1)
    ]


async def test_list_is_newest_first_and_pages_return_every_row_once(client: httpx.AsyncClient) -> None:
    created = await _batch(client, _mixed(37))
    items = await _all_pages(client, {"limit": 5})
    assert [item["id"] for item in items] == [
        c["id"] for c in sorted(created, key=lambda c: c["produced_at"], reverse=True)
    ]


async def test_equal_timestamps_are_ordered_by_id_across_pages(client: httpx.AsyncClient) -> None:
    same = [charge_payload(serial, produced_at="2026-05-01T00:00:00+00:00") for serial in range(1, 12)]
    created = await _batch(client, same)
    items = await _all_pages(client, {"limit": 4})
    assert [item["id"] for item in items] == sorted((c["id"] for c in created), reverse=True)


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        ({"product_sku": "VALVE-B"}, lambda c: c["product_sku"] == "VALVE-B"),
        ({"line": "L2"}, lambda c: c["line"] == "L2"),
        (
            {"product_sku": "GEAR-C", "line": "L1"},
            lambda c: c["product_sku"] == "GEAR-C" and c["line"] == "L1",
        ),
        (
            {"produced_from": "2026-03-01T10:00:00+00:00", "produced_to": "2026-03-01T20:00:00Z"},
            lambda c: "2026-03-01T10:00:00" <= c["produced_at"][:19] <= "2026-03-01T20:00:00",
        ),
    ],
)
async def test_filters_return_exactly_the_matching_charges(
    client: httpx.AsyncClient, params: dict[str, Any], predicate: Any
) -> None:
    created = await _batch(client, _mixed(30))
    items = await _all_pages(client, {**params, "limit": 4})
    expected = sorted((c for c in created if predicate(c)), key=lambda c: c["produced_at"], reverse=True)
    assert expected, "the filter should match something"
    assert [i["id"] for i in items] == [c["id"] for c in expected]


async def test_status_filter(client: httpx.AsyncClient) -> None:
    created = await _batch(client, _mixed(6))
    for charge in created[:2]:
        await client.post(f"{API}/{charge['id']}/transitions", json={"to": "in_production"})
    items = await _all_pages(client, {"status": "in_production"})
    assert sorted(i["id"] for i in items) == sorted(c["id"] for c in created[:2])
    assert len(await _all_pages(client, {"status": "planned"})) == 4


async def test_paging_while_rows_are_inserted_returns_every_match_once(client: httpx.AsyncClient) -> None:
    created = await _batch(client, _mixed(60))
    original = {c["id"] for c in created}
    seen: list[int] = []
    cursor = None
    serial = 1000
    while True:
        # Rows older and newer than the current position arrive between page requests.
        serial += 1
        older = charge_payload(serial, produced_at="2020-01-01T00:00:00+00:00")
        newer = charge_payload(serial + 5000, produced_at="2030-01-01T00:00:00+00:00")
        await asyncio.gather(client.post(API, json=older), client.post(API, json=newer))
        response = await client.get(API, params={"limit": 7, **({"cursor": cursor} if cursor else {})})
        page = response.json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a row was returned twice"
    assert original <= set(seen), "a row that existed when paging began was skipped"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": "ten"},
        {"status": "lost"},
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJ4IjoxfQ"},
        {"produced_from": "yesterday"},
        {"produced_from": "2026-01-01T00:00:00"},
        {"produced_from": "2026-02-01T00:00:00Z", "produced_to": "2026-01-01T00:00:00Z"},
        {"colour": "red"},
    ],
)
async def test_bad_list_parameters_are_422(client: httpx.AsyncClient, params: dict[str, Any]) -> None:
    assert_problem(await client.get(API, params=params), 422)


async def test_limit_defaults_to_50_and_allows_500(client: httpx.AsyncClient) -> None:
    await _batch(client, _mixed(60))
    assert len((await client.get(API)).json()["items"]) == 50
    assert len((await client.get(API, params={"limit": 500})).json()["items"]) == 60


async def test_batch_create_is_all_or_nothing_and_names_the_duplicate_index(
    client: httpx.AsyncClient,
) -> None:
    await _batch(client, [charge_payload(5)])
    payloads = [charge_payload(serial) for serial in range(1, 9)]  # item 4 is CH-2026-000005, which exists
    problem = assert_problem(await client.post(f"{API}/batch", json={"items": payloads}), 409)
    assert problem["index"] == 4
    assert "items[4]" in problem["detail"]
    assert len(await _all_pages(client, {})) == 1


async def test_batch_with_a_repeated_number_inside_is_409(client: httpx.AsyncClient) -> None:
    payloads = [charge_payload(1), charge_payload(2), charge_payload(1)]
    assert assert_problem(await client.post(f"{API}/batch", json={"items": payloads}), 409)["index"] == 2


async def test_batch_validation_errors_name_the_item_index(client: httpx.AsyncClient) -> None:
    payloads = [charge_payload(serial) for serial in range(1, 6)]
    payloads[3]["quantity"] = "-1"
    problem = assert_problem(await client.post(f"{API}/batch", json={"items": payloads}), 422)
    assert problem["errors"][0]["field"] == "body.items.3.quantity"


async def test_batch_bounds(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post(f"{API}/batch", json={"items": []}), 422)
    too_many = [charge_payload(serial) for serial in range(1, 1002)]
    assert_problem(await client.post(f"{API}/batch", json={"items": too_many}), 422)
    created = await _batch(client, [charge_payload(serial) for serial in range(1, 1001)])
    assert len(created) == 1000
    assert [c["charge_number"] for c in created] == [f"CH-2026-{serial:06d}" for serial in range(1, 1001)]


async def test_lookup_finds_and_reports_missing_in_bounded_queries(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    created = await _batch(client, [charge_payload(serial) for serial in range(1, 1001)])
    numbers = [c["charge_number"] for c in created] + [f"CH-1999-{n:06d}" for n in range(9000)]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = app.state.resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = await client.post(f"{API}/lookup", json={"numbers": numbers})
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200
    body = response.json()
    assert set(body["found"]) == {c["charge_number"] for c in created}
    assert body["found"]["CH-2026-000007"] == next(
        c for c in created if c["charge_number"] == "CH-2026-000007"
    )
    assert len(body["missing"]) == 9000
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 10, f"expected ceil(10000 / 1000) queries, ran {len(selects)}"


async def test_lookup_bounds(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post(f"{API}/lookup", json={"numbers": ["X"] * 10_001}), 422)
    response = await client.post(f"{API}/lookup", json={"numbers": []})
    assert response.json() == {"found": {}, "missing": []}


async def test_lookup_sees_charges_created_after_a_cached_lookup(client: httpx.AsyncClient) -> None:
    first = await client.post(f"{API}/lookup", json={"numbers": ["CH-2026-000001"]})
    assert first.json()["missing"] == ["CH-2026-000001"]
    await _batch(client, [charge_payload(1)])
    second = await client.post(f"{API}/lookup", json={"numbers": ["CH-2026-000001"]})
    assert list(second.json()["found"]) == ["CH-2026-000001"]
