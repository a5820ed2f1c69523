"""Attribute inspections over HTTP: recorded on charges that take quality data, listed in pages, and
charted as p, np, c and u charts with per-sample limits; on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from erp_api.http import API_PREFIX
from tests.charges.helpers import assert_problem, create_in
from tests.quality.helpers import CHART, at, new_charge


def inspections_url(charge_id: int) -> str:
    return f"{API_PREFIX}/charges/{charge_id}/inspections"


async def inspect(client: httpx.AsyncClient, charge_id: int, **body: Any) -> dict[str, Any]:
    response = await client.post(inspections_url(charge_id), json={"characteristic": "scratches", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def attribute_chart(client: httpx.AsyncClient, chart: str, **params: Any) -> dict[str, Any]:
    query = {"product_sku": "PUMP-A", "chart": chart, "characteristic": "scratches", **params}
    response = await client.get(CHART, params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def samples(client: httpx.AsyncClient, rows: list[tuple[int, int]], form: str) -> list[str]:
    """One charge per sample, inspected a minute apart; ``rows`` are (size, count) in that form."""
    numbers = []
    for serial, (size, count) in enumerate(rows, start=1):
        charge_id = await new_charge(client, serial)
        fields = (
            {"inspected": size, "nonconforming": count}
            if form == "defectives"
            else {"units": size, "nonconformities": count}
        )
        await inspect(client, charge_id, inspected_at=at(serial), **fields)
        numbers.append(f"CH-2026-{serial:06d}")
    return numbers


async def test_an_inspection_is_stored_in_either_form_and_listed_oldest_first(
    client: httpx.AsyncClient,
) -> None:
    charge_id = await new_charge(client, 1)
    defectives = await inspect(client, charge_id, inspected=50, nonconforming=3, inspected_at=at(5))
    assert defectives["form"] == "defectives"
    assert (defectives["inspected"], defectives["nonconforming"], defectives["units"]) == (50, 3, None)
    assert defectives["inspected_at"] == at(5)
    defects = await inspect(client, charge_id, characteristic="dents", units=5, nonconformities=7)
    assert (defects["form"], defects["units"], defects["nonconformities"]) == ("defects", 5, 7)
    assert defects["inspected"] is None and defects["inspected_at"]  # defaults to now
    await inspect(client, charge_id, inspected=20, nonconforming=0, inspected_at=at(1))

    first = await client.get(inspections_url(charge_id), params={"limit": 2})
    assert first.status_code == 200
    page = first.json()
    assert [item["inspected_at"] for item in page["items"]] == [at(1), at(5)]
    assert page["next_cursor"] and 'rel="next"' in first.headers["link"]
    rest = (
        await client.get(inspections_url(charge_id), params={"limit": 2, "cursor": page["next_cursor"]})
    ).json()
    assert [item["id"] for item in rest["items"]] == [defects["id"]] and rest["next_cursor"] is None
    dents = (await client.get(inspections_url(charge_id), params={"characteristic": "dents"})).json()
    assert [item["id"] for item in dents["items"]] == [defects["id"]]


async def test_an_inspection_is_audited_on_its_charge(client: httpx.AsyncClient) -> None:
    charge_id = await new_charge(client, 1)
    created = await inspect(client, charge_id, inspected=50, nonconforming=3)
    trail = (await client.get(f"{API_PREFIX}/audit", params={"entity": "charge", "id": charge_id})).json()
    (entry,) = [item for item in trail["items"] if item["action"] == "record_inspection"]
    assert entry["after"]["inspection_id"] == created["id"]
    assert (entry["after"]["characteristic"], entry["after"]["nonconforming"]) == ("scratches", 3)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inspected": 50, "nonconforming": 51}, "cannot exceed inspected"),
        ({"inspected": 50, "nonconforming": 3, "units": 5, "nonconformities": 1}, "not both"),
        ({}, "give inspected and nonconforming"),
        ({"inspected": 50}, "give inspected with nonconforming"),
        ({"units": 5}, "give inspected with nonconforming"),
        ({"inspected": 0, "nonconforming": 0}, "greater than or equal to 1"),
        ({"units": 5, "nonconformities": -1}, "greater than or equal to 0"),
        ({"inspected": 50.0, "nonconforming": 3}, "valid integer"),
        ({"inspected": 50, "nonconforming": 3, "inspected_at": "2999-01-01T00:00:00Z"}, "after the server's"),
        ({"inspected": 50, "nonconforming": 3, "characteristic": "Scratches!"}, "characteristic"),
    ],
)
async def test_an_inspection_is_validated(
    client: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    charge_id = await new_charge(client, 1)
    response = await client.post(inspections_url(charge_id), json={"characteristic": "scratches", **body})
    problem = assert_problem(response, 422)
    assert message in problem["detail"], problem["detail"]
    assert (await client.get(inspections_url(charge_id))).json()["items"] == []


@pytest.mark.parametrize("status", ["released", "rejected"])
async def test_a_released_or_rejected_charge_takes_no_inspection(
    client: httpx.AsyncClient, status: str
) -> None:
    charge = await create_in(client, 1, status)
    response = await client.post(
        inspections_url(charge["id"]),
        json={"characteristic": "scratches", "inspected": 5, "nonconforming": 0},
    )
    assert assert_problem(response, 409)["current"] == status


async def test_inspections_of_a_missing_charge_are_not_found(client: httpx.AsyncClient) -> None:
    body = {"characteristic": "scratches", "inspected": 5, "nonconforming": 0}
    assert_problem(await client.post(inspections_url(424242), json=body), 404)
    assert_problem(await client.get(inspections_url(424242)), 404)


async def test_a_p_chart_has_limits_per_sample_size_floored_at_zero(client: httpx.AsyncClient) -> None:
    rows = [(50, 2), (50, 3), (100, 4), (50, 15)]
    numbers = await samples(client, rows, "defectives")
    # Another form of the same characteristic is not part of a p chart.
    await inspect(client, await new_charge(client, 9), units=3, nonconformities=9)
    body = await attribute_chart(client, "p")
    assert (body["chart"], body["characteristic"], body["parameter"]) == ("p", "scratches", None)
    (chart,) = body["charts"]
    p_bar = 24 / 250
    assert chart["center"] == pytest.approx(p_bar) and chart["ucl"] is None and chart["lcl"] is None
    assert [point["label"] for point in chart["points"]] == numbers
    assert [point["n"] for point in chart["points"]] == [50, 50, 100, 50]
    assert [point["value"] for point in chart["points"]] == pytest.approx([0.04, 0.06, 0.04, 0.3])
    for point, (size, _) in zip(chart["points"], rows, strict=True):
        sigma = math.sqrt(p_bar * (1 - p_bar) / size)
        assert point["ucl"] == pytest.approx(p_bar + 3 * sigma)
        assert point["lcl"] == pytest.approx(max(0.0, p_bar - 3 * sigma))
    assert chart["points"][0]["lcl"] == 0.0 and chart["points"][2]["lcl"] > 0
    assert [point["violations"] for point in chart["points"]] == [[], [], [], ["N1"]]


async def test_an_np_chart_needs_one_sample_size(client: httpx.AsyncClient) -> None:
    await samples(client, [(50, 2), (50, 3), (50, 1), (50, 4)], "defectives")
    (chart,) = (await attribute_chart(client, "np"))["charts"]
    assert chart["center"] == pytest.approx(2.5)
    assert chart["ucl"] == pytest.approx(2.5 + 3 * math.sqrt(50 * 0.05 * 0.95))
    assert chart["lcl"] == 0.0
    await inspect(client, await new_charge(client, 9), inspected=80, nonconforming=1, inspected_at=at(9))
    query = {"product_sku": "PUMP-A", "chart": "np", "characteristic": "scratches"}
    problem = assert_problem(await client.get(CHART, params=query), 422)
    assert "chart=p" in problem["detail"]


async def test_c_and_u_charts_count_nonconformities(client: httpx.AsyncClient) -> None:
    await samples(client, [(5, 3), (5, 5), (5, 4), (5, 20)], "defects")
    (c_chart,) = (await attribute_chart(client, "c"))["charts"]
    assert (c_chart["center"], c_chart["ucl"]) == (8.0, pytest.approx(8 + 3 * math.sqrt(8)))
    assert c_chart["lcl"] == 0.0
    assert [point["violations"] for point in c_chart["points"]] == [[], [], [], ["N1"]]
    (u_chart,) = (await attribute_chart(client, "u"))["charts"]
    assert [point["value"] for point in u_chart["points"]] == pytest.approx([0.6, 1.0, 0.8, 4.0])

    await inspect(client, await new_charge(client, 9), units=10, nonconformities=4, inspected_at=at(9))
    (u_chart,) = (await attribute_chart(client, "u"))["charts"]
    u_bar = 36 / 30
    assert u_chart["center"] == pytest.approx(u_bar) and u_chart["ucl"] is None
    assert u_chart["points"][-1]["ucl"] == pytest.approx(u_bar + 3 * math.sqrt(u_bar / 10))
    assert u_chart["points"][0]["ucl"] == pytest.approx(u_bar + 3 * math.sqrt(u_bar / 5))
    query = {"product_sku": "PUMP-A", "chart": "c", "characteristic": "scratches"}
    assert "chart=u" in assert_problem(await client.get(CHART, params=query), 422)["detail"]


async def test_an_attribute_chart_shows_the_latest_samples_and_follows_new_ones(
    client: httpx.AsyncClient,
) -> None:
    await samples(client, [(50, 2), (50, 3), (50, 1)], "defectives")
    latest = await attribute_chart(client, "np", limit=2)
    assert [point["value"] for point in latest["charts"][0]["points"]] == [3.0, 1.0]
    await inspect(client, await new_charge(client, 9), inspected=50, nonconforming=6, inspected_at=at(9))
    moved = await attribute_chart(client, "np", limit=2)
    assert [point["value"] for point in moved["charts"][0]["points"]] == [1.0, 6.0]
