"""Which route serves a request, found before (or without) the router, with Starlette's own matching.

``routed_scope`` repeats the router's loop on a copy of the scope: each route's ``matches(scope)`` in
routing order, the first full match wins, else the first partial one (a 405), mounts descended with
the child scope they produce. Nothing about paths is re-implemented, so the answer is the router's.

``RouteIndex`` answers "which route will serve this request" for the security middleware on every
request with the same ``matches``, skipping routes that cannot take the method, and remembers the
answers (computed once for every path without parameters).

With the answer the index keeps what the router's loop adds to the scope on the way (``route``,
``endpoint``, ``path_params``, and a mount's ``root_path`` and ``app_root_path``), worked out once
by those routes' own ``matches``. ``PrematchedRouter`` is Starlette's router told that answer: the
security middleware leaves it in the scope (``PREMATCHED``), and the router, instead of trying its
routes one by one again, sets what its loop would have set and calls the route's ``handle`` (for a
plain function endpoint, the endpoint itself: see ``direct_endpoint``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from inspect import iscoroutinefunction
from typing import Any, Final, NamedTuple

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Host, Match, Mount, Route, Router
from starlette.types import Receive, Scope, Send

REMEMBERED_PATHS: Final = 8192
"""How many answers for paths with parameters ``RouteIndex`` keeps (forgotten all at once when full)."""
REMEMBERED_PATH_LENGTH: Final = 256
"""Longer paths are matched every time, so that hostile paths cannot make the memory grow."""
PREMATCHED: Final = "erp.prematched"
"""Scope key: the ``Found`` of the request, for ``PrematchedRouter``."""


class Found(NamedTuple):
    """Where the router takes a request, and what its loop adds to the scope on the way."""

    route: BaseRoute | None
    """What serves it (see ``serving_route``); None when the router answers 404 or 405 itself."""
    target: BaseRoute | None = None
    """Whose ``handle`` the router ends up calling: ``route``, or a mount whose app routes by
    itself after middleware of its own; None where the router's own loop must run."""
    entered: dict[str, Any] | None = None
    """The scope keys the router sets on its way to ``target`` (``path_params`` to be copied)."""
    root_path: str = ""
    """The root path ``entered`` was worked out for."""
    endpoint: Callable[[Request], Awaitable[Response]] | None = None
    """``target``'s endpoint when the router may call it directly (``direct_endpoint``)."""

    def enters(self, scope: Scope) -> bool:
        """Whether ``entered`` is what the router's loop would set in ``scope``: the same root path,
        and no path parameters or app root path of an enclosing app to start from."""
        return (
            self.entered is not None
            and scope.get("root_path", "") == self.root_path
            and "path_params" not in scope
            and "app_root_path" not in scope
        )


NOT_FOUND: Final = Found(None)


def route_path(scope: Scope) -> str:
    """The request's path below its root path: what the routes match."""
    root_path: str = scope.get("root_path", "")
    path: str = scope["path"]
    return path[len(root_path) :] if root_path and path.startswith(root_path) else path


def walk_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    """Every ``Route`` with its full template (mount prefixes included), in routing order."""
    for route in routes:
        if isinstance(route, Mount):
            yield from walk_routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path, route


def routed_scope(routes: Sequence[BaseRoute], scope: Scope) -> dict[str, Any]:
    """A copy of ``scope`` as the router leaves it for the endpoint: ``route``, ``root_path``,
    ``path_params``; without ``route`` when nothing matches (a 404 or a slash redirect).

    A ``Mount`` (or ``Host``) stays the ``route`` when what it mounts has no routes to descend into.
    """
    scratch: dict[str, Any] = dict(scope)
    while True:
        partial: tuple[BaseRoute, Scope] | None = None
        for route in routes:
            match, child_scope = route.matches(scratch)
            if match is Match.FULL:
                break
            if match is Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        else:
            if partial is None:
                return scratch
            route, child_scope = partial
        scratch["route"] = route
        scratch.update(child_scope)
        if not isinstance(route, Mount | Host) or not route.routes:
            return scratch
        # Descend as the mounted router does; nothing matching in there is its 404.
        routes = route.routes
        del scratch["route"]


def serving_route(routes: Sequence[BaseRoute], scope: Scope) -> BaseRoute | None:
    """What will answer the request: a ``Route`` that takes its method, or a ``Mount`` (``Host``) of
    an app without routes; None when the router answers 404 or 405 itself."""
    route = routed_scope(routes, scope).get("route")
    if isinstance(route, Route):
        return route if route.methods is None or scope["method"] in route.methods else None
    return route if isinstance(route, Mount | Host) else None


