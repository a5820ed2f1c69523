"""Body limits below every route: a declared Content-Length is judged before routing, a streamed body
as its chunks arrive; batch routes take more than the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.security.body_limit import BATCH_ROUTES
from erp_api.security.roles import access_policy
from tests.charges.helpers import assert_problem
from tests.conftest import TEST_ADMIN_KEY
from tests.security.fixtures import Serve, http

JSON = {"content-type": "application/json"}
LIMITS = {"max_body_bytes": 2048, "max_batch_body_bytes": 8192}


async def chunks(total: int, size: int = 1024) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


async def read_everything(request: Request) -> Response:
    # A route with no limit of its own: only the middleware stands between it and a flood.
    return Response(str(len(await request.body())))


async def test_a_declared_length_over_the_limit_is_413_before_authentication(serve: Serve) -> None:
    async with serve(**LIMITS) as app, http(app) as anonymous:
        response = await anonymous.post(
            "/api/v1/charges", content=b"{}", headers={**JSON, "Content-Length": "999999999"}
        )
        assert "at most 2048" in assert_problem(response, 413)["detail"]


async def test_batch_routes_take_the_batch_limit_and_others_the_default(serve: Serve) -> None:
    body = b'{"numbers": ["CH-1"]' + b" " * 4000 + b"}"
    async with serve(**LIMITS) as app, http(app, TEST_ADMIN_KEY) as admin:
        assert (await admin.post("/api/v1/charges/lookup", content=body, headers=JSON)).status_code == 200
        assert_problem(await admin.post("/api/v1/charges", content=body, headers=JSON), 413)
        too_big = b'{"numbers": []' + b" " * 9000 + b"}"
        assert_problem(await admin.post("/api/v1/charges/lookup", content=too_big, headers=JSON), 413)


async def test_a_streamed_body_is_cut_off_at_the_limit_whatever_the_route_does(serve: Serve) -> None:
    async with serve(**LIMITS) as app:
        app.router.routes.insert(0, Route("/api/v1/unlisted", read_everything, methods=["POST"]))
        async with http(app, TEST_ADMIN_KEY) as admin:
            small = await admin.post("/api/v1/unlisted", content=chunks(2048))
            assert small.text == "2048"
            assert_problem(await admin.post("/api/v1/unlisted", content=chunks(4096)), 413)
            assert_problem(await admin.post("/api/v1/charges", content=chunks(4096), headers=JSON), 413)


async def test_a_malformed_content_length_is_400(serve: Serve) -> None:
    async with serve() as app, http(app, TEST_ADMIN_KEY) as admin:
        for value in ("12x", "-1"):
            response = await admin.post(
                "/api/v1/charges", content=b"{}", headers={**JSON, "Content-Length": value}
            )
            assert_problem(response, 400)


def test_every_batch_route_is_a_route_of_the_policy() -> None:
    assert set(access_policy(metrics_public=True)) >= BATCH_ROUTES
