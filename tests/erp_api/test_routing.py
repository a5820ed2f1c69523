"""Requests are matched to the route Starlette's router will pick, before the router runs, and the
router takes them there as its own loop would."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Host, Mount, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erp_api import routing
from erp_api.app import create_app
from erp_api.http import API_PREFIX as API
from erp_api.routing import PrematchedRouter, RouteIndex, routed_scope, serving_route, walk_routes
from erp_api.settings import load_settings

APP_ROUTES = create_app(load_settings(database_url="sqlite+aiosqlite:///:memory:")).routes
TEMPLATES = {id(route): template for template, route in walk_routes(APP_ROUTES)}


async def endpoint(_request: Request) -> Response:
    return Response()


def request(method: str, path: str, root_path: str = "") -> Scope:
    return {"type": "http", "method": method, "path": root_path + path, "root_path": root_path, "headers": []}


def template(route: BaseRoute | None) -> str | None:
    return None if route is None else TEMPLATES[id(route)]


@pytest.fixture(scope="module")
def index() -> RouteIndex:
    return RouteIndex(APP_ROUTES)


CASES = [
    ("POST", f"{API}/charges/batch", f"{API}/charges/batch"),
    # /charges/batch takes only POST, so a GET falls through to /charges/{id}, as in the router.
    ("GET", f"{API}/charges/batch", f"{API}/charges/{{id}}"),
    ("GET", f"{API}/charges/42", f"{API}/charges/{{id}}"),
    ("HEAD", f"{API}/charges", f"{API}/charges"),
    ("POST", f"{API}/charges/42/measurements", f"{API}/charges/{{id}}/measurements"),
    ("PUT", f"{API}/quality/specs/PUMP-A/diameter_mm", f"{API}/quality/specs/{{product_sku}}/{{parameter}}"),
    ("GET", "/openapi.json", "/openapi.json"),
    ("PUT", f"{API}/charges", None),
    ("PROPFIND", f"{API}/charges/42", None),
    ("GET", f"{API}/charges/42/nothing", None),
    ("GET", f"{API}/charges/", None),
    ("GET", "/nowhere", None),
]


@pytest.mark.parametrize(("method", "path", "expected"), CASES)
def test_finds_the_route_the_router_would_pick(
    index: RouteIndex, method: str, path: str, expected: str | None
) -> None:
    assert template(index.serving_route(request(method, path), path)) == expected
    assert template(serving_route(APP_ROUTES, request(method, path))) == expected


@pytest.mark.parametrize(("method", "path", "expected"), CASES)
def test_a_server_root_path_is_not_part_of_the_match(
    index: RouteIndex, method: str, path: str, expected: str | None
) -> None:
    assert template(index.serving_route(request(method, path, root_path="/erp"), path)) == expected


def test_every_path_of_the_app_is_answered_as_the_router_answers_it(index: RouteIndex) -> None:
    """The precomputed answers and the per-method shortcut agree with matching route by route."""
    methods = {method for _, route in walk_routes(APP_ROUTES) for method in route.methods or ()}
    templates = [path for path, _ in walk_routes(APP_ROUTES)]
    paths = {re.sub(r"{[^}]+}", value, path) for path in templates for value in ("7", "batch", "x")}
    paths |= {path + suffix for path in list(paths) for suffix in ("/", "/extra")}
    assert len(paths) > 50
    for path in paths:
        for method in (*methods, "PROPFIND"):
            scope = request(method, path)
            assert index.serving_route(scope, path) is serving_route(APP_ROUTES, scope), (method, path)


def test_the_first_matching_route_wins_as_in_the_router() -> None:
    first = Route("/{x}", endpoint, methods=["GET"])
    routes = [Mount("/m", routes=[first, Route("/fixed", endpoint, methods=["GET"])])]
    assert RouteIndex(routes).serving_route(request("GET", "/m/fixed"), "/m/fixed") is first


def test_only_routes_taking_the_method_can_serve_it_and_a_mount_is_never_left() -> None:
    get_any = Route("/{x}", endpoint, methods=["GET"])
    post_a = Route("/a", endpoint, methods=["POST"])
    routes = [Mount("/m", routes=[Route("/a", endpoint, methods=["GET"])]), post_a, get_any]
    index = RouteIndex(routes)
    assert index.serving_route(request("POST", "/m/b"), "/m/b") is None, "the mount's 404, as in the router"
    assert index.serving_route(request("POST", "/a"), "/a") is post_a
    assert index.serving_route(request("DELETE", "/b"), "/b") is None
    for method, path in [("POST", "/m/b"), ("POST", "/a"), ("DELETE", "/b"), ("GET", "/b"), ("PUT", "/m/a")]:
        scope = request(method, path)
        assert index.serving_route(scope, path) is serving_route(routes, scope), (method, path)


def test_remembered_answers_stay_bounded_and_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "REMEMBERED_PATHS", 10)
    index = RouteIndex(APP_ROUTES)
    for n in range(1, 40):
        for path, expected in [
            (f"{API}/charges/{n}", f"{API}/charges/{{id}}"),
            (f"{API}/charges/{n}/nothing", None),
            (f"{API}/charges/{n}" + "9" * 300, f"{API}/charges/{{id}}"),
        ]:
            assert template(index.serving_route(request("GET", path), path)) == expected
            assert template(index.serving_route(request("GET", path), path)) == expected, "remembered"
    assert len(index._remembered) <= 10, "neither many nor long paths make the memory grow"


def test_a_mount_of_an_app_without_routes_serves_everything_below_it() -> None:
    async def app(scope: Scope, receive: object, send: object) -> None:
        raise NotImplementedError

    mount = Mount("/files", app=app)
    assert serving_route([mount], request("GET", "/files/a.txt")) is mount


def test_host_routes_are_matched_without_precomputed_answers() -> None:
    inner = Route("/", endpoint, methods=["GET"])
    routes = [Host("api.example", app=Starlette(routes=[inner]))]
    scope = {**request("GET", "/"), "headers": [(b"host", b"api.example")]}
    assert RouteIndex(routes).serving_route(scope, "/") is inner
    assert RouteIndex(routes).serving_route(request("GET", "/"), "/") is None


def test_routed_scope_leaves_what_the_router_leaves() -> None:
    scope = routed_scope(APP_ROUTES, request("GET", f"{API}/charges/42"))
    assert template(scope["route"]) == f"{API}/charges/{{id}}"
    assert scope["root_path"] == API
    assert scope["path_params"] == {"id": "42"}
    assert "route" not in routed_scope(APP_ROUTES, request("GET", f"{API}/nothing"))


def test_allowed_methods_name_every_route_of_the_path(index: RouteIndex) -> None:
    assert index.allowed_methods(request("PUT", f"{API}/charges/1")) == {"GET", "HEAD", "PATCH", "DELETE"}
    assert index.allowed_methods(request("GET", "/nowhere")) == frozenset()


def test_walk_lists_every_route_with_its_mount_prefix_in_routing_order() -> None:
    templates = [path for path, _ in walk_routes(APP_ROUTES)]
    assert templates[0] == f"{API}/charges"
    assert f"{API}/charges/{{id}}" in templates
    assert "/metrics" in templates
    assert templates.index(f"{API}/charges/batch") < templates.index(f"{API}/charges/{{id}}")


# -- PrematchedRouter: the router taking the request where the index found it goes ----------------

ROUTER_KEYS = ("route", "endpoint", "path_params", "root_path", "app_root_path", "router")


def test_the_index_enters_every_path_of_the_app_as_the_router_does(index: RouteIndex) -> None:
    """What ``Found.entered`` sets is what the router's loop leaves in the scope, route by route."""
    templates = [path for path, _ in walk_routes(APP_ROUTES)]
    paths = {re.sub(r"{[^}]+}", value, path) for path in templates for value in ("7", "batch", "x")}
    entered = 0
    for path in paths:
        for method in ("GET", "POST", "PATCH", "DELETE", "PUT"):
            scope = request(method, path)
            found = index.find(scope, path)
            routed = routed_scope(APP_ROUTES, scope)
            if found.target is None:
                assert found.route is None or found.entered is None, (method, path)
                continue
            assert found.entered is not None
            assert found.target is routed["route"] is found.route, (method, path)
            after = {**scope, **found.entered}
            assert {key: after.get(key) for key in ROUTER_KEYS} == {
                key: routed.get(key) for key in ROUTER_KEYS
            }
            entered += 1
    assert entered > 50