class RouteIndex:
    """``serving_route`` for every request, fast.

    Only a route that takes the request's method (or a mount) can match fully, so each method gets
    its own tree of such routes, in routing order; the first full match in it is the router's.
    Paths without parameters are answered from a dict computed once with ``serving_route`` itself,
    other paths from the answers of the last few thousand (``REMEMBERED_PATHS``) requests. All of
    this holds while every route matches on the method and path alone (``Route``, ``Mount``; a
    ``Host`` reads headers): otherwise every request runs ``serving_route``. Build the index once
    every route has been added.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._routes = routes
        self._exact = _matches_on_path_and_method(routes)
        templates = list(walk_routes(routes)) if self._exact else []
        methods = {method for _, route in templates for method in route.methods or ()}
        self._trees = {method: _tree(routes, method) for method in methods}
        self._other_methods = _tree(routes, None)
        # (method, path) -> the answer (a NamedTuple, so never falsy: a miss is told from NOT_FOUND).
        self._static: dict[tuple[str, str], Found] = {}
        for template, _route in templates:
            if "{" in template:
                continue
            for method in methods:
                scope = {"type": "http", "method": method, "path": template, "root_path": ""}
                self._static[(method, template)] = _found(self._trees[method], scope)
        self._remembered: dict[tuple[str, str], Found] = {}

    def serving_route(self, scope: Scope, route_path: str) -> BaseRoute | None:
        """``serving_route`` of the request; ``route_path`` is its path below the root path."""
        return self.find(scope, route_path).route

    def find(self, scope: Scope, route_path: str) -> Found:
        """The serving route of the request and the routes entered on the way (none with Host routes)."""
        if not self._exact:
            return Found(serving_route(self._routes, scope))
        method: str = scope["method"]
        key = (method, route_path)
        found = self._static.get(key) or self._remembered.get(key)
        if found is not None:
            return found
        found = _found(self._trees.get(method, self._other_methods), scope)
        # A path not starting with "/" is the router's own oddity (a root path with no "/" after it).
        if route_path[:1] == "/" and len(route_path) <= REMEMBERED_PATH_LENGTH and method in self._trees:
            if len(self._remembered) >= REMEMBERED_PATHS:
                self._remembered.clear()
            self._remembered[key] = found
        return found

    def allowed_methods(self, scope: Scope) -> frozenset[str]:
        """Every method some route serves the request's path with (for the ``Allow`` of a 405)."""
        return frozenset(_allowed_methods(self._routes, scope))


_Tree = list[tuple[BaseRoute, "_Tree | None"]]
"""Routes that may match a method fully, in routing order; a mount with the tree of its routes."""


def _tree(routes: Iterable[BaseRoute], method: str | None) -> _Tree:
    """The routes taking ``method`` (None: a method no route names), mounts descended."""
    tree: _Tree = []
    for route in routes:
        if isinstance(route, Mount):
            tree.append((route, _tree(route.routes, method) if route.routes else None))
        elif isinstance(route, Route) and (not route.methods or method in route.methods):
            tree.append((route, None))
    return tree


def _found(tree: _Tree, scope: Scope) -> Found:
    found = _find(tree, scope)
    if found.entered is None or "path_params" in scope or "app_root_path" in scope:
        return Found(found.route)  # found inside an enclosing app: left to the router's loop
    return found._replace(root_path=scope.get("root_path", ""), endpoint=direct_endpoint(found.target))


def direct_endpoint(route: BaseRoute | None) -> Callable[[Request], Awaitable[Response]] | None:
    """The endpoint of a ``Route`` whose app is nothing but Starlette's ``request_response`` around an
    async function (no route middleware, no body limit of its own); else None.

    That app only adds Starlette's exception wrapper, which maps what the endpoint raises with the
    handlers the app's ``ExceptionMiddleware`` put in the scope. ``PrematchedRouter`` runs right
    inside that middleware, which maps the same exceptions with the same handlers (and refuses, the
    same way, to answer one raised after the response started), so calling the endpoint directly
    changes no answer and saves a wrapper and two closures per request.
    """
    if not isinstance(route, Route) or not iscoroutinefunction(route.endpoint):
        return None
    app = route.app
    if getattr(app, "__module__", None) != "starlette.routing":
        return None
    if getattr(app, "__qualname__", None) != "request_response.<locals>.app":
        return None
    endpoint: Callable[[Request], Awaitable[Response]] = route.endpoint
    return endpoint


def _find(tree: _Tree, scope: Scope) -> Found:
    for route, below in tree:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            entered = {**child_scope, "route": route}
            if below is None:
                return Found(route, route, entered)
            # The router does not come back out of a mount: nothing matching in it is its 404.
            found = _find(below, {**scope, **child_scope})
            if found.route is None:
                return NOT_FOUND
            if found.entered is None or not _only_routes(route):
                return Found(found.route, route, entered)
            return found._replace(entered={**entered, **found.entered})
    return NOT_FOUND


def _only_routes(mount: BaseRoute) -> bool:
    """Whether entering ``mount`` does nothing but run a plain router's loop over its routes."""
    app = getattr(mount, "app", None)
    return type(app) is Router and getattr(app, "middleware_stack", None) == app.app


class PrematchedRouter(Router):
    """A ``Router`` that takes the request where ``RouteIndex`` found it goes (``PREMATCHED``).

    It sets in the scope what its loop would have set on the way (``Found.entered``) and calls the
    ``handle`` of the route (or mount) the loop would have called; without an applicable answer,
    its loop runs as always.
    """

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        found: Found | None = scope.pop(PREMATCHED, None)
        if found is None or found.target is None or found.entered is None or not found.enters(scope):
            await super().app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self
        scope.update(found.entered)
        scope["path_params"] = dict(scope["path_params"])  # the request's own, as the loop's would be
        if found.endpoint is None:
            await found.target.handle(scope, receive, send)
            return
        # The route's handle(): its method check passed when the index found it.
        response = await found.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


def _allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> Iterator[str]:
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount | Host):
            yield from _allowed_methods(route.routes, {**scope, **child_scope})
        elif isinstance(route, Route):
            yield from route.methods or ()


def _matches_on_path_and_method(routes: Iterable[BaseRoute]) -> bool:
    return all(
        isinstance(route, Route) or (isinstance(route, Mount) and _matches_on_path_and_method(route.routes))
        for route in routes
    )
