"""Cached reads answered in front of the stack give the stack's answer, headers included, and
everything they cannot answer reaches the stack as if they were not there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from erp_api.http import API_PREFIX
from erp_api.security.cors import CORS_EXPOSED_HEADERS
from erp_api.security.principal import current_principal
from tests.charges.helpers import charge_payload
from tests.conftest import TEST_ADMIN_KEY
from tests.security.fixtures import Serve, http, new_key

ORIGIN = "https://erp.example"
# Differ from request to request by design; everything else must be the same, in the same order.
VARYING = frozenset({"date", "x-request-id", "ratelimit-remaining", "ratelimit-reset"})
ROUTE = f"{API_PREFIX}/charges/{{id}}"


class StackCalls:
    """Counts the requests that reach the middleware stack behind ``CachedReads``."""

    def __init__(self, app: Starlette) -> None:
        app.middleware_stack = app.build_middleware_stack()
        door: Any = app.middleware_stack
        self.paths: list[tuple[str, str]] = []
        stack = door.app

        async def counting(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                self.paths.append((scope["method"], scope["path"]))
            await stack(scope, receive, send)

        door.app = counting

    def gets(self, path: str) -> int:
        return self.paths.count(("GET", path))


@pytest.fixture
async def served(serve: Serve) -> AsyncIterator[Callable[..., Any]]:
    """``async with served(**settings) as (app, client, calls)``."""

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient, StackCalls]]:
        async with serve(**overrides) as app:
            calls = StackCalls(app)
            async with http(app, TEST_ADMIN_KEY) as client:
                yield app, client, calls

    yield run


async def new_charge(client: httpx.AsyncClient, serial: int) -> str:
    created = await client.post(f"{API_PREFIX}/charges", json=charge_payload(serial))
    assert created.status_code == 201, created.text
    return f"{API_PREFIX}/charges/{created.json()['id']}"


def steady_headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers.multi_items() if name not in VARYING]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": ORIGIN},
        {"Origin": "https://elsewhere.example"},
        {"X-Request-ID": "client-chosen-id-42"},
        {"Accept-Encoding": "identity"},
    ],
    ids=["plain", "allowed-origin", "other-origin", "request-id", "no-gzip"],
)
async def test_a_cached_charge_gets_the_stacks_answer_byte_for_byte(
    served: Callable[..., Any], headers: dict[str, str]
) -> None:
    # 10 per minute: one place comes back every 6 s, so nothing refills between the two reads.
    async with served(cors_allow_origins=(ORIGIN,), rate_limit_admin=10) as (_app, client, calls):
        path = await new_charge(client, 1)

        from_stack = await client.get(path, headers=headers)  # a miss: the stack loads it
        from_cache = await client.get(path, headers=headers)

        assert calls.gets(path) == 1
        assert from_cache.status_code == from_stack.status_code == 200
        assert from_cache.content == from_stack.content
        assert steady_headers(from_cache) == steady_headers(from_stack)
        assert from_cache.headers["x-request-id"] != ""
        if "X-Request-ID" in headers:
            assert from_cache.headers["x-request-id"] == headers["X-Request-ID"]
        # Each counted once: the miss was left to the stack before the door counted it.
        remaining = [int(r.headers["ratelimit-remaining"]) for r in (from_stack, from_cache)]
        assert remaining[0] - remaining[1] == 1
        if headers.get("Origin") == ORIGIN:
            assert from_cache.headers["access-control-allow-origin"] == ORIGIN
            assert from_cache.headers["access-control-expose-headers"] == ", ".join(CORS_EXPOSED_HEADERS)
        assert from_cache.headers["vary"] == "Origin"


async def test_a_conditional_read_gets_the_stacks_304_from_the_cache(served: Callable[..., Any]) -> None:
    async with served() as (_app, client, calls):
        path = await new_charge(client, 1)
        etag = (await client.get(path)).headers["etag"]  # from the stack, now cached
        await client.patch(path, json={"line": "Linie Nord"}, headers={"If-Match": etag})  # invalidates
        newer = (await client.get(path)).headers["etag"]

        from_stack_path = await new_charge(client, 2)
        from_stack = await client.get(from_stack_path, headers={"If-None-Match": "*"})
        from_cache = await client.get(path, headers={"If-None-Match": newer})
        stale = await client.get(path, headers={"If-None-Match": etag})

        assert calls.gets(path) == 2  # the first read and the one after the change
        assert from_stack.status_code == from_cache.status_code == 304
        assert from_cache.content == b""
        assert from_cache.headers["etag"] == newer
        assert [name for name, _ in steady_headers(from_cache)] == [
            name for name, _ in steady_headers(from_stack)
        ]
        assert stale.status_code == 200
        assert stale.json()["line"] == "Linie Nord"


async def test_over_the_limit_a_cached_read_gets_the_stacks_429(served: Callable[..., Any]) -> None:
    async with served(rate_limit_viewer=2) as (app, admin, calls):
        path = await new_charge(admin, 1)
        await admin.get(path)  # cached now
        async with http(app, await new_key(app, "viewer")) as viewer:
            assert (await viewer.get(path)).status_code == 200
            assert (await viewer.get(path)).status_code == 200
            refused_by_door = await viewer.get(path)
            refused_by_stack = await viewer.get(f"{API_PREFIX}/charges/999999")  # not cached

    assert calls.gets(path) == 1  # the admin's first read only
    assert refused_by_door.status_code == refused_by_stack.status_code == 429
    door_problem, stack_problem = refused_by_door.json(), refused_by_stack.json()
    assert door_problem.pop("instance") == path
    stack_problem.pop("instance")
    assert door_problem == stack_problem
    assert int(refused_by_door.headers["retry-after"]) >= 1
    assert [name for name, _ in steady_headers(refused_by_door)] == [
        name for name, _ in steady_headers(refused_by_stack)
    ]


async def test_what_the_cache_cannot_answer_reaches_the_stack(
    served: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(gzip_minimum_bytes=100) as (app, client, calls):
        path = await new_charge(client, 1)
        assert (await client.get(path)).status_code == 200  # a miss
        async with http(app) as anonymous:
            assert (await anonymous.get(path)).status_code == 401
        async with http(app, "erp_not-a-key-0123456789abcdefghijklmnopqrstuvw") as stranger:
            assert (await stranger.get(path)).status_code == 401
        with_body = await client.request("GET", path, content=b"{}")
        assert with_body.status_code == 200
        # A body gzip would compress (the minimum is 100 bytes here): compressed by the stack.
        compressed = await client.get(path, headers={"Accept-Encoding": "gzip"})
        assert compressed.headers["content-encoding"] == "gzip"
        assert calls.gets(path) == 5

        # A reader that fails leaves the request to the stack, which answers it.
        async def failing(charge_id: int) -> bytes | None:
            raise RuntimeError("cache backend exploded")

        monkeypatch.setattr(app.state.resources.charges, "cached_document", failing)
        answered = await client.get(path, headers={"Accept-Encoding": "identity"})
        assert answered.status_code == 200
        assert calls.gets(path) == 6

        monkeypatch.undo()
        plain = await client.get(path, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200
        assert calls.gets(path) == 6  # answered in front of the stack
        assert compressed.content == plain.content  # httpx decoded it


def requests_total(text: str, route: str, status: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "http_requests_total"
                and sample.labels.get("route") == route
                and sample.labels.get("status") == status
                and sample.labels.get("method") == "GET"
            ):
                return float(sample.value)
    return 0.0


async def test_cached_reads_are_counted_in_the_metrics_under_their_route(served: Callable[..., Any]) -> None:
    async with served() as (_app, client, calls):
        path = await new_charge(client, 1)
        before = requests_total((await client.get("/metrics")).text, ROUTE, "200")
        for _ in range(3):
            assert (await client.get(path)).status_code == 200
        after = requests_total((await client.get("/metrics")).text, ROUTE, "200")

    assert calls.gets(path) == 1
    assert after - before == 3


async def test_the_reader_runs_as_the_caller(
    served: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served() as (app, client, calls):
        path = await new_charge(client, 1)
        await client.get(path)  # cached now
        charges = app.state.resources.charges
        read_as: list[str] = []
        cached_document = charges.cached_document

        async def recording(charge_id: int) -> bytes | None:
            read_as.append(current_principal().name)
            document: bytes | None = await cached_document(charge_id)
            return document

        monkeypatch.setattr(charges, "cached_document", recording)
        async with http(app, await new_key(app, "viewer", name="dashboard")) as viewer:
            assert (await viewer.get(path)).status_code == 200

    assert read_as == ["dashboard"]
    assert calls.gets(path) == 1
