"""HTTP metrics and request ids as a scrape of /metrics shows them after real requests."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.observability.metrics import HTTP_LATENCY_BUCKETS
from tests.charges.helpers import create
from tests.observability.conftest import ClientFactory, scrape, value

CHARGE = "/api/v1/charges/{id}"
LAST = {"method": "GET", "route": CHARGE}
HEX32 = re.compile(r"[0-9a-f]{32}")


async def test_requests_are_counted_by_route_template_method_and_status(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    charge = await create(client, 1)
    for _ in range(3):
        assert (await client.get(f"/api/v1/charges/{charge['id']}")).status_code == 200
    assert (await client.get("/api/v1/charges/999999")).status_code == 404
    after = await scrape(client)

    def delta(method: str, route: str, status: str) -> float:
        labels = {"method": method, "route": route, "status": status}
        return value(after, "http_requests_total", **labels) - value(before, "http_requests_total", **labels)

    assert delta("POST", "/api/v1/charges", "201") == 1
    assert delta("GET", CHARGE, "200") == 3
    assert delta("GET", CHARGE, "404") == 1
    routes = {dict(labels).get("route") for name, labels in after if name == "http_requests_total"}
    assert f"/api/v1/charges/{charge['id']}" not in routes
    assert "/api/v1/charges/999999" not in routes


async def test_unmatched_paths_share_one_label_value(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    for path in ("/nope", "/nope/deeper/1", "/api/v1/not-a-resource", "/api/v1/charges/1/nothing"):
        assert (await client.get(path)).status_code == 404
    after = await scrape(client)
    labels = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "http_requests_total", **labels) - value(before, "http_requests_total", **labels) == 4
    routes = {dict(labels).get("route") for name, labels in after if name == "http_requests_total"}
    assert not any("nope" in str(route) or "not-a-resource" in str(route) for route in routes)


async def test_wrong_method_keeps_the_template_and_odd_methods_share_a_label(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    assert (await client.put("/api/v1/charges/1", json={})).status_code == 405
    assert (await client.request("PROPFIND", "/api/v1/charges/1")).status_code == 405
    after = await scrape(client)
    for method in ("PUT", "other"):
        labels = {"method": method, "route": CHARGE, "status": "405"}
        assert (
            value(after, "http_requests_total", **labels) - value(before, "http_requests_total", **labels)
            == 1
        )
    assert value(after, "http_requests_total", method="PROPFIND", route=CHARGE, status="405") == 0


async def test_requests_refused_before_routing_keep_their_route_template(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anonymous:
        before = await scrape(client)
        assert (await anonymous.get("/api/v1/charges/5")).status_code == 401
        assert (await anonymous.get("/api/v1/nowhere/5")).status_code == 401
        after = await scrape(client)
    for route in (CHARGE, "unmatched"):
        labels = {"method": "GET", "route": route, "status": "401"}
        assert (
            value(after, "http_requests_total", **labels) - value(before, "http_requests_total", **labels)
            == 1
        )


async def test_metrics_and_health_probes_are_not_counted(client: httpx.AsyncClient) -> None:
    for path in ("/metrics", "/health", "/health/ready", "/metrics"):
        assert (await client.get(path)).status_code == 200
    samples = await scrape(client)
    routes = {dict(labels).get("route") for name, labels in samples if name.startswith("http_request")}
    assert not routes & {"/metrics", "/health", "/health/ready"}


async def test_latency_histogram_spans_1ms_to_10s_with_a_bucket_at_150ms(client: httpx.AsyncClient) -> None:
    assert 0.15 in HTTP_LATENCY_BUCKETS
    # The app's first request opens its database connection (over 150 ms on a loaded machine): not timed.
    await client.get("/api/v1/charges/12345")
    before = await scrape(client)
    for _ in range(2):
        await client.get("/api/v1/charges/12345")
    after = await scrape(client)
    bounds = {
        dict(labels)["le"]
        for name, labels in after
        if name == "http_request_duration_seconds_bucket" and dict(labels)["route"] == CHARGE
    }
    assert {"0.001", "0.15", "10.0", "+Inf"} <= bounds
    series = {"method": "GET", "route": CHARGE}
    count = "http_request_duration_seconds_count"
    assert value(after, count, **series) - value(before, count, **series) == 2
    # Each request lands in +Inf, and a fast test request also in the 150 ms bucket.
    for le in ("0.15", "+Inf"):
        bucket = {**series, "le": le}
        name = "http_request_duration_seconds_bucket"
        assert value(after, name, **bucket) - value(before, name, **bucket) == 2


async def test_in_progress_gauge_counts_requests_being_served(build_client: ClientFactory) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(_request: Request) -> Response:
        entered.set()
        await release.wait()
        return Response("done")

    async with build_client(routes=[Route("/slow", slow)]) as client:
        idle = value(await scrape(client), "http_requests_in_progress", method="GET")
        pending = asyncio.create_task(client.get("/slow"))
        await asyncio.wait_for(entered.wait(), 5)
        busy = value(await scrape(client), "http_requests_in_progress", method="GET")
        release.set()
        assert (await pending).status_code == 200
        done = value(await scrape(client), "http_requests_in_progress", method="GET")
    assert (idle, busy, done) == (0, 1, 0)


async def test_unhandled_error_is_counted_as_500_under_its_route(build_client: ClientFactory) -> None:
    async def broken(_request: Request) -> Response:
        raise RuntimeError("boom")

    async with build_client(routes=[Route("/broken/{part}", broken)]) as client:
        before = await scrape(client)
        response = await client.get("/broken/x")
        after = await scrape(client)
    assert response.status_code == 500
    labels = {"method": "GET", "route": "/broken/{part}", "status": "500"}
    assert value(after, "http_requests_total", **labels) - value(before, "http_requests_total", **labels) == 1


async def test_well_formed_request_id_is_returned_unchanged(client: httpx.AsyncClient) -> None:
    for request_id in ("abcdefgh", "trace-2026.03_01-XYZ", "a" * 128):
        response = await client.get("/api/v1/charges", headers={"X-Request-ID": request_id})
        assert response.headers["x-request-id"] == request_id


async def test_malformed_request_id_is_replaced_by_a_new_one(client: httpx.AsyncClient) -> None:
    for request_id in ("short", "a" * 129, "with space inside", "semi;colon;id", "ünïcödé-id"):
        response = await client.get("/api/v1/charges", headers={"X-Request-ID": request_id.encode()})
        assert HEX32.fullmatch(response.headers["x-request-id"]), request_id


async def test_every_response_gets_its_own_request_id(client: httpx.AsyncClient) -> None:
    responses = [
        await client.get("/api/v1/charges"),
        await client.get("/does/not/exist"),
        await client.post("/api/v1/charges", content=b"{", headers={"content-type": "application/json"}),
        await client.get("/health"),
        await client.get("/metrics"),
    ]
    assert [response.status_code for response in responses] == [200, 404, 400, 200, 200]
    ids = [response.headers["x-request-id"] for response in responses]
    assert all(HEX32.fullmatch(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


async def test_request_id_is_returned_on_unhandled_errors(build_client: ClientFactory) -> None:
    async def broken(_request: Request) -> Response:
        raise RuntimeError("boom")

    async with build_client(routes=[Route("/broken", broken)]) as client:
        response = await client.get("/broken", headers={"X-Request-ID": "err-12345678"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "err-12345678"
    assert response.headers["content-type"] == "application/problem+json"


async def test_observability_middleware_can_be_switched_off_for_benchmarks(
    build_client: ClientFactory,
) -> None:
    async with build_client(observability_middleware=False) as client:
        before = await scrape(client)
        response = await client.get("/api/v1/charges/1")
        after = await scrape(client)
    assert response.status_code == 404
    assert "x-request-id" not in response.headers
    labels = {"method": "GET", "route": CHARGE, "status": "404"}
    assert value(after, "http_requests_total", **labels) == value(before, "http_requests_total", **labels)
    # The cache's own counters still reach the scrape, which copies them itself without a ledger.
    misses = {"namespace": "charges", "result": "miss"}
    assert (
        value(after, "cache_requests_total", **misses) - value(before, "cache_requests_total", **misses) == 1
    )


async def test_shutdown_records_the_last_requests_without_waiting_for_a_flush(
    build_app: Callable[..., Starlette], capsys: pytest.CaptureFixture[str]
) -> None:
    app = build_app()
    # Drive the ASGI lifespan protocol as a server does; the middleware flushes on shutdown.
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    before = REGISTRY.get_sample_value("http_requests_total", {**LAST, "status": "404"}) or 0
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        capsys.readouterr()
        response = await http.get("/api/v1/charges/77")
    await inbox.put({"type": "lifespan.shutdown"})
    assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
    await lifespan
    after = REGISTRY.get_sample_value("http_requests_total", {**LAST, "status": "404"}) or 0
    assert after - before == 1
    logged = capsys.readouterr().out
    assert response.headers["x-request-id"] in logged
