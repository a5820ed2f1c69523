"""CORS for a browser frontend on an allow-listed origin: what it may send, what it may read, and
preflights refused with a problem+json that says why. (The real browser: tests/integration/test_browser.py.)"""

from __future__ import annotations

import pytest

from erp_api.security.cors import CORS_EXPOSED_HEADERS, CORS_REQUEST_HEADERS
from erp_api.settings import SettingsError, load_settings
from tests.charges.helpers import assert_problem, charge_payload
from tests.conftest import TEST_ADMIN_KEY
from tests.security.fixtures import Serve, http

ALLOWED = "https://erp.example.com"
SPA_REQUEST_HEADERS = [
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "Last-Event-ID",
    "Authorization",
    "Content-Type",
]
SPA_READABLE_HEADERS = [
    "ETag",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-Request-ID",
    "Link",
    "Idempotent-Replayed",
    "Content-Disposition",
]


def listed(header: str) -> set[str]:
    return {name.strip().lower() for name in header.split(",")}


async def test_cors_answers_allow_listed_origins_only(serve: Serve) -> None:
    async with serve(cors_allow_origins=(ALLOWED,)) as app, http(app, TEST_ADMIN_KEY) as client:
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
    assert refused.status_code == 200, "the server answers; the browser withholds it from the page"
    assert preflight_ok.status_code == 200
    assert preflight_ok.headers["access-control-allow-origin"] == ALLOWED
    assert "PATCH" in preflight_ok.headers["access-control-allow-methods"]
    assert_problem(preflight_refused, 403)
    assert "access-control-allow-origin" not in preflight_refused.headers


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
async def test_a_preflight_allows_every_method_and_header_a_frontend_sends(serve: Serve, method: str) -> None:
    async with serve(cors_allow_origins=(ALLOWED,)) as app, http(app) as browser:
        response = await browser.options(
            "/api/v1/quality/specs/PUMP-A/diameter_mm",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": ",".join(name.lower() for name in SPA_REQUEST_HEADERS),
            },
        )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert method.lower() in listed(response.headers["access-control-allow-methods"])
    assert {name.lower() for name in SPA_REQUEST_HEADERS} <= listed(
        response.headers["access-control-allow-headers"]
    )
    assert int(response.headers["access-control-max-age"]) > 0
    assert "origin" in listed(response.headers["vary"])
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    ("origin", "method", "headers", "named"),
    [
        ("https://evil.example", "GET", "", "https://evil.example"),
        ("http://erp.example.com", "GET", "", "http://erp.example.com"),  # another scheme, another origin
        (ALLOWED, "TRACE", "", "TRACE"),
        (ALLOWED, "PATCH", "if-match, x-forwarded-for", "x-forwarded-for"),
    ],
)
async def test_a_refused_preflight_says_what_was_refused(
    serve: Serve, origin: str, method: str, headers: str, named: str
) -> None:
    request_headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        request_headers["Access-Control-Request-Headers"] = headers
    async with serve(cors_allow_origins=(ALLOWED,)) as app, http(app) as browser:
        response = await browser.options("/api/v1/charges/1", headers=request_headers)
    body = assert_problem(response, 403)
    assert named in body["detail"] and "CORS" in body["detail"]
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_responses_expose_the_headers_a_frontend_acts_on(serve: Serve) -> None:
    assert {name.lower() for name in SPA_READABLE_HEADERS} <= {name.lower() for name in CORS_EXPOSED_HEADERS}
    async with serve(cors_allow_origins=(ALLOWED,)) as app, http(app, TEST_ADMIN_KEY) as client:
        created = await client.post("/api/v1/charges", json=charge_payload(1), headers={"Origin": ALLOWED})
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == ALLOWED
    assert listed(created.headers["access-control-expose-headers"]) == {
        name.lower() for name in CORS_EXPOSED_HEADERS
    }
    assert {"etag", "location", "ratelimit-remaining"} <= set(created.headers)


async def test_errors_a_frontend_must_handle_carry_cors_headers_too(serve: Serve) -> None:
    async with serve(cors_allow_origins=(ALLOWED,), rate_limit_anonymous=1) as app, http(app) as anonymous:
        unauthorized = await anonymous.get("/api/v1/charges", headers={"Origin": ALLOWED})
        limited = await anonymous.get("/api/v1/charges", headers={"Origin": ALLOWED})
    assert_problem(unauthorized, 401)
    assert_problem(limited, 429)
    for response in (unauthorized, limited):
        assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "retry-after" in listed(limited.headers["access-control-expose-headers"])
    assert int(limited.headers["retry-after"]) >= 1


async def test_every_response_varies_by_origin(serve: Serve) -> None:
    async with serve(cors_allow_origins=(ALLOWED,)) as app, http(app) as client:
        with_origin = await client.get("/health", headers={"Origin": ALLOWED})
        without = await client.get("/health")
    assert "origin" in listed(with_origin.headers["vary"])
    assert "origin" in listed(without.headers["vary"])


async def test_without_an_allow_list_no_origin_gets_cors_headers(serve: Serve) -> None:
    async with serve() as app, http(app, TEST_ADMIN_KEY) as client:
        response = await client.get("/api/v1/charges", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_the_request_headers_allowed_are_the_ones_the_api_reads() -> None:
    assert {name.lower() for name in SPA_REQUEST_HEADERS} <= {name.lower() for name in CORS_REQUEST_HEADERS}


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
