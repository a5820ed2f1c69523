"""Listing with filters and keyset cursors, batch create and bulk lookup."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from starlette.applications import Starlette

from erp_api.http import API_PREFIX
from tests.charges.helpers import assert_problem, charge_payload

API = f"{API_PREFIX}/charges"


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
    # Only the lookup's own reads: the app's background loops (event log, rule checks) query too.
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM charges" in s]
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


# Several statuses, number prefix, total, Link -----------------------------------------------------


async def test_repeated_status_selects_charges_of_any_of_them(client: httpx.AsyncClient) -> None:
    created = await _batch(client, _mixed(9))
    for charge, target in zip(created[:6], ["in_production", "in_production", "released"] * 2, strict=True):
        await client.post(f"{API}/{charge['id']}/transitions", json={"to": "in_production"})
        if target == "released":
            await client.post(f"{API}/{charge['id']}/transitions", json={"to": "released"})
    statuses = {c["id"]: (await client.get(f"{API}/{c['id']}")).json()["status"] for c in created}
    for wanted in (["planned", "released"], ["released", "planned", "released"], ["in_production"]):
        items = await _all_pages(client, {"status": wanted, "limit": 2})
        assert sorted(i["id"] for i in items) == sorted(i for i, s in statuses.items() if s in wanted)


async def test_number_prefix_matches_the_start_of_the_number_only_and_literally(
    client: httpx.AsyncClient,
) -> None:
    numbers = ["CH_2026-1", "CHX2026-2", "CH_2027-3", "XCH_2026-4", "CH-2026-5", "CH%2026-6", "CH.2026-7"]
    await _batch(client, [charge_payload(0, charge_number=number) for number in numbers if "%" not in number])
    cases = {
        "CH_": {"CH_2026-1", "CH_2027-3"},  # "_" is not a wildcard
        "ch_2026": {"CH_2026-1"},  # case-insensitive
        "CH.": {"CH.2026-7"},
        "CH": {"CH_2026-1", "CHX2026-2", "CH_2027-3", "CH-2026-5", "CH.2026-7"},
        "CH-2026-5": {"CH-2026-5"},
        "Z": set(),
    }
    for prefix, expected in cases.items():
        items = await _all_pages(client, {"number_prefix": prefix, "limit": 2})
        assert {item["charge_number"] for item in items} == expected, prefix
    for bad in ("CH%", "CH*", "", "A" * 33, "CH 1"):
        assert_problem(await client.get(API, params={"number_prefix": bad}), 422)


async def test_number_prefix_search_is_served_by_an_index(app: Starlette) -> None:
    """The plan of the query the list runs reads the charge number index, not the whole table."""
    from erp_api.charges.repository import ChargeFilter, ChargeRepository

    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    engine = app.state.resources.engine
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with app.state.resources.sessions() as session:
            await ChargeRepository(session).page(
                ChargeFilter(number_prefix="CH-2026"),
                sort="charge_number",
                descending=False,
                after=None,
                limit=5,
            )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    (statement, parameters), *_ = [s for s in statements if "FROM charges" in s[0]]
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            raw = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plan = " ".join(str(row[-1]) for row in raw)
            assert "USING INDEX" in plan and "charge_number" in plan, plan
        else:
            await conn.exec_driver_sql("SET enable_seqscan = off")
            raw = await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            plan = " ".join(str(row[0]) for row in raw)
            assert "Index" in plan and "charge_number" in plan and "Seq Scan" not in plan, plan


async def test_include_total_counts_every_match_on_every_page_and_follows_writes(
    client: httpx.AsyncClient,
) -> None:
    created = await _batch(client, _mixed(12))  # 4 of each product
    params = {"product_sku": "PUMP-A", "include_total": "true", "limit": 3}
    first = (await client.get(API, params=params)).json()
    assert first["total"] == 4 and len(first["items"]) == 3
    second = (await client.get(API, params={**params, "cursor": first["next_cursor"]})).json()
    assert second["total"] == 4 and second["next_cursor"] is None
    assert "total" not in (await client.get(API, params={"product_sku": "PUMP-A"})).json()
    # Cached, and invalidated with the list: a new charge and a deleted one change it.
    await _batch(client, [charge_payload(100, product_sku="PUMP-A")])
    assert (await client.get(API, params=params)).json()["total"] == 5
    pump = next(c for c in created if c["product_sku"] == "PUMP-A")
    assert (await client.delete(f"{API}/{pump['id']}")).status_code == 204
    assert (await client.get(API, params=params)).json()["total"] == 4
    everything = (
        await client.get(API, params={"include_total": "true", "number_prefix": "CH-2026-00001"})
    ).json()
    assert everything["total"] == 3  # CH-2026-000010, -11, -12


async def test_a_page_links_to_the_next_with_every_other_parameter_kept(client: httpx.AsyncClient) -> None:
    await _batch(client, _mixed(7))
    query = [("status", "planned"), ("limit", "2"), ("sort", "charge_number"), ("include_total", "true")]
    response = await client.get(API, params=query)
    seen = [item["id"] for item in response.json()["items"]]
    while "link" in response.headers:
        link = response.headers["link"]
        assert link.startswith(f"<{API}?") and link.endswith('>; rel="next"'), link
        url = link[1 : link.index(">")]
        next_query = httpx.URL(url).params
        assert [(k, v) for k, v in next_query.multi_items() if k != "cursor"] == query
        assert next_query["cursor"] == response.json()["next_cursor"]
        response = await client.get(url)
        assert response.status_code == 200
        seen.extend(item["id"] for item in response.json()["items"])
    assert response.json()["next_cursor"] is None
    assert len(seen) == len(set(seen)) == 7
