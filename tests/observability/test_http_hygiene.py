"""Security headers on every response, gzip for large bodies. (CORS: tests/security/test_cors.py.)"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.charges.helpers import charge_payload
from tests.observability.conftest import ClientFactory

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


async def broken(_request: Request) -> Response:
    raise RuntimeError("boom")


async def test_security_headers_are_on_every_kind_of_response(build_client: ClientFactory) -> None:
    async with build_client(routes=[Route("/broken", broken)]) as client:
        responses = [
            await client.get("/api/v1/charges"),
            await client.post("/api/v1/charges", json=charge_payload(1)),
            await client.get("/api/v1/charges/999"),
            await client.get("/no/such/path"),
            await client.delete("/api/v1/charges"),
            await client.get("/broken"),
            await client.get("/metrics"),
            await client.get("/health"),
            await client.get("/health/ready"),
        ]
    assert [r.status_code for r in responses] == [200, 201, 404, 404, 405, 500, 200, 200, 200]
    for response in responses:
        assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
        assert "strict-transport-security" not in response.headers


async def test_hsts_is_sent_when_configured(build_client: ClientFactory) -> None:
    async with build_client(hsts_max_age_seconds=31_536_000, routes=[Route("/broken", broken)]) as client:
        for path in ("/api/v1/charges", "/broken"):
            response = await client.get(path)
            assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_large_responses_are_gzipped_and_small_ones_are_not(build_client: ClientFactory) -> None:
    async with build_client() as client:
        items = [charge_payload(serial) for serial in range(1, 21)]
        assert (await client.post("/api/v1/charges/batch", json={"items": items})).status_code == 201
        large = await client.get("/api/v1/charges", params={"limit": 20}, headers={"Accept-Encoding": "gzip"})
        small = await client.get("/health", headers={"Accept-Encoding": "gzip"})
        plain = await client.get(
            "/api/v1/charges", params={"limit": 20}, headers={"Accept-Encoding": "identity"}
        )
    assert large.headers["content-encoding"] == "gzip"
    assert len(plain.content) > 1024
    assert int(large.headers["content-length"]) < len(plain.content)
    assert large.json() == plain.json()  # httpx decoded it: the body is valid gzip of the same JSON
    assert "content-encoding" not in small.headers
    assert "content-encoding" not in plain.headers
    assert large.headers["x-request-id"] and large.headers["x-content-type-options"] == "nosniff"
