"""The docs page: public, served entirely by the app (no CDN), under a CSP of its own."""

from __future__ import annotations

import re

import httpx

from erp_api.docs_page import DOCS_CONTENT_SECURITY_POLICY, swagger_ui
from erp_api.security.headers import CONTENT_SECURITY_POLICY
from tests.charges.helpers import assert_problem
from tests.security.fixtures import Serve, http


def page_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href|data-openapi-url)="([^"]+)"', html)


async def test_the_root_redirects_to_the_docs_without_a_key(serve: Serve) -> None:
    async with serve() as app, http(app) as anonymous:
        response = await anonymous.get("/")
    assert response.status_code == 307
    assert response.headers["location"] == "/docs"


async def test_the_docs_page_loads_swagger_ui_and_the_schema_from_this_app_only(serve: Serve) -> None:
    async with serve() as app, http(app) as anonymous:
        page = await anonymous.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        urls = page_urls(page.text)
        version = swagger_ui().version
        assert "/openapi.json" in urls
        assert f"/docs/static/{version}/swagger-ui-bundle.js" in urls
        assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
        assert "<script>" not in page.text, "the CSP allows no inline script"
        for url in urls:
            response = await anonymous.get(url)
            assert response.status_code == 200, url
            assert response.content, url
            if url.startswith("/docs/static/"):
                assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        start = await anonymous.get(f"/docs/static/{version}/start.js")
    assert start.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "SwaggerUIBundle(" in start.text and "validatorUrl: null" in start.text


async def test_the_docs_page_has_its_own_csp_and_the_api_keeps_the_closed_one(serve: Serve) -> None:
    async with serve() as app, http(app) as anonymous:
        page = await anonymous.get("/docs")
        schema = await anonymous.get("/openapi.json")
    assert page.headers["content-security-policy"] == DOCS_CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in DOCS_CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in DOCS_CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in DOCS_CONTENT_SECURITY_POLICY
    assert page.headers["x-frame-options"] == "DENY"
    assert schema.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


async def test_files_of_another_version_or_outside_the_list_are_not_found(serve: Serve) -> None:
    version = swagger_ui().version
    async with serve() as app, http(app) as anonymous:
        for path in (
            "/docs/static/0.0.0/swagger-ui.css",
            f"/docs/static/{version}/swagger-ui.js.map",
            f"/docs/static/{version}/index.html",
        ):
            assert_problem(await anonymous.get(path), 404)


async def test_the_page_links_under_the_root_path_it_is_served_at(serve: Serve) -> None:
    async with serve() as app, http(app, root_path="/erp") as anonymous:
        page = await anonymous.get("/docs")
        redirect = await anonymous.get("/")
    urls = page_urls(page.text)
    assert "/erp/openapi.json" in urls
    assert all(url.startswith("/erp/") for url in urls), urls
    assert redirect.headers["location"] == "/erp/docs"


async def test_a_docs_page_request_needs_no_key_even_with_a_bad_one(serve: Serve) -> None:
    async with serve() as app, http(app, "erp_not-a-key-but-long-enough-to-look-like-one") as client:
        response = await client.get("/docs")
    assert isinstance(response, httpx.Response) and response.status_code == 200
