"""The route table picks the route Starlette's router will pick, before the router runs."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from erp_api.app import create_app
from erp_api.security.route_match import RouteTable
from erp_api.settings import load_settings


async def endpoint(_request: Request) -> Response:
    return Response()


@pytest.fixture(scope="module")
def table() -> RouteTable:
    return RouteTable(create_app(load_settings(database_url="sqlite+aiosqlite:///:memory:")).routes)


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("POST", "/api/v1/charges/batch", "/api/v1/charges/batch"),
        # /charges/batch takes only POST, so a GET falls through to /charges/{id}, as in the router.
        ("GET", "/api/v1/charges/batch", "/api/v1/charges/{id}"),
        ("GET", "/api/v1/charges/42", "/api/v1/charges/{id}"),
        ("HEAD", "/api/v1/charges", "/api/v1/charges"),
        ("POST", "/api/v1/charges/42/measurements", "/api/v1/charges/{id}/measurements"),
        (
            "PUT",
            "/api/v1/quality/specs/PUMP-A/diameter_mm",
            "/api/v1/quality/specs/{product_sku}/{parameter}",
        ),
        ("GET", "/openapi.json", "/openapi.json"),
        ("PUT", "/api/v1/charges", None),
        ("GET", "/api/v1/charges/42/nothing", None),
        ("GET", "/nowhere", None),
    ],
)
def test_matches_the_route_the_router_would_pick(
    table: RouteTable, method: str, path: str, template: str | None
) -> None:
    assert table.match(method, path) == template


def test_the_first_matching_route_wins_as_in_the_router() -> None:
    table = RouteTable(
        [
            Mount(
                "/m",
                routes=[Route("/{x}", endpoint, methods=["GET"]), Route("/fixed", endpoint, methods=["GET"])],
            )
        ]
    )
    assert table.match("GET", "/m/fixed") == "/m/{x}"


def test_templates_list_every_method_except_head(table: RouteTable) -> None:
    templates = table.templates()
    assert ("GET", "/api/v1/charges") in templates
    assert ("DELETE", "/api/v1/charges/{id}") in templates
    assert all(method != "HEAD" for method, _ in templates)
