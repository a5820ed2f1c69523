"""Body limits below every route: a declared Content-Length is judged before routing, a streamed body
as its chunks arrive; batch routes take more than the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.http import API_PREFIX as API
from tests.charges.helpers import assert_problem
from tests.conftest import TEST_ADMIN_KEY
from tests.security.fixtures import Serve, http
from tests.security.test_roles import EXPECTED, concrete

JSON = {"content-type": "application/json"}
LIMITS = {"max_body_bytes": 2048, "max_batch_body_bytes": 8192}
BATCH = {
    ("POST", f"{API}/charges/batch"),
    ("POST", f"{API}/charges/lookup"),
    ("POST", f"{API}/charges/{{id}}/measurements"),
}
"""The routes that take bulk bodies, written out by hand: every other route takes the default limit."""
BODY_ROUTES = sorted(key for key in EXPECTED if key[0] in ("POST", "PUT", "PATCH"))


async def chunks(total: int, size: int = 1024) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


async def read_everything(request: Request) -> Response:
    # A route with no limit of its own: only the middleware stands between it and a flood.
    return Response(str(len(await request.body())))


async def test_a_declared_length_over_the_limit_is_413_before_authentication(serve: Serve) -> None:
    async with serve(**LIMITS) as app, http(app) as anonymous:
        response = await anonymous.post(
            f"{API}/charges", content=b"{}", headers={**JSON, "Content-Length": "999999999"}
        )
        assert "at most 2048" in assert_problem(response, 413)["detail"]


async def test_batch_routes_take_the_batch_limit_and_others_the_default(serve: Serve) -> None:
    body = b'{"numbers": ["CH-1"]' + b" " * 4000 + b"}"
    async with serve(**LIMITS) as app, http(app, TEST_ADMIN_KEY) as admin:
        assert (await admin.post(f"{API}/charges/lookup", content=body, headers=JSON)).status_code == 200
        assert_problem(await admin.post(f"{API}/charges", content=body, headers=JSON), 413)
        too_big = b'{"numbers": []' + b" " * 9000 + b"}"
        assert_problem(await admin.post(f"{API}/charges/lookup", content=too_big, headers=JSON), 413)


async def test_a_streamed_body_is_cut_off_at_the_limit_whatever_the_route_does(serve: Serve) -> None:
    async with serve(**LIMITS) as app:
        app.router.routes.insert(0, Route(f"{API}/unlisted", read_everything, methods=["POST"]))
        async with http(app, TEST_ADMIN_KEY) as admin:
            small = await admin.post(f"{API}/unlisted", content=chunks(2048))
            assert small.text == "2048"
            assert_problem(await admin.post(f"{API}/unlisted", content=chunks(4096)), 413)
            assert_problem(await admin.post(f"{API}/charges", content=chunks(4096), headers=JSON), 413)


async def test_a_malformed_content_length_is_400(serve: Serve) -> None:
    async with serve() as app, http(app, TEST_ADMIN_KEY) as admin:
        for value in ("12x", "-1"):
            response = await admin.post(
                f"{API}/charges", content=b"{}", headers={**JSON, "Content-Length": value}
            )
            assert_problem(response, 400)


def test_every_batch_route_is_a_route_of_the_app() -> None:
    assert set(BODY_ROUTES) >= BATCH


@pytest.mark.parametrize(("method", "template"), BODY_ROUTES, ids=[f"{m} {t}" for m, t in BODY_ROUTES])
async def test_a_body_between_the_limits_is_refused_by_exactly_the_routes_without_the_batch_limit(
    serve: Serve, method: str, template: str
) -> None:
    body = b"{}" + b" " * 4000
    async with serve(**LIMITS) as app, http(app, TEST_ADMIN_KEY) as admin:
        response = await admin.request(method, concrete(template), content=body, headers=JSON)
    if (method, template) in BATCH:
        assert response.status_code != 413, response.text
    else:
        assert "at most 2048" in assert_problem(response, 413)["detail"]
