"""GET /charges/{id}/history: who moved a charge, when, from which status to which, and why."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from erp_api.http import API_PREFIX
from tests.charges.helpers import assert_problem, create

API = f"{API_PREFIX}/charges"
ClientAs = Callable[[str], Awaitable[httpx.AsyncClient]]


async def test_the_history_lists_every_change_oldest_first_with_reason_time_and_actor(
    client: httpx.AsyncClient, client_as: ClientAs
) -> None:
    manager = await client_as("quality_manager")
    viewer = await client_as("viewer")
    charge = await create(client, 1)
    url = f"{API}/{charge['id']}"
    steps = [("in_production", "line 1 started"), ("quarantined", "burr on lot 7"), ("released", None)]
    for target, reason in steps:
        response = await manager.post(f"{url}/transitions", json={"to": target, "reason": reason})
        assert response.status_code == 200, response.text

    history = await viewer.get(f"{url}/history")
    assert history.status_code == 200, history.text
    body = history.json()
    assert (body["charge_id"], body["truncated"]) == (charge["id"], False)
    items = body["items"]
    assert [(item["from"], item["to"], item["reason"]) for item in items] == [
        ("planned", "in_production", "line 1 started"),
        ("in_production", "quarantined", "burr on lot 7"),
        ("quarantined", "released", None),
    ]
    assert [item["changed_at"] for item in items] == sorted(item["changed_at"] for item in items)
    keys = (await client.get(f"{API_PREFIX}/keys")).json()["items"]
    manager_key = next(key for key in keys if key["name"] == "test quality_manager")
    for item in items:
        assert item["by"] == {
            "name": "test quality_manager",
            "role": "quality_manager",
            "key_id": manager_key["id"],
        }


async def test_the_history_shows_a_new_change_after_it_was_read(
    client: httpx.AsyncClient,
) -> None:
    charge = await create(client, 1)
    url = f"{API}/{charge['id']}"
    assert (await client.get(f"{url}/history")).json()["items"] == []
    await client.post(f"{url}/transitions", json={"to": "in_production"})
    assert [item["to"] for item in (await client.get(f"{url}/history")).json()["items"]] == ["in_production"]


async def test_the_history_of_an_unknown_charge_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{API}/999999/history"), 404)
    assert_problem(await client.get(f"{API}/abc/history"), 404)


async def test_a_refused_transition_leaves_no_history(client: httpx.AsyncClient) -> None:
    charge = await create(client, 1)
    url = f"{API}/{charge['id']}"
    assert_problem(await client.post(f"{url}/transitions", json={"to": "released", "reason": "skip"}), 409)
    assert (await client.get(f"{url}/history")).json()["items"] == []


async def test_the_audit_trail_carries_the_reason_of_a_transition(client: httpx.AsyncClient) -> None:
    charge = await create(client, 1)
    url = f"{API}/{charge['id']}"
    await client.post(f"{url}/transitions", json={"to": "in_production", "reason": "line 1 started"})
    events = (
        await client.get(f"{API_PREFIX}/audit", params={"entity": "charge", "id": str(charge["id"])})
    ).json()["items"]
    (transition,) = [event for event in events if event["action"] == "transition"]
    assert transition["after"]["reason"] == "line 1 started"
    assert transition["after"]["status"] == "in_production"


async def test_the_openapi_document_describes_the_history_and_its_bound(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][f"{API}/{{id}}/history"]["get"]
    assert "1,000" in operation["summary"]
    assert operation["x-required-role"] == "viewer"
    schema = document["components"]["schemas"]["ChargeHistory"]
    assert "1,000" in schema["description"]
    assert set(document["components"]["schemas"]["StatusChangeOut"]["properties"]) == {
        "from",
        "to",
        "reason",
        "changed_at",
        "by",
    }
