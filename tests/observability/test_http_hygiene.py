"""Security headers on every response, CORS for allow-listed origins only, gzip for large bodies."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.settings import SettingsError, load_settings
from tests.charges.helpers import charge_payload
from tests.observability.conftest import ClientFactory

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
ALLOWED = "https://erp.example.com"


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


async def test_cors_answers_allow_listed_origins_only(build_client: ClientFactory) -> None:
    async with build_client(cors_allow_origins=(ALLOWED,)) as client:
        allowed = await client.get("/api/v1/charges", headers={"Origin": ALLOWED})
        refused = await client.get("/api/v1/charges", headers={"Origin": "https://evil.example"})
        preflight_ok = await client.options(
            "/api/v1/charges/1",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "content-type, if-match",
            },
        )
        preflight_refused = await client.options(
            "/api/v1/charges/1",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PATCH"},
        )
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in refused.headers
    assert preflight_ok.status_code == 200
    assert "PATCH" in preflight_ok.headers["access-control-allow-methods"]
    assert preflight_refused.status_code == 400
    assert "access-control-allow-origin" not in preflight_refused.headers


async def test_without_an_allow_list_no_origin_gets_cors_headers(build_client: ClientFactory) -> None:
    async with build_client() as client:
        response = await client.get("/api/v1/charges", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert not any(name.startswith("access-control-") for name in response.headers)


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


@pytest.mark.parametrize(
    "origins", ["*", "https://erp.example.com/path", "erp.example.com", "https://a.example, *"]
)
def test_cors_origins_must_be_plain_origins(origins: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_CORS_ALLOW_ORIGINS", origins)
    with pytest.raises(SettingsError, match="ERP_CORS_ALLOW_ORIGINS"):
        load_settings()


def test_cors_origins_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_CORS_ALLOW_ORIGINS", "https://erp.example.com, http://localhost:3000")
    assert load_settings().cors_allow_origins == ("https://erp.example.com", "http://localhost:3000")
