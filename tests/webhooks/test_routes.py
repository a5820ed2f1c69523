"""``/api/v1/webhooks``: subscribe (the secret once), list and fetch without it, disable, validation,
admins only, audited without the secret."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from erp_api.http import API_PREFIX
from tests.charges.helpers import assert_problem
from tests.webhooks.conftest import subscribe

WEBHOOKS = f"{API_PREFIX}/webhooks"
URL = "https://hooks.example.com/erp?token=abc"


async def test_creating_a_webhook_returns_its_secret_once_and_never_again(client: httpx.AsyncClient) -> None:
    response = await client.post(
        WEBHOOKS, json={"url": URL, "events": ["alert.opened"], "description": "QA pager"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert response.headers["location"] == f"{WEBHOOKS}/{created['id']}"
    assert response.headers["cache-control"] == "no-store"
    assert {key: created[key] for key in ("url", "events", "description", "disabled_at")} == {
        "url": URL,
        "events": ["alert.opened"],
        "description": "QA pager",
        "disabled_at": None,
    }
    fetched = (await client.get(f"{WEBHOOKS}/{created['id']}")).json()
    listed = (await client.get(WEBHOOKS)).json()["items"]
    assert "secret" not in fetched
    assert fetched == {key: value for key, value in created.items() if key != "secret"}
    assert listed == [fetched]
    for response in (await client.get(f"{WEBHOOKS}/{created['id']}"), await client.get(WEBHOOKS)):
        assert created["secret"] not in response.text


async def test_each_webhook_gets_a_secret_of_its_own(client: httpx.AsyncClient) -> None:
    first = await subscribe(client, URL)
    second = await subscribe(client, URL)
    assert first["secret"] != second["secret"]


async def test_the_audit_trail_records_the_subscription_but_never_its_secret(
    client: httpx.AsyncClient,
) -> None:
    created = await subscribe(client, URL, ["charge.status_changed"])
    assert (await client.delete(f"{WEBHOOKS}/{created['id']}")).status_code == 204
    response = await client.get(f"{API_PREFIX}/audit", params={"entity": "webhook", "id": str(created["id"])})
    events = response.json()["items"]
    assert [event["action"] for event in events] == ["disable", "create"]
    assert events[1]["after"]["url"] == URL
    assert events[1]["after"]["events"] == ["charge.status_changed"]
    assert events[0]["after"]["disabled_at"] is not None
    assert created["secret"] not in response.text
    assert "secret" not in response.text


async def test_a_disabled_webhook_is_listed_only_on_request_and_cannot_be_disabled_twice(
    client: httpx.AsyncClient,
) -> None:
    kept = await subscribe(client, URL)
    gone = await subscribe(client, "http://10.0.0.7:8080/hook")
    assert (await client.delete(f"{WEBHOOKS}/{gone['id']}")).status_code == 204
    assert [item["id"] for item in (await client.get(WEBHOOKS)).json()["items"]] == [kept["id"]]
    every = (await client.get(WEBHOOKS, params={"include_disabled": "true"})).json()["items"]
    assert [item["id"] for item in every] == [kept["id"], gone["id"]]
    assert every[1]["disabled_at"] is not None
    assert (await client.get(f"{WEBHOOKS}/{gone['id']}")).json()["disabled_at"] is not None
    assert_problem(await client.delete(f"{WEBHOOKS}/{gone['id']}"), 404)


async def test_unknown_webhooks_are_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{WEBHOOKS}/999"), 404)
    assert_problem(await client.delete(f"{WEBHOOKS}/999"), 404)
    assert_problem(await client.get(f"{WEBHOOKS}/999/deliveries"), 404)
    assert_problem(await client.get(f"{WEBHOOKS}/abc"), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/x", "events": ["alert.opened"]}, "body.url"),
        ({"url": "file:///etc/passwd", "events": ["alert.opened"]}, "body.url"),
        ({"url": "hooks.example.com/x", "events": ["alert.opened"]}, "body.url"),
        ({"url": "https://user:pass@hooks.example.com/x", "events": ["alert.opened"]}, "body.url"),
        ({"url": "https://token@hooks.example.com/x", "events": ["alert.opened"]}, "body.url"),
        ({"url": "https:///no-host", "events": ["alert.opened"]}, "body.url"),
        ({"url": "https://hooks.example.com:99999/x", "events": ["alert.opened"]}, "body.url"),
        ({"url": "https://[::1/x", "events": ["alert.opened"]}, "body.url"),
        ({"url": "https://hooks.example.com/a b", "events": ["alert.opened"]}, "body.url"),
        ({"url": "https://hooks.example.com/x#part", "events": ["alert.opened"]}, "body.url"),
        ({"url": "https://hooks.example.com/" + "x" * 2048, "events": ["alert.opened"]}, "body.url"),
        ({"url": "", "events": ["alert.opened"]}, "body.url"),
        ({"url": URL, "events": []}, "body.events"),
        ({"url": URL, "events": ["alert.deleted"]}, "body.events.0"),
        ({"url": URL, "events": ["alert.opened", "alert.opened"]}, "body.events"),
        ({"url": URL}, "body.events"),
        ({"events": ["alert.opened"]}, "body.url"),
        ({"url": URL, "events": ["alert.opened"], "description": "x" * 501}, "body.description"),
        ({"url": URL, "events": ["alert.opened"], "secret": "whsec_mine"}, "body.secret"),
    ],
)
async def test_invalid_subscriptions_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    problem = assert_problem(await client.post(WEBHOOKS, json=body), 422)
    assert problem["errors"][0]["field"] == field, problem
    assert (await client.get(WEBHOOKS, params={"include_disabled": "true"})).json()["items"] == []


@pytest.mark.parametrize("role", ["viewer", "operator", "quality_manager"])
async def test_only_admins_manage_webhooks(
    client_as: Callable[[str], Awaitable[httpx.AsyncClient]], client: httpx.AsyncClient, role: str
) -> None:
    created = await subscribe(client, URL)
    other = await client_as(role)
    for response in (
        await other.post(WEBHOOKS, json={"url": URL, "events": ["alert.opened"]}),
        await other.get(WEBHOOKS),
        await other.get(f"{WEBHOOKS}/{created['id']}"),
        await other.get(f"{WEBHOOKS}/{created['id']}/deliveries"),
        await other.delete(f"{WEBHOOKS}/{created['id']}"),
    ):
        assert assert_problem(response, 403)["required_role"] == "admin"
    assert (await client.get(f"{WEBHOOKS}/{created['id']}")).json()["disabled_at"] is None
