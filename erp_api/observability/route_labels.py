"""Which route template served a request, read from the ASGI scope after the router ran.

Starlette's router stores the matched route in ``scope["route"]`` and extends ``scope["root_path"]``
by the path of every ``Mount`` it descends into, so the template is that added prefix plus the
route's own path: ``/api/v1`` + ``/charges/{id}``. No matching is repeated on that path.

A response sent before the router ran (a 401, 403, 413 or 429 from a middleware) has no route in
the scope; only then are the app's routes matched against a copy of the scope, as the router would.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

UNMATCHED = "unmatched"
"""The one label shared by every request no route matched, so raw paths never become labels."""


def route_template(scope: Scope, outer_root_path: str, status: int) -> str:
    """The template of the route that answered, or ``UNMATCHED``.

    ``outer_root_path`` is ``scope["root_path"]`` as it was before the router ran (the server's
    own root path), so only the prefixes the application's mounts added remain.
    """
    route = scope.get("route")
    if route is None:
        if status == 404:
            return UNMATCHED
        scope = _matched_scope(scope)
        route = scope.get("route")
        if route is None:
            return UNMATCHED
    prefix = scope.get("root_path", "")[len(outer_root_path) :]
    if isinstance(route, Mount):
        # The mount matched but nothing inside it did: a 404 from the mounted router.
        return UNMATCHED if status == 404 else prefix + "/{path}"
    path = getattr(route, "path", None)
    return UNMATCHED if path is None else prefix + path


def _matched_scope(scope: Scope) -> Scope:
    """A copy of ``scope`` as the router would have left it (``route`` absent when nothing matches)."""
    router = getattr(scope.get("app"), "router", None)
    routes: Iterable[BaseRoute] = getattr(router, "routes", ())
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
        if not isinstance(route, Mount):
            return scratch
        # Descend like the mounted router does; a mount without routes stays the answer.
        routes = getattr(route, "routes", ())
        if not routes:
            return scratch
        del scratch["route"]
