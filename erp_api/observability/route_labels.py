"""Which route template served a request, read from the ASGI scope after the router ran.

Starlette's router stores the matched route in ``scope["route"]`` and extends ``scope["root_path"]``
by the path of every ``Mount`` it descends into, so the template is that added prefix plus the
route's own path: ``/api/v1`` + ``/charges/{id}``. No matching is repeated on that path.

A response sent before the router ran (a 401, 403, 413 or 429 from a middleware) has no route in
the scope; only then is the scope routed as the router would (``erp_api.routing.routed_scope``).
"""

from __future__ import annotations

from starlette.routing import Mount
from starlette.types import Scope

from erp_api.routing import routed_scope

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
        router = getattr(scope.get("app"), "router", None)
        scope = routed_scope(getattr(router, "routes", ()), scope)
        route = scope.get("route")
        if route is None:
            return UNMATCHED
    prefix = scope.get("root_path", "")[len(outer_root_path) :]
    if isinstance(route, Mount):
        # The mount matched but nothing inside it did: a 404 from the mounted router.
        return UNMATCHED if status == 404 else prefix + "/{path}"
    path = getattr(route, "path", None)
    return UNMATCHED if path is None else prefix + path
