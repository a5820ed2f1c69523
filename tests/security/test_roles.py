"""The policy table: every route has an entry, and every role gets exactly what the table says."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.app import create_app
from erp_api.security.roles import PUBLIC, Requirement, Role, access_policy, requirement
from erp_api.security.route_match import RouteTable
from erp_api.settings import load_settings
from tests.charges.helpers import assert_problem
from tests.conftest import TEST_ADMIN_KEY
from tests.security.fixtures import Serve, http, new_key

SAMPLE_PATH_VALUES = {
    "id": "999999",
    "product_sku": "SKU-1",
    "parameter": "diameter_mm",
    "name": "no_such_job",
}
APP_ROUTES = RouteTable(
    create_app(load_settings(database_url="sqlite+aiosqlite:///:memory:")).routes
).templates()
ROLES = list(Role)


def concrete(template: str) -> str:
    path = template
    for name, value in SAMPLE_PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"add a sample value for {template}"
    return path


@pytest.mark.parametrize("metrics_public", [True, False])
def test_every_route_of_the_app_has_an_explicit_policy_entry(metrics_public: bool) -> None:
    policy = access_policy(metrics_public=metrics_public)
    missing = [(method, template) for method, template in APP_ROUTES if (method, template) not in policy]
    assert missing == [], "add these routes to erp_api/security/roles.py"


def test_roles_are_hierarchical() -> None:
    assert Role.ADMIN.includes(Role.QUALITY_MANAGER)
    assert Role.QUALITY_MANAGER.includes(Role.OPERATOR)
    assert Role.OPERATOR.includes(Role.VIEWER)
    assert not Role.VIEWER.includes(Role.OPERATOR)
    assert not Role.QUALITY_MANAGER.includes(Role.ADMIN)


def test_metrics_need_an_admin_key_when_they_are_not_public() -> None:
    assert access_policy(metrics_public=True)[("GET", "/metrics")] == PUBLIC
    assert access_policy(metrics_public=False)[("GET", "/metrics")] is Role.ADMIN


@pytest.mark.parametrize(("method", "template"), APP_ROUTES, ids=[f"{m} {t}" for m, t in APP_ROUTES])
async def test_each_role_is_allowed_or_refused_as_the_policy_says(
    serve: Serve, method: str, template: str
) -> None:
    needed: Requirement = requirement(access_policy(metrics_public=True), method, template)
    path = concrete(template)
    async with serve(rate_limit_enabled=False) as app:
        async with http(app) as anonymous, http(app, "erp_not-a-key-but-long-enough-to-look-like-one") as bad:
            for client in (anonymous, bad):
                response = await client.request(method, path)
                if needed == PUBLIC:
                    assert response.status_code not in (401, 403)
                else:
                    assert_problem(response, 401)
                    assert response.headers["www-authenticate"].startswith("Bearer")
        for role in ROLES:
            async with http(app, await new_key(app, role.value)) as client:
                response = await client.request(method, path)
            if needed == PUBLIC or role.includes(needed):
                assert response.status_code not in (401, 403), (role, response.text)
            else:
                assert assert_problem(response, 403)["required_role"] == needed.value, role


async def test_head_follows_the_policy_of_get(serve: Serve) -> None:
    async with serve() as app, http(app) as anonymous, http(app, await new_key(app, "viewer")) as viewer:
        assert (await anonymous.head("/api/v1/charges")).status_code == 401
        assert (await viewer.head("/api/v1/charges")).status_code == 200


async def test_a_route_missing_from_the_table_requires_admin(serve: Serve) -> None:
    async def unlisted(_request: Request) -> Response:
        return Response("ok")

    async with serve() as app:
        app.router.routes.insert(0, Route("/api/v1/unlisted", unlisted, methods=["GET"]))
        for role in (Role.VIEWER, Role.OPERATOR, Role.QUALITY_MANAGER):
            async with http(app, await new_key(app, role.value)) as client:
                assert_problem(await client.get("/api/v1/unlisted"), 403)
        async with http(app, TEST_ADMIN_KEY) as admin:
            assert (await admin.get("/api/v1/unlisted")).text == "ok"


async def test_unknown_paths_need_a_key_before_they_are_404(serve: Serve) -> None:
    async with serve() as app, http(app) as anonymous, http(app, await new_key(app, "viewer")) as viewer:
        assert_problem(await anonymous.get("/api/v1/nothing-here"), 401)
        assert_problem(await viewer.get("/api/v1/nothing-here"), 404)
        assert_problem(await viewer.put("/api/v1/charges"), 405)
        wrong_method = await viewer.put("/api/v1/charges/1")
        assert_problem(wrong_method, 405)
        assert wrong_method.headers["allow"] == "DELETE, GET, HEAD, PATCH", "every method of the path"


async def test_an_authorization_header_that_is_not_bearer_is_refused(serve: Serve) -> None:
    async with serve() as app, http(app) as client:
        response = await client.get("/api/v1/charges", headers={"Authorization": f"Basic {TEST_ADMIN_KEY}"})
        assert_problem(response, 401)
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_public_routes_answer_without_a_key(serve: Serve) -> None:
    async with serve() as app, http(app) as client:
        for path in ("/health", "/openapi.json", "/metrics"):
            assert (await client.get(path)).status_code == 200, path


async def test_with_authentication_off_every_request_acts_as_admin(serve: Serve) -> None:
    async with serve(auth_enabled=False) as app, http(app) as client:
        assert (await client.get("/api/v1/keys")).status_code == 200


def test_authentication_is_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERP_AUTH_ENABLED")
    assert load_settings().auth_enabled is True
    assert load_settings().rate_limit_enabled is True


async def test_status_error_bodies_are_problem_json_with_no_internals(client: httpx.AsyncClient) -> None:
    anonymous = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with anonymous:
        body = assert_problem(await anonymous.get("/api/v1/charges"), 401)
    assert TEST_ADMIN_KEY not in str(body)


async def test_the_openapi_document_states_each_operations_security(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerAuth": []}]
    policy = access_policy(metrics_public=True)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            needed = requirement(policy, method.upper(), path)
            assert needed != PUBLIC
            assert operation["x-required-role"] == needed.value
            assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
            assert "Retry-After" in operation["responses"]["429"]["headers"]
