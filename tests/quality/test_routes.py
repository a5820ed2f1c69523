"""The quality API's specs and measurements endpoints, and their validation, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.charges.helpers import assert_problem
from tests.quality.helpers import (
    SPECS,
    at,
    given_spec,
    measurements_url,
    new_charge,
    post_one,
    post_series,
    put_spec,
    reject,
)

# Specifications -------------------------------------------------------------------------------------


async def test_put_spec_creates_with_201_then_replaces_with_200(client: httpx.AsyncClient) -> None:
    created = await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.9, usl=25.1, target=25.0)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["product_sku"], body["parameter"], body["unit"]) == ("PUMP-A", "diameter_mm", "mm")
    assert (body["lsl"], body["usl"], body["target"]) == (24.9, 25.1, 25.0)

    replaced = await put_spec(client, "PUMP-A", "diameter_mm", unit="cm", usl=2.51)
    assert replaced.status_code == 200, replaced.text
    again = replaced.json()
    assert (again["unit"], again["lsl"], again["usl"], again["target"]) == ("cm", None, 2.51, None)
    assert again["created_at"] == body["created_at"]
    assert again["updated_at"] >= body["updated_at"]

    listed = (await client.get(SPECS, params={"product_sku": "PUMP-A"})).json()
    assert listed == {"items": [again], "next_cursor": None}


async def test_spec_list_filters_by_product_and_pages_every_spec_once(client: httpx.AsyncClient) -> None:
    for index in range(7):
        response = await put_spec(client, "PUMP-A" if index % 2 else "VALVE-B", f"p{index}", usl=1.0)
        assert response.status_code == 201
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        page = (await client.get(SPECS, params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
        assert len(page["items"]) <= 2
        seen += [(item["product_sku"], item["parameter"]) for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [("PUMP-A" if index % 2 else "VALVE-B", f"p{index}") for index in range(7)]
    pumps = (await client.get(SPECS, params={"product_sku": "PUMP-A"})).json()["items"]
    assert [spec["parameter"] for spec in pumps] == ["p1", "p3", "p5"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"unit": "mm"}, "body"),
        ({"unit": "mm", "lsl": 2.0, "usl": 1.0}, "body"),
        ({"unit": "mm", "lsl": 1.0, "usl": 1.0}, "body"),
        ({"unit": "mm", "lsl": 1.0, "usl": 2.0, "target": 2.5}, "body"),
        ({"unit": "mm", "usl": 2.0, "target": 2.5}, "body"),
        ({"unit": "mm", "lsl": 1.0, "target": 0.5}, "body"),
        ({"unit": "mm", "usl": "2.0"}, "body.usl"),
        ({"unit": "mm", "usl": 1e16}, "body.usl"),
        ({"unit": "", "usl": 1.0}, "body.unit"),
        ({"usl": 1.0}, "body.unit"),
        ({"unit": "mm", "usl": 1.0, "colour": "red"}, "body.colour"),
    ],
)
async def test_invalid_spec_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(await client.put(f"{SPECS}/PUMP-A/diameter_mm", json=body), 422)
    assert field in [error["field"] for error in problem["errors"]]
    assert (await client.get(SPECS)).json()["items"] == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("PUMP;A/diameter_mm", "path.product_sku"),
        ("-PUMP/diameter_mm", "path.product_sku"),
        ("PUMP-A/Diameter", "path.parameter"),
        ("PUMP-A/1mm", "path.parameter"),
    ],
)
async def test_spec_path_must_name_a_valid_product_and_parameter(
    client: httpx.AsyncClient, path: str, field: str
) -> None:
    problem = assert_problem(await client.put(f"{SPECS}/{path}", json={"unit": "mm", "usl": 1.0}), 422)
    assert problem["errors"][0]["field"] == field


async def test_a_spec_is_fetched_by_product_and_parameter(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{SPECS}/PUMP-A/diameter_mm"), 404)
    stored = (
        await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.9, usl=25.1, rules="western_electric")
    ).json()
    fetched = await client.get(f"{SPECS}/PUMP-A/diameter_mm")
    assert fetched.status_code == 200 and fetched.json() == stored
    replaced = (await put_spec(client, "PUMP-A", "diameter_mm", usl=30.0)).json()
    assert (await client.get(f"{SPECS}/PUMP-A/diameter_mm")).json() == replaced
    assert_problem(await client.get(f"{SPECS}/PUMP-A/length_mm"), 404)
    assert_problem(await client.get(f"{SPECS}/PUMP-B/diameter_mm"), 404)
    assert (
        assert_problem(await client.get(f"{SPECS}/PUMP-A/Diameter"), 422)["errors"][0]["field"]
        == "path.parameter"
    )


async def test_non_json_spec_is_415(client: httpx.AsyncClient) -> None:
    response = await client.put(f"{SPECS}/PUMP-A/x", content=b"usl=1", headers={"content-type": "text/plain"})
    assert_problem(response, 415)


# Recording measurements -----------------------------------------------------------------------------


async def test_single_measurement_is_stored_with_an_id_and_defaults_to_now(client: httpx.AsyncClient) -> None:
    charge_id = await new_charge(client, 1)
    await given_spec(client, "diameter_mm")
    before = datetime.now(UTC)
    response = await post_one(client, charge_id, "diameter_mm", 25.01)
    after = datetime.now(UTC)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["charge_id"], body["parameter"], body["value"]) == (charge_id, "diameter_mm", 25.01)
    assert before <= datetime.fromisoformat(body["measured_at"]) <= after
    listed = (await client.get(measurements_url(charge_id))).json()["items"]
    assert listed == [body]


async def test_measured_at_keeps_the_instant_and_is_returned_in_utc(client: httpx.AsyncClient) -> None:
    charge_id = await new_charge(client, 1)
    await given_spec(client, "weight_g")
    response = await post_one(client, charge_id, "weight_g", 3, measured_at="2026-05-01T12:00:00.250+02:00")
    assert response.status_code == 201, response.text
    assert response.json()["measured_at"] == "2026-05-01T10:00:00.250000+00:00"
    assert response.json()["value"] == 3.0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"parameter": "x", "value": NaN}',
        b'{"parameter": "x", "value": Infinity}',
        b'{"parameter": "x", "value": -Infinity}',
        b'{"parameter": "x", "value": 1e999}',
        b'{"parameter": "x", "value": -1e400}',
        b'{"parameter": "x", "value": 1e16}',
        b'{"parameter": "x", "value": "1.5"}',
        b'{"parameter": "x", "value": true}',
        b'{"parameter": "x", "value": null}',
        b'{"parameter": "x"}',
    ],
)
async def test_values_must_be_finite_numbers(client: httpx.AsyncClient, raw: bytes) -> None:
    charge_id = await new_charge(client, 1)
    response = await client.post(
        measurements_url(charge_id), content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code in {400, 422}, response.text
    assert_problem(response, response.status_code)
    if response.status_code == 422:
        assert response.json()["errors"][0]["field"] == "body.value"
    assert (await client.get(measurements_url(charge_id))).json()["items"] == []


@pytest.mark.parametrize("parameter", ["Diameter", "1st", "_x", "dia-meter", "dia meter", "", "a" * 65, "ä"])
async def test_parameter_names_follow_the_documented_pattern(
    client: httpx.AsyncClient, parameter: str
) -> None:
    charge_id = await new_charge(client, 1)
    problem = assert_problem(await post_one(client, charge_id, parameter, 1.0), 422)
    assert problem["errors"][0]["field"] == "body.parameter"


@pytest.mark.parametrize("parameter", ["a", "diameter_mm", "x9", "a" * 64])
async def test_valid_parameter_names_are_accepted(client: httpx.AsyncClient, parameter: str) -> None:
    charge_id = await new_charge(client, 1)
    await given_spec(client, parameter)
    assert (await post_one(client, charge_id, parameter, 1.0)).status_code == 201


@pytest.mark.parametrize(
    "extra",
    [{"measured_at": "2026-05-01T12:00:00"}, {"measured_at": "yesterday"}, {"unit": "mm"}],
)
async def test_naive_or_unknown_fields_are_422(client: httpx.AsyncClient, extra: dict[str, Any]) -> None:
    charge_id = await new_charge(client, 1)
    assert_problem(await post_one(client, charge_id, "x", 1.0, **extra), 422)


async def test_unknown_charge_is_404_and_rejected_charge_is_409(client: httpx.AsyncClient) -> None:
    assert_problem(await post_one(client, 999_999, "x", 1.0), 404)
    assert_problem(
        await client.post("/api/v1/charges/abc/measurements", json={"parameter": "x", "value": 1}), 404
    )
    assert_problem(
        await client.post(measurements_url(999_999), json={"items": [{"parameter": "x", "value": 1}]}), 404
    )
    charge_id = await new_charge(client, 1)
    await given_spec(client, "x")
    await post_one(client, charge_id, "x", 1.0)
    await reject(client, charge_id)
    problem = assert_problem(await post_one(client, charge_id, "x", 2.0), 409)
    assert "rejected" in problem["detail"]
    batch = {"items": [{"parameter": "x", "value": 2.0}]}
    assert_problem(await client.post(measurements_url(charge_id), json=batch), 409)
    assert [m["value"] for m in (await client.get(measurements_url(charge_id))).json()["items"]] == [1.0]


async def test_batch_is_stored_all_or_nothing_and_errors_name_the_item(client: httpx.AsyncClient) -> None:
    charge_id = await new_charge(client, 1)
    await given_spec(client, "x")
    items: list[dict[str, Any]] = [
        {"parameter": "x", "value": float(i), "measured_at": at(i)} for i in range(5)
    ]
    broken = [*items[:3], {"parameter": "x", "value": "NaN"}, *items[3:]]
    problem = assert_problem(await client.post(measurements_url(charge_id), json={"items": broken}), 422)
    assert problem["errors"][0]["field"] == "body.items.3.value"
    assert (await client.get(measurements_url(charge_id))).json()["items"] == []

    await post_series(client, charge_id, "x", [float(i) for i in range(5)])
    listed = (await client.get(measurements_url(charge_id))).json()["items"]
    assert [m["value"] for m in listed] == [0.0, 1.0, 2.0, 3.0, 4.0]


async def test_batch_size_is_bounded(client: httpx.AsyncClient) -> None:
    charge_id = await new_charge(client, 1)
    await given_spec(client, "x")
    assert_problem(await client.post(measurements_url(charge_id), json={"items": []}), 422)
    item = {"parameter": "x", "value": 1.0}
    problem = assert_problem(
        await client.post(measurements_url(charge_id), json={"items": [item] * 10_001}), 422
    )
    assert problem["errors"][0]["field"] == "body.items"
    created = await client.post(measurements_url(charge_id), json={"items": [item] * 10_000})
    assert created.status_code == 201, created.text
    assert created.json()["count"] == 10_000


async def test_malformed_json_is_400_and_wrong_media_type_415(client: httpx.AsyncClient) -> None:
    charge_id = await new_charge(client, 1)
    url = measurements_url(charge_id)
    assert_problem(
        await client.post(url, content=b'{"parameter": ', headers={"content-type": "application/json"}), 400
    )
    assert_problem(await client.post(url, content=b"x=1", headers={"content-type": "text/plain"}), 415)


# Reading measurements -------------------------------------------------------------------------------


async def test_list_is_in_time_order_and_pages_return_every_row_once(client: httpx.AsyncClient) -> None:
    charge_id = await new_charge(client, 1)
    await given_spec(client, "x", "y")
    # Out of time order on purpose, with ties broken by id.
    minutes = [5, 3, 3, 9, 0, 7, 3, 1, 8, 2, 6]
    items = [{"parameter": "x", "value": float(i), "measured_at": at(m)} for i, m in enumerate(minutes)]
    await client.post(measurements_url(charge_id), json={"items": items})
    await post_series(client, charge_id, "y", [100.0, 101.0])
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"parameter": "x", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(measurements_url(charge_id), params=params)).json()
        assert len(page["items"]) <= 3
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [item["value"] for item in seen] == [4.0, 7.0, 9.0, 1.0, 2.0, 6.0, 0.0, 10.0, 5.0, 8.0, 3.0]
    assert len({item["id"] for item in seen}) == len(minutes)
    everything = (await client.get(measurements_url(charge_id), params={"limit": 500})).json()
    assert len(everything["items"]) == 13 and everything["next_cursor"] is None


async def test_list_validates_its_query(client: httpx.AsyncClient) -> None:
    charge_id = await new_charge(client, 1)
    url = measurements_url(charge_id)
    assert_problem(await client.get(url, params={"limit": 501}), 422)
    assert_problem(await client.get(url, params={"limit": 0}), 422)
    assert_problem(await client.get(url, params={"cursor": "not-a-cursor"}), 422)
    assert_problem(await client.get(url, params={"parameter": "Bad"}), 422)
    assert_problem(await client.get(measurements_url(424242)), 404)