Seen = list[dict[str, Any]]


def recorder(seen: Seen) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        seen.append({key: request.scope.get(key) for key in ROUTER_KEYS if key != "router"})
        seen[-1]["path_params"] = dict(request.path_params)
        request.path_params["touched"] = True  # no other request may see it
        return Response("ok")

    return endpoint


async def call(app: Router, scope: Scope) -> int:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def http(method: str, path: str, root_path: str = "", **extra: Any) -> dict[str, Any]:
    return {**request(method, path, root_path), "query_string": b"", **extra}


async def test_the_prematched_router_hands_the_request_over_as_the_router_would() -> None:
    seen: Seen = []
    endpoint = recorder(seen)
    routes: list[BaseRoute] = [
        Mount("/m", routes=[Route("/fixed", endpoint), Route("/{n:int}", endpoint, methods=["GET"])]),
        Route("/r/{name}", endpoint, methods=["GET", "POST"]),
    ]
    plain, prematched = Router(routes), PrematchedRouter(routes)
    index = RouteIndex(routes)
    for method, path in [("GET", "/m/fixed"), ("GET", "/m/42"), ("POST", "/r/a"), ("GET", "/m/42")]:
        assert await call(plain, http(method, path)) == 200
        scope = http(method, path)
        scope[routing.PREMATCHED] = found = index.find(scope, path)
        assert found.entered is not None
        assert await call(prematched, scope) == 200
        assert seen[-1] == seen[-2], (method, path)
        assert routing.PREMATCHED not in scope
        assert "touched" not in found.entered["path_params"], "each request has path parameters of its own"
    assert seen[-1]["path_params"] == {"n": 42}


