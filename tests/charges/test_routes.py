"""The charges API as the ERP frontend uses it, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from erp_api.http import API_PREFIX
from tests.charges.helpers import assert_problem, charge_payload, create

API = f"{API_PREFIX}/charges"


async def test_create_returns_201_with_location_etag_and_the_stored_charge(client: httpx.AsyncClient) -> None:
    response = await client.post(API, json=charge_payload(1, quantity="10.25"))
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"{API}/{body['id']}"
    assert response.headers["etag"] == f'"c{body["id"]}v1"'
    assert body["charge_number"] == "CH-2026-000001"
    assert body["quantity"] == "10.250"
    assert body["status"] == "planned"
    assert body["version"] == 1
    assert body["produced_at"].startswith("2026-03-01T07:00:00")

    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == body


async def test_duplicate_charge_number_is_409(client: httpx.AsyncClient) -> None:
    await create(client, 1)
    problem = assert_problem(await client.post(API, json=charge_payload(1, line="L2")), 409)
    assert "CH-2026-000001" in problem["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": 0}, "body.quantity"),
        ({"quantity": -3}, "body.quantity"),
        ({"quantity": "NaN"}, "body.quantity"),
        ({"quantity": "1.23456"}, "body.quantity"),
        ({"line": 7}, "body.line"),
        ({"produced_at": "2026-01-01T00:00:00"}, "body.produced_at"),
        ({"charge_number": "ch 1"}, "body.charge_number"),
        ({"status": "shipped"}, "body.status"),
        ({"colour": "red"}, "body.colour"),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, object], field: str
) -> None:
    problem = assert_problem(await client.post(API, json=charge_payload(1, **change)), 422)
    assert field in [error["field"] for error in problem["errors"]]


async def test_missing_field_is_422(client: httpx.AsyncClient) -> None:
    payload = charge_payload(1)
    del payload["unit"]
    problem = assert_problem(await client.post(API, json=payload), 422)
    assert problem["errors"][0]["field"] == "body.unit"


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        API, content=b'{"charge_number": ', headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in assert_problem(response, 400)["detail"]


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(API, content=b"charge_number=1", headers={"content-type": "text/plain"})
    assert_problem(response, 415)


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    body = b'{"charge_number": "' + b"A" * (2 * 2**20) + b'"}'
    response = await client.post(API, content=body, headers={"content-type": "application/json"})
    assert_problem(response, 413)


async def test_get_unknown_or_malformed_id_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{API}/999999"), 404)
    assert_problem(await client.get(f"{API}/abc"), 404)
    assert_problem(await client.get(f"{API}/99999999999999999999999"), 404)


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{API_PREFIX}/nothing-here"), 404)
    assert_problem(await client.put(API), 405)


async def test_if_none_match_with_current_etag_is_304(client: httpx.AsyncClient) -> None:
    created = await create(client, 1)
    first = await client.get(f"{API}/{created['id']}")
    etag = first.headers["etag"]
    again = await client.get(f"{API}/{created['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.content == b""
    other = await client.get(f"{API}/{created['id']}", headers={"If-None-Match": '"c1v999"'})
    assert other.status_code == 200


async def test_patch_changes_fields_and_moves_the_etag(client: httpx.AsyncClient) -> None:
    created = await create(client, 1)
    url = f"{API}/{created['id']}"
    response = await client.patch(
        url, json={"quantity": "99", "line": "L7"}, headers={"If-Match": f'"c{created["id"]}v1"'}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["quantity"], body["line"], body["version"]) == ("99.000", "L7", 2)
    assert response.headers["etag"] == f'"c{created["id"]}v2"'
    assert (await client.get(url)).json() == body


async def test_patch_with_stale_if_match_is_412_and_changes_nothing(client: httpx.AsyncClient) -> None:
    created = await create(client, 1)
    url = f"{API}/{created['id']}"
    await client.patch(url, json={"unit": "kg"})
    stale = await client.patch(url, json={"unit": "t"}, headers={"If-Match": f'"c{created["id"]}v1"'})
    assert_problem(stale, 412)
    assert (await client.get(url)).json()["unit"] == "kg"


@pytest.mark.parametrize(
    "body", [{}, {"quantity": None}, {"status": "released"}, {"charge_number": "CH-X-1"}]
)
async def test_patch_refuses_empty_null_and_immutable_fields(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    created = await create(client, 1)
    assert_problem(await client.patch(f"{API}/{created['id']}", json=body), 422)


async def test_patch_unknown_charge_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.patch(f"{API}/12345", json={"unit": "kg"}), 404)


async def test_transitions_follow_the_life_cycle(client: httpx.AsyncClient) -> None:
    created = await create(client, 1)
    url = f"{API}/{created['id']}/transitions"
    for target in ("in_production", "quarantined", "released", "quarantined", "rejected"):
        response = await client.post(url, json={"to": target, "reason": f"to {target}"})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == target
    assert (await client.get(f"{API}/{created['id']}")).json()["status"] == "rejected"


async def test_illegal_transition_is_409_listing_the_allowed_targets(client: httpx.AsyncClient) -> None:
    created = await create(client, 1)
    url = f"{API}/{created['id']}/transitions"
    problem = assert_problem(await client.post(url, json={"to": "released"}), 409)
    assert problem["current"] == "planned"
    assert problem["allowed"] == ["in_production"]
    await client.post(url, json={"to": "in_production"})
    await client.post(url, json={"to": "rejected"})
    assert assert_problem(await client.post(url, json={"to": "quarantined"}), 409)["allowed"] == []


async def test_transition_to_unknown_status_is_422(client: httpx.AsyncClient) -> None:
    created = await create(client, 1)
    assert_problem(await client.post(f"{API}/{created['id']}/transitions", json={"to": "shipped"}), 422)


async def test_delete_planned_is_204_and_other_statuses_409(client: httpx.AsyncClient) -> None:
    planned = await create(client, 1)
    started = await create(client, 2)
    await client.post(f"{API}/{started['id']}/transitions", json={"to": "in_production"})

    assert (await client.delete(f"{API}/{planned['id']}")).status_code == 204
    assert_problem(await client.get(f"{API}/{planned['id']}"), 404)
    assert_problem(await client.delete(f"{API}/{planned['id']}"), 404)
    assert assert_problem(await client.delete(f"{API}/{started['id']}"), 409)["current"] == "in_production"
    assert (await client.get(f"{API}/{started['id']}")).status_code == 200
