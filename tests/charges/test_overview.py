"""GET /products and GET /lines: every product (line) with its charges counted by status."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event
from starlette.applications import Starlette

from erp_api.charges import overview
from erp_api.charges.schemas import LineList, ProductList, StatusCounts
from erp_api.charges.states import ChargeStatus
from erp_api.http import API_PREFIX
from tests.charges.helpers import charge_payload, create_in

PRODUCTS = f"{API_PREFIX}/products"
LINES = f"{API_PREFIX}/lines"


def _counts(**given: int) -> dict[str, int]:
    return {status.value: given.get(status.value, 0) for status in ChargeStatus}


async def _batch(client: httpx.AsyncClient, payloads: list[dict[str, Any]]) -> None:
    response = await client.post(f"{API_PREFIX}/charges/batch", json={"items": payloads})
    assert response.status_code == 201, response.text


def test_the_status_counts_name_every_status() -> None:
    assert set(StatusCounts.model_fields) == {status.value for status in ChargeStatus}


async def test_products_and_lines_list_each_value_once_with_counts_by_status(
    client: httpx.AsyncClient,
) -> None:
    await create_in(client, 1, "released", product_sku="VALVE-B", line="Linie Süd")
    await create_in(client, 2, "in_production", product_sku="VALVE-B", line="L1")
    await create_in(client, 3, "in_production", product_sku="PUMP-A", line="Linie Süd")
    await _batch(client, [charge_payload(serial, product_sku="PUMP-A", line="L1") for serial in (4, 5, 6)])

    products = (await client.get(PRODUCTS)).json()
    ProductList.model_validate(products)
    assert products == {
        "items": [
            {"product_sku": "PUMP-A", "charges": 4, "by_status": _counts(planned=3, in_production=1)},
            {"product_sku": "VALVE-B", "charges": 2, "by_status": _counts(released=1, in_production=1)},
        ],
        "truncated": False,
    }
    lines = (await client.get(LINES)).json()
    LineList.model_validate(lines)
    assert lines["items"] == [
        {"line": "L1", "charges": 4, "by_status": _counts(planned=3, in_production=1)},
        {"line": "Linie Süd", "charges": 2, "by_status": _counts(released=1, in_production=1)},
    ]


async def test_the_overviews_follow_every_charge_write(client: httpx.AsyncClient) -> None:
    assert (await client.get(PRODUCTS)).json() == {"items": [], "truncated": False}
    charge = await create_in(client, 1, "planned", product_sku="PUMP-A", line="L1")
    assert (await client.get(PRODUCTS)).json()["items"][0]["by_status"] == _counts(planned=1)
    await client.post(f"{API_PREFIX}/charges/{charge['id']}/transitions", json={"to": "in_production"})
    assert (await client.get(LINES)).json()["items"][0]["by_status"] == _counts(in_production=1)
    await client.patch(f"{API_PREFIX}/charges/{charge['id']}", json={"line": "L2"})
    assert [item["line"] for item in (await client.get(LINES)).json()["items"]] == ["L2"]
    other = await create_in(client, 2, "planned", product_sku="GEAR-C")
    assert (await client.delete(f"{API_PREFIX}/charges/{other['id']}")).status_code == 204
    assert [item["product_sku"] for item in (await client.get(PRODUCTS)).json()["items"]] == ["PUMP-A"]


async def test_an_overview_is_one_query_and_then_cached(app: Starlette, client: httpx.AsyncClient) -> None:
    await _batch(client, [charge_payload(serial, product_sku=f"P-{serial % 4}") for serial in range(1, 41)])
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "charges" in statement:
            selects.append(statement)

    engine = app.state.resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert len((await client.get(PRODUCTS)).json()["items"]) == 4
        assert len((await client.get(PRODUCTS)).json()["items"]) == 4
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(selects) == 1 and "GROUP BY" in selects[0].upper()


async def test_an_overview_is_bounded_and_says_when_it_is_truncated(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(overview, "MAX_VALUES", 3)
    await _batch(client, [charge_payload(serial, product_sku=f"P-{serial}") for serial in range(1, 6)])
    body = (await client.get(PRODUCTS)).json()
    assert [item["product_sku"] for item in body["items"]] == ["P-1", "P-2", "P-3"]
    assert body["truncated"] is True
