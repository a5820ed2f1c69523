"""The shared request and response helpers: every paged list links its next page (RFC 8288),
validation messages reach the client without the validation library's wording around them, and a
cached JSON document goes out exactly as any JSON response would."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Message

from erp_api.http import API_PREFIX, JsonDocumentResponse, json_response, next_page_url, request_header
from tests.charges.helpers import assert_problem, create, create_in
from tests.quality.alerts.helpers import BEYOND_3_SIGMA, wait_for_alerts, watch
from tests.quality.helpers import SPECS, at, given_spec, measurements_url

# Each paged list of the API, and how to give it two rows: (path, query) of a list holding at least two.
Seed = Callable[[httpx.AsyncClient], Awaitable[tuple[str, dict[str, Any]]]]


async def _charges(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    await create(client, 1)
    await create(client, 2)
    return f"{API_PREFIX}/charges", {"product_sku": "PUMP-A", "status": ["planned", "released"]}


async def _measured_charge(client: httpx.AsyncClient) -> int:
    charge_id: int = (await create_in(client, 1, "in_production"))["id"]
    await given_spec(client, "diameter_mm")
    for minute in (1, 2):
        body = {"parameter": "diameter_mm", "value": 10.0, "measured_at": at(minute)}
        assert (await client.post(measurements_url(charge_id), json=body)).status_code == 201
    return charge_id


async def _measurements(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    return measurements_url(await _measured_charge(client)), {"parameter": "diameter_mm"}


async def _inspections(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    url = f"{API_PREFIX}/charges/{(await create_in(client, 1, 'in_production'))['id']}/inspections"
    for minute in (1, 2):
        body = {
            "characteristic": "scratches",
            "inspected": 50,
            "nonconforming": minute,
            "inspected_at": at(minute),
        }
        assert (await client.post(url, json=body)).status_code == 201
    return url, {"characteristic": "scratches"}


async def _specs(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    await given_spec(client, "diameter_mm", "length_mm")
    return SPECS, {"product_sku": "PUMP-A"}


async def _summary_by_charge(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    await _measured_charge(client)
    second: int = (await create_in(client, 2, "in_production"))["id"]
    body = {"parameter": "diameter_mm", "value": 10.1, "measured_at": at(3)}
    assert (await client.post(measurements_url(second), json=body)).status_code == 201
    return f"{API_PREFIX}/quality/summary", {"group_by": "charge", "product_sku": "PUMP-A"}


async def _analyses(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    url = f"{API_PREFIX}/charges/{await _measured_charge(client)}/analyses"
    for rules in ("nelson", "western_electric"):
        assert (await client.post(url, json={"rules": rules})).status_code == 202
    return url, {}


async def _audit(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    await create(client, 1)
    await create(client, 2)
    return f"{API_PREFIX}/audit", {"entity": "charge"}


async def _alerts(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    await watch(client)
    charge_id = (await create_in(client, 1, "in_production"))["id"]
    for minute in (1, 2):
        body = {"parameter": "diameter", "value": BEYOND_3_SIGMA, "measured_at": at(minute)}
        assert (await client.post(measurements_url(charge_id), json=body)).status_code == 201
    await wait_for_alerts(client, 2)
    return f"{API_PREFIX}/quality/alerts", {"status": ["open", "acknowledged"]}


async def _deliveries(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    # Nothing listens there and no worker runs: the deliveries stay pending, listed all the same.
    subscription = {"url": "http://127.0.0.1:9/hook", "events": ["charge.status_changed"]}
    webhook = (await client.post(f"{API_PREFIX}/webhooks", json=subscription)).json()
    await create_in(client, 1, "in_production")
    await create_in(client, 2, "in_production")
    return f"{API_PREFIX}/webhooks/{webhook['id']}/deliveries", {"status": "pending"}


PAGED_LISTS: dict[str, Seed] = {
    "/api/v1/charges": _charges,
    "/api/v1/charges/{id}/measurements": _measurements,
    "/api/v1/charges/{id}/inspections": _inspections,
    "/api/v1/quality/specs": _specs,
    "/api/v1/charges/{id}/analyses": _analyses,
    "/api/v1/audit": _audit,
    "/api/v1/quality/alerts": _alerts,
    "/api/v1/quality/summary": _summary_by_charge,
    "/api/v1/webhooks/{id}/deliveries": _deliveries,
}


async def test_the_table_names_every_paged_list_of_the_api(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    paged = set()
    for path, item in document["paths"].items():
        for operation in item.values():
            schema = operation["responses"].get("200", {}).get("content", {}).get("application/json", {})
            ref = schema.get("schema", {}).get("$ref", "")
            if "next_cursor" in schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}):
                paged.add(path)
                assert "Link" in operation["responses"]["200"]["headers"], path
    assert paged == set(PAGED_LISTS)


@pytest.mark.parametrize("template", list(PAGED_LISTS))
async def test_every_paged_list_links_its_next_page_keeping_the_other_parameters(
    client: httpx.AsyncClient, template: str
) -> None:
    path, params = await PAGED_LISTS[template](client)
    response = await client.get(path, params={**params, "limit": 1})
    assert response.status_code == 200, response.text
    sent = [(key, value) for key, value in response.request.url.params.multi_items()]
    pages = [response.json()]
    while response.json()["next_cursor"] is not None:
        link = response.headers["link"]
        assert link.startswith(f"<{path}?") and link.endswith('>; rel="next"'), link
        url = httpx.URL(link[1 : link.index(">")])
        assert [(k, v) for k, v in url.params.multi_items() if k != "cursor"] == sent
        assert url.params["cursor"] == response.json()["next_cursor"]
        response = await client.get(str(url))
        assert response.status_code == 200, response.text
        pages.append(response.json())
    assert "link" not in response.headers
    assert len(pages) >= 2
    ids = [item.get("id", str(item)) for page in pages for item in page["items"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("template", list(PAGED_LISTS))
async def test_a_cursor_id_of_2_to_the_63_is_a_422_on_every_paged_list(
    client: httpx.AsyncClient, template: str
) -> None:
    """Each list's own cursor, with its id replaced by one beyond the 64-bit ids of the databases."""
    import base64
    import json

    path, params = await PAGED_LISTS[template](client)
    cursor = (await client.get(path, params={**params, "limit": 1})).json()["next_cursor"]
    fields = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for row_id in (2**63, 2**64, 10**30):
        forged = base64.urlsafe_b64encode(json.dumps([*fields[:-1], row_id]).encode()).rstrip(b"=").decode()
        problem = assert_problem(await client.get(path, params={**params, "cursor": forged}), 422)
        assert problem["errors"][0]["field"] == "query.cursor"