async def test_without_an_answer_that_fits_the_router_matches_as_always() -> None:
    seen: Seen = []
    routes: list[BaseRoute] = [Mount("/m", routes=[Route("/{n:int}", recorder(seen), methods=["GET"])])]
    index = RouteIndex(routes)
    found = index.find(http("GET", "/m/1"), "/m/1")
    prematched = PrematchedRouter(routes)
    # Another root path, or a scope an enclosing app routed already: the loop runs.
    for scope in [
        {**http("GET", "/m/1", root_path="/erp"), routing.PREMATCHED: found},
        {**http("GET", "/m/1", app_root_path="", path_params={"outer": 1}), routing.PREMATCHED: found},
        http("GET", "/m/1"),
    ]:
        assert await call(prematched, scope) == 200
    assert [entry["root_path"] for entry in seen] == ["/erp/m", "/m", "/m"]
    assert seen[1]["path_params"] == {"outer": 1, "n": 1}
    assert await call(prematched, http("GET", "/nowhere")) == 404


async def test_a_mount_with_middleware_of_its_own_is_entered_through_it() -> None:
    seen: Seen = []
    passed: list[str] = []

    class Marking:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            passed.append(scope["path"])
            await self.app(scope, receive, send)

    inner = Route("/{n:int}", recorder(seen), methods=["GET"])
    mount = Mount("/m", routes=[inner], middleware=[Middleware(Marking)])
    index = RouteIndex([mount])
    scope = http("GET", "/m/5")
    scope[routing.PREMATCHED] = found = index.find(scope, "/m/5")
    assert found.route is inner and found.target is mount
    assert await call(PrematchedRouter([mount]), scope) == 200
    assert passed == ["/m/5"]
    assert seen[0]["route"] is inner and seen[0]["path_params"] == {"n": 5}


def test_only_a_plain_async_endpoint_is_called_directly() -> None:
    def sync_endpoint(_request: Request) -> Response:
        return Response()

    class Marking:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)

    assert routing.direct_endpoint(Route("/a", endpoint)) is endpoint
    assert routing.direct_endpoint(Route("/a", endpoint, middleware=[Middleware(Marking)])) is None
    assert routing.direct_endpoint(Route("/a", sync_endpoint)) is None
    assert routing.direct_endpoint(Route("/a", Marking(endpoint))) is None  # an ASGI app
    assert routing.direct_endpoint(Mount("/m", routes=[Route("/a", endpoint)])) is None
    assert routing.direct_endpoint(None) is None


async def test_a_directly_called_endpoint_has_what_it_raises_mapped_by_the_app() -> None:
    class Refused(Exception):
        pass

    async def refuse(_request: Request) -> Response:
        raise Refused

    async def teapot(_request: Request, _exc: Exception) -> Response:
        return Response(status_code=418)

    seen: Seen = []
    routes: list[BaseRoute] = [
        Route("/ok/{n:int}", recorder(seen), methods=["GET"]),
        Route("/refuse", refuse, methods=["GET"]),
    ]
    index = RouteIndex(routes)

    class Prematching:  # what the security middleware does on every request
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            scope[routing.PREMATCHED] = found = index.find(scope, scope["path"])
            assert found.endpoint is not None
            await self.app(scope, receive, send)

    app = Starlette(routes=routes, middleware=[Middleware(Prematching)], exception_handlers={Refused: teapot})
    app.router = PrematchedRouter(app.router.routes)
    assert await call(app.router, http("GET", "/ok/7")) == 200
    assert seen[-1]["route"] is routes[0] and seen[-1]["path_params"] == {"n": 7}
    assert await call(app, http("GET", "/refuse")) == 418
