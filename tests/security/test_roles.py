"""Who may call what: every route of the app against a matrix written out here by hand.

``EXPECTED`` restates the README's role description route by route: viewers read; operators create
and edit charges and post measurements; quality managers set specs, move charges between statuses,
start analyses and read the audit trail; admins manage keys, jobs, the cache and webhooks. It is
deliberately not read from the routes' declarations, so a route opened to a lower role fails here.
"""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.app import create_app
from erp_api.http import API_PREFIX as API
from erp_api.routing import walk_routes
from erp_api.security.roles import PUBLIC, Requirement, Role
from erp_api.settings import load_settings
from tests.charges.helpers import assert_problem
from tests.conftest import TEST_ADMIN_KEY
from tests.events.sse import SseStream
from tests.security.fixtures import Serve, http, new_key

VIEWER, OPERATOR, QUALITY_MANAGER, ADMIN = Role.VIEWER, Role.OPERATOR, Role.QUALITY_MANAGER, Role.ADMIN

EXPECTED: dict[tuple[str, str], Requirement] = {
    # Probes, scrapes and the schema are for anyone (load balancers, Prometheus, client generators).
    ("GET", "/health"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    # The docs page and Swagger UI's files; / redirects to it.
    ("GET", "/"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/static/{version}/{asset}"): PUBLIC,
    # Viewers read, including the lookup that reads with a large body.
    ("GET", f"{API}/charges"): VIEWER,
    ("POST", f"{API}/charges/lookup"): VIEWER,
    ("GET", f"{API}/charges/{{id}}"): VIEWER,
    ("GET", f"{API}/charges/{{id}}/history"): VIEWER,
    ("GET", f"{API}/charges/{{id}}/measurements"): VIEWER,
    ("GET", f"{API}/charges/{{id}}/analyses"): VIEWER,
    ("GET", f"{API}/analyses/{{id}}"): VIEWER,
    ("GET", f"{API}/quality/specs"): VIEWER,
    ("GET", f"{API}/quality/summary"): VIEWER,
    ("GET", f"{API}/quality/trend"): VIEWER,
    ("GET", f"{API}/quality/control-chart"): VIEWER,
    ("GET", f"{API}/quality/control-chart.svg"): VIEWER,
    ("GET", f"{API}/quality/capability.svg"): VIEWER,
    ("GET", f"{API}/quality/rules"): VIEWER,
    ("GET", f"{API}/charges/{{id}}/inspections"): VIEWER,
    ("GET", f"{API}/quality/alerts"): VIEWER,
    ("GET", f"{API}/quality/alerts/{{id}}"): VIEWER,
    ("GET", f"{API}/quality/specs/{{product_sku}}/{{parameter}}/limits"): VIEWER,
    ("GET", f"{API}/quality/specs/{{product_sku}}/{{parameter}}"): VIEWER,
    ("GET", f"{API}/products"): VIEWER,
    ("GET", f"{API}/lines"): VIEWER,
    # Exports are reads too, however large.
    ("GET", f"{API}/exports/charges.csv"): VIEWER,
    ("GET", f"{API}/exports/charges.ndjson"): VIEWER,
    ("GET", f"{API}/exports/measurements.csv"): VIEWER,
    ("GET", f"{API}/exports/measurements.ndjson"): VIEWER,
    ("GET", f"{API}/exports/alerts.csv"): VIEWER,
    ("GET", f"{API}/exports/alerts.ndjson"): VIEWER,
    # Live events: any key may stream (the role decides which events it is sent) and get a ticket.
    ("GET", f"{API}/events"): VIEWER,
    ("POST", f"{API}/events/tickets"): VIEWER,
    # Operators record production: create and edit charges, post measurements.
    ("POST", f"{API}/charges"): OPERATOR,
    ("POST", f"{API}/charges/batch"): OPERATOR,
    ("PATCH", f"{API}/charges/{{id}}"): OPERATOR,
    ("DELETE", f"{API}/charges/{{id}}"): OPERATOR,
    ("POST", f"{API}/charges/{{id}}/measurements"): OPERATOR,
    ("POST", f"{API}/charges/{{id}}/inspections"): OPERATOR,
    # Quality managers decide on quality: specs, status transitions, analyses, the audit trail.
    ("PUT", f"{API}/quality/specs/{{product_sku}}/{{parameter}}"): QUALITY_MANAGER,
    ("PUT", f"{API}/quality/specs/{{product_sku}}/{{parameter}}/limits"): QUALITY_MANAGER,
    ("POST", f"{API}/quality/specs/{{product_sku}}/{{parameter}}/limits/compute"): QUALITY_MANAGER,
    ("POST", f"{API}/measurements/{{id}}/void"): QUALITY_MANAGER,
    ("POST", f"{API}/charges/{{id}}/transitions"): QUALITY_MANAGER,
    ("POST", f"{API}/charges/{{id}}/analyses"): QUALITY_MANAGER,
    ("POST", f"{API}/quality/alerts/{{id}}/transitions"): QUALITY_MANAGER,
    ("GET", f"{API}/audit"): QUALITY_MANAGER,
    # Admins run the service: keys, jobs, the cache, webhooks (they send data out of the plant).
    ("GET", f"{API}/keys"): ADMIN,
    ("POST", f"{API}/keys"): ADMIN,
    ("DELETE", f"{API}/keys/{{id}}"): ADMIN,
    ("GET", f"{API}/jobs/status"): ADMIN,
    ("POST", f"{API}/jobs/{{name}}/run"): ADMIN,
    ("GET", f"{API}/cache/stats"): ADMIN,
    ("POST", f"{API}/cache/invalidate"): ADMIN,
    ("GET", f"{API}/webhooks"): ADMIN,
    ("POST", f"{API}/webhooks"): ADMIN,
    ("GET", f"{API}/webhooks/{{id}}"): ADMIN,
    ("DELETE", f"{API}/webhooks/{{id}}"): ADMIN,
    ("GET", f"{API}/webhooks/{{id}}/deliveries"): ADMIN,
}
SAMPLE_PATH_VALUES = {
    "id": "999999",
    "product_sku": "SKU-1",
    "parameter": "diameter_mm",
    "name": "no_such_job",
    "version": "0.0.0",
    "asset": "swagger-ui.css",
}
ROLES = list(Role)
ENDLESS = frozenset({("GET", f"{API}/events")})
"""Streams that never end: their answer is read from the start of the response (tests/events/sse.py)."""


async def answer(app: Starlette, client: httpx.AsyncClient, method: str, template: str) -> httpx.Response:
    """``client``'s request to ``template`` (made concrete); for an endless stream, its status and
    headers, and the body of an error."""
    path = concrete(template)
    if (method, template) not in ENDLESS:
        return await client.request(method, path)
    headers = {name: value for name, value in client.headers.items() if name.lower() == "authorization"}
    async with SseStream(app, path, headers=headers) as stream:
        body = await stream.body() if stream.status != 200 else b""
    return httpx.Response(stream.status, headers=stream.headers, content=body)


def app_routes(**settings: object) -> set[tuple[str, str]]:
    """(method, template) of every route of the app, ``HEAD`` aside (it follows ``GET``)."""
    app = create_app(load_settings(database_url="sqlite+aiosqlite:///:memory:", **settings))
    return {
        (method, template)
        for template, route in walk_routes(app.routes)
        for method in route.methods or ()
        if method != "HEAD"
    }


def concrete(template: str) -> str:
    path = template
    for name, value in SAMPLE_PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"add a sample value for {template}"
    return path


def test_every_route_of_the_app_has_an_expected_role() -> None:
    routes = app_routes()
    assert sorted(routes - EXPECTED.keys()) == [], "add these routes to EXPECTED, with the role they need"
    assert sorted(EXPECTED.keys() - routes) == [], "these routes are gone: remove them from EXPECTED"


def test_roles_are_hierarchical() -> None:
    assert Role.ADMIN.includes(Role.QUALITY_MANAGER)
    assert Role.QUALITY_MANAGER.includes(Role.OPERATOR)
    assert Role.OPERATOR.includes(Role.VIEWER)
    assert not Role.VIEWER.includes(Role.OPERATOR)
    assert not Role.QUALITY_MANAGER.includes(Role.ADMIN)


async def test_metrics_need_an_admin_key_when_they_are_not_public(serve: Serve) -> None:
    async with serve(metrics_public=False) as app, http(app) as anonymous:
        assert_problem(await anonymous.get("/metrics"), 401)
        async with http(app, await new_key(app, "quality_manager")) as manager:
            assert assert_problem(await manager.get("/metrics"), 403)["required_role"] == "admin"
        async with http(app, TEST_ADMIN_KEY) as admin:
            assert (await admin.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    ("method", "template", "needed"),
    [(method, template, needed) for (method, template), needed in EXPECTED.items()],
    ids=[f"{method} {template}" for method, template in EXPECTED],
)
async def test_each_role_is_allowed_or_refused_as_expected(
    serve: Serve, method: str, template: str, needed: Requirement
) -> None:
    async with serve(rate_limit_enabled=False) as app:
        async with http(app) as anonymous, http(app, "erp_not-a-key-but-long-enough-to-look-like-one") as bad:
            for client in (anonymous, bad):
                response = await answer(app, client, method, template)
                if needed == PUBLIC:
                    assert response.status_code not in (401, 403)
                else:
                    assert_problem(response, 401)
                    assert response.headers["www-authenticate"].startswith("Bearer")
        for role in ROLES:
            async with http(app, await new_key(app, role.value)) as client:
                response = await answer(app, client, method, template)
            if needed == PUBLIC or role.includes(needed):
                assert response.status_code not in (401, 403), (role, response.text)
                assert response.status_code < 500, (role, response.text)
            else:
                assert assert_problem(response, 403)["required_role"] == needed.value, role


async def test_head_follows_the_policy_of_get(serve: Serve) -> None:
    async with serve() as app, http(app) as anonymous, http(app, await new_key(app, "viewer")) as viewer:
        assert (await anonymous.head(f"{API}/charges")).status_code == 401
        assert (await viewer.head(f"{API}/charges")).status_code == 200


async def test_a_route_that_declares_no_role_requires_admin(serve: Serve) -> None:
    async def unlisted(_request: Request) -> Response:
        return Response("ok")

    async with serve() as app:
        app.router.routes.insert(0, Route(f"{API}/unlisted", unlisted, methods=["GET"]))
        for role in (Role.VIEWER, Role.OPERATOR, Role.QUALITY_MANAGER):
            async with http(app, await new_key(app, role.value)) as client:
                assert_problem(await client.get(f"{API}/unlisted"), 403)
        async with http(app, TEST_ADMIN_KEY) as admin:
            assert (await admin.get(f"{API}/unlisted")).text == "ok"


async def test_unknown_paths_need_a_key_before_they_are_404(serve: Serve) -> None:
    async with serve() as app, http(app) as anonymous, http(app, await new_key(app, "viewer")) as viewer:
        assert_problem(await anonymous.get(f"{API}/nothing-here"), 401)
        assert_problem(await viewer.get(f"{API}/nothing-here"), 404)
        assert_problem(await viewer.put(f"{API}/charges"), 405)
        wrong_method = await viewer.put(f"{API}/charges/1")
        assert_problem(wrong_method, 405)
        assert wrong_method.headers["allow"] == "DELETE, GET, HEAD, PATCH", "every method of the path"


async def test_an_authorization_header_that_is_not_bearer_is_refused(serve: Serve) -> None:
    async with serve() as app, http(app) as client:
        response = await client.get(f"{API}/charges", headers={"Authorization": f"Basic {TEST_ADMIN_KEY}"})
        assert_problem(response, 401)
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_public_routes_answer_without_a_key(serve: Serve) -> None:
    async with serve() as app, http(app) as client:
        for path in ("/health", "/openapi.json", "/metrics"):
            assert (await client.get(path)).status_code == 200, path


async def test_with_authentication_off_every_request_acts_as_admin(serve: Serve) -> None:
    async with serve(auth_enabled=False) as app, http(app) as client:
        assert (await client.get(f"{API}/keys")).status_code == 200


def test_authentication_is_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERP_AUTH_ENABLED")
    assert load_settings().auth_enabled is True
    assert load_settings().rate_limit_enabled is True


async def test_status_error_bodies_are_problem_json_with_no_internals(client: httpx.AsyncClient) -> None:
    anonymous = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with anonymous:
        body = assert_problem(await anonymous.get(f"{API}/charges"), 401)
    assert TEST_ADMIN_KEY not in str(body)


async def test_the_openapi_document_states_each_operations_security(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerAuth": []}]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            needed = EXPECTED[(method.upper(), path)]
            assert needed != PUBLIC
            assert operation["x-required-role"] == needed.value
            assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
            assert "Retry-After" in operation["responses"]["429"]["headers"]