def _request(query: bytes) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/api/v1/charges", "query_string": query, "headers": []}
    )


def test_the_next_page_url_replaces_the_cursor_and_keeps_everything_else_in_order() -> None:
    url = next_page_url(
        _request(
            b"status=planned&cursor=old&status=released&produced_from=2026-01-01T00%3A00%3A00%2B01%3A00"
        ),
        "new",
    )
    assert url == (
        "/api/v1/charges?status=planned&status=released&produced_from=2026-01-01T00%3A00%3A00%2B01%3A00&cursor=new"
    )
    assert httpx.URL(url).params["produced_from"] == "2026-01-01T00:00:00+01:00"


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("PATCH", "/charges/{id}", {}, "name at least one of quantity, unit, line, produced_at"),
        (
            "PUT",
            "/quality/specs/PUMP-A/diameter_mm",
            {"unit": "mm", "lsl": 2.0, "usl": 1.0},
            "lsl must be below usl",
        ),
        (
            "GET",
            "/charges?produced_from=2026-02-01T00:00:00Z&produced_to=2026-01-01T00:00:00Z",
            None,
            "produced_from must not be after produced_to",
        ),
    ],
)
async def test_validation_messages_carry_no_library_prefix(
    client: httpx.AsyncClient, method: str, path: str, body: Any, message: str
) -> None:
    charge = await create(client, 1)
    url = API_PREFIX + path.replace("{id}", str(charge["id"]))
    problem = assert_problem(await client.request(method, url, json=body), 422)
    assert problem["errors"][0]["message"] == message
    assert problem["detail"].endswith(f": {message}")
    assert "Value error" not in str(problem)


@pytest.mark.parametrize("body", [b'{"id":1}', b"", "ü".encode() * 600])
async def test_a_json_document_is_sent_as_json_response_would_send_it(body: bytes) -> None:
    sent: dict[str, list[Message]] = {"document": [], "json_response": []}
    for name, response in [
        ("document", JsonDocumentResponse(body, '"c1v2"')),
        ("json_response", json_response(body, headers={"ETag": '"c1v2"'})),
    ]:

        async def send(message: Message, into: list[Message] = sent[name]) -> None:
            into.append(message)

        await response({"type": "http"}, receive_nothing, send)
    assert sent["document"] == sent["json_response"]


async def receive_nothing() -> Message:
    raise AssertionError("a response does not read the request")


def test_a_request_header_is_its_first_value_or_none() -> None:
    scope = {
        "type": "http",
        "headers": [(b"if-none-match", b'"a"'), (b"if-none-match", b'"b"'), (b"x-name", b"\xfc")],
    }
    request = Request(scope)
    assert request_header(request, "if-none-match") == request.headers.get("if-none-match") == '"a"'
    assert request_header(request, "x-name") == request.headers.get("x-name") == "ü"
    assert request_header(request, "if-match") is request.headers.get("if-match") is None
