"""The charge list in each of its sorts: keyset pages in that order, cursors bound to their sort."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from erp_api.charges.schemas import ChargeSort
from erp_api.http import API_PREFIX
from erp_api.pagination import CURSOR_VERSION
from tests.charges.helpers import assert_problem, charge_payload

API = f"{API_PREFIX}/charges"
SORTS = [sort.value for sort in ChargeSort]


def _expected_order(charges: list[dict[str, Any]], sort: str) -> list[int]:
    """The ids in ``sort``'s order: the field (code points, numbers, instants), ties by id the same way."""
    field = sort.removeprefix("-")

    def key(charge: dict[str, Any]) -> tuple[Any, int]:
        value = charge[field]
        return (Decimal(value) if field == "quantity" else value), charge["id"]

    return [charge["id"] for charge in sorted(charges, key=key, reverse=sort.startswith("-"))]


async def _pages(client: httpx.AsyncClient, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        response = await client.get(API, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


@pytest.fixture
async def charges(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Charges with repeated times and quantities (ties), numbers that sort differently by code point
    than by any locale ("CH-A" < "CH.A" < "CH_A" < "CHA"), quantities with 1 to 15 integer digits."""
    numbers = ["CH-A01", "CH.A02", "CH_A03", "CHA04", "CH-B05", "CH-a06", "ZZ-007", "AA-008", "CH-009"]
    quantities = ["5", "5", "12.5", "999999999999999.999", "0.001", "12.5", "7", "100", "5"]
    times = ["2026-03-01T06:00:00Z", "2026-03-01T06:00:00+00:00", "2026-03-01T07:00:00+01:00"] * 3
    payloads = [
        charge_payload(0, charge_number=number.upper(), quantity=quantity, produced_at=at)
        for number, quantity, at in zip(numbers, quantities, times, strict=True)
    ]
    response = await client.post(f"{API}/batch", json={"items": payloads})
    assert response.status_code == 201, response.text
    created: list[dict[str, Any]] = response.json()["items"]
    return created


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("limit", [1, 2, 4, 50])
async def test_each_sort_pages_through_every_charge_once_in_its_order(
    client: httpx.AsyncClient, charges: list[dict[str, Any]], sort: str, limit: int
) -> None:
    pages = await _pages(client, {"sort": sort, "limit": limit})
    assert all(len(page) <= limit for page in pages)
    assert [charge["id"] for page in pages for charge in page] == _expected_order(charges, sort)


async def test_newest_first_is_the_default_sort(
    client: httpx.AsyncClient, charges: list[dict[str, Any]]
) -> None:
    pages = await _pages(client, {"limit": 4})
    assert [charge["id"] for page in pages for charge in page] == _expected_order(charges, "-produced_at")


async def test_a_sort_combines_with_filters(client: httpx.AsyncClient, charges: list[dict[str, Any]]) -> None:
    pages = await _pages(client, {"sort": "-quantity", "number_prefix": "CH", "limit": 2})
    expected = _expected_order([c for c in charges if c["charge_number"].startswith("CH")], "-quantity")
    assert [charge["id"] for page in pages for charge in page] == expected


@pytest.mark.parametrize(
    ("issued_for", "used_with"), [("quantity", "-quantity"), ("charge_number", "-produced_at")]
)
async def test_a_cursor_of_one_sort_is_a_422_under_another(
    client: httpx.AsyncClient, charges: list[dict[str, Any]], issued_for: str, used_with: str
) -> None:
    cursor = (await client.get(API, params={"sort": issued_for, "limit": 1})).json()["next_cursor"]
    problem = assert_problem(await client.get(API, params={"sort": used_with, "cursor": cursor}), 422)
    assert problem["errors"][0]["type"] == "cursor_sort_mismatch"
    assert problem["errors"][0]["field"] == "query.cursor"


def _forged(*fields: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([CURSOR_VERSION, *fields]).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("quantity", _forged("quantity", "5.000", 2**63)),
        ("quantity", _forged("quantity", "5.000", 2**64 + 1)),
        ("quantity", _forged("quantity", "1e999999", 1)),
        ("quantity", _forged("quantity", "NaN", 1)),
        ("charge_number", _forged("charge_number", "ch-lower", 1)),
        ("charge_number", _forged("charge_number", "CH-A01", 9_223_372_036_854_775_808)),
        ("-produced_at", _forged("-produced_at", "9999-12-31T23:59:59-01:00", 1)),
        ("-produced_at", _forged("-produced_at", "2026-03-01T06:00:00", 1)),
        ("-produced_at", _forged("2026-03-01T06:00:00+00:00", 2**63)),  # the former cursor format
    ],
)
async def test_a_forged_cursor_is_a_422_never_a_500(
    client: httpx.AsyncClient, charges: list[dict[str, Any]], sort: str, cursor: str
) -> None:
    assert_problem(await client.get(API, params={"sort": sort, "cursor": cursor}), 422)


async def test_an_unknown_sort_is_a_422(client: httpx.AsyncClient) -> None:
    for sort in ("price", "-id", "produced_at,charge_number", ""):
        assert_problem(await client.get(API, params={"sort": sort}), 422)
