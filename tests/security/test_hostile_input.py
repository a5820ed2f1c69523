"""Hostile input: wrong content types, absurdly deep or large JSON, database failures and control
characters all end in a problem+json 4xx (or a bare 500), never a trace, and one log line each."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from erp_api.http import API_PREFIX as API
from tests.charges.helpers import assert_problem
from tests.conftest import TEST_ADMIN_KEY
from tests.security.fixtures import Serve, http
from tests.security.test_roles import concrete

JSON = {"content-type": "application/json"}


async def body_operations(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """(method, concrete path) of every documented operation that takes a JSON body."""
    document = (await client.get("/openapi.json")).json()
    operations = [
        (method.upper(), concrete(path))
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]
    assert len(operations) >= 8
    return operations


async def test_every_body_route_refuses_other_content_types_with_415(client: httpx.AsyncClient) -> None:
    for method, path in await body_operations(client):
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"content-type": content_type} if content_type else {}
            response = await client.request(method, path, content=b'{"a": 1}', headers=headers)
            assert_problem(response, 415)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"numbers": ["' + b"\\ud800" * 1000 + b'"]}',
        b"\xff\xfe{not json",
    ],
    ids=["deep-array", "deep-inside-object", "deep-object", "lone-surrogates", "garbage"],
)
async def test_deep_or_broken_json_is_a_4xx_on_every_body_route(
    client: httpx.AsyncClient, body: bytes
) -> None:
    for method, path in await body_operations(client):
        response = await client.request(method, path, content=body, headers=JSON)
        assert 400 <= response.status_code < 500, (method, path, response.text[:200])
        assert response.headers["content-type"] == "application/problem+json"


async def test_huge_numbers_and_strings_are_4xx(client: httpx.AsyncClient) -> None:
    for quantity in (b"1" * 100_000, b'"' + b"9" * 100_000 + b'"', b"1e999999"):
        body = b'{"charge_number":"CH-2026-1","product_sku":"A","quantity":' + quantity
        body += b',"unit":"pcs","line":"L1","produced_at":"2026-01-01T00:00:00Z"}'
        response = await client.post(f"{API}/charges", content=body, headers=JSON)
        assert response.status_code in (400, 422), response.text[:200]


async def test_a_database_error_is_a_bare_500_with_no_sql_or_trace(serve: Serve) -> None:
    async with serve() as app, http(app, TEST_ADMIN_KEY, raise_app_exceptions=False) as admin:
        async with app.state.resources.engine.begin() as connection:
            await connection.execute(text("DROP TABLE charge_status_changes"))
            await connection.execute(text("DROP TABLE charges"))
        for response in (await admin.get(f"{API}/charges/1"), await admin.get(f"{API}/charges")):
            problem = assert_problem(response, 500)
            assert set(problem) == {"type", "title", "status", "detail", "instance"}
            for leak in ("charges", "SELECT", "sqlite", "Traceback", "Error"):
                assert leak not in problem["detail"] + problem["title"]


async def call(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One raw ASGI request (no client library to clean up the path or headers first)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1", "replace"),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "app": app,
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status: int = sent[0]["status"]
    return status


async def test_control_characters_in_a_path_or_header_stay_inside_one_log_line(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile_path = API + '/charges/1\n{"event":"forged"}\r\n\x1b[31m\x00'
    async with serve(access_log=True) as app:
        capsys.readouterr()
        status = await call(
            app,
            hostile_path,
            [(b"authorization", f"Bearer {TEST_ADMIN_KEY}".encode()), (b"x-request-id", b"abc\ndef\x00ghi")],
        )
        lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert status == 404
    assert len(lines) == 1, lines
    event = orjson.loads(lines[0])
    assert event["event"] == "request" and event["path"] == hostile_path
    assert "\n" not in event["request_id"]
