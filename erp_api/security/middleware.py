"""One pure ASGI middleware for the per-request security work, in this order:

1. find the route the router will pick (``routing.RouteIndex``), hence the role it requires and its
   body limit, both declared on the route (``access.py``), and leave the way to it for the router
   (``routing.PrematchedRouter``);
2. refuse a malformed (400) or too large (413) ``Content-Length`` before anything else is done;
3. authenticate ``Authorization: Bearer <key>`` (public routes skip this), or, on a route that
   declares ``ticket_auth``, a single-use ``?ticket=`` instead (``erp_api.events.tickets``);
4. count the request against the caller's rate limit: per key, or per client address for callers
   without one (429 with ``Retry-After``); probes and metrics are not limited;
5. answer 401 for missing or bad credentials, 403 for a role below the route's requirement;
6. bind the principal for the audit trail, count streamed bodies, and add the ``RateLimit-*``
   headers to the response (and an ``Allow`` naming every method of the path to a 405).

It sits inside CORS (so preflights need no key) and outside the router (so nothing reaches a
route unchecked), and inside ``ResponseHeadersMiddleware``, which sends the ``RateLimit-*`` headers.
Its services come from ``app.state.resources.security``, built by the lifespan. Authentication and
the rate limit count are ``admission``'s, which ``erp_api.cached_reads`` also runs for the cached
reads it answers in front of the stack (those never reach this middleware).
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erp_api.errors import (
    Forbidden,
    MalformedRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    send_error,
)
from erp_api.response_headers import response_headers
from erp_api.routing import PREMATCHED, RouteIndex, route_path
from erp_api.security.access import Access, access_of
from erp_api.security.admission import CHALLENGE, Quotas, authenticate, security_services
from erp_api.security.body_limit import INVALID, BodyLimits, counting_receive, declared_length
from erp_api.security.principal import AUTH_DISABLED, Principal, bind_principal, reset_principal
from erp_api.security.roles import PUBLIC, Role
from erp_api.settings import Settings

UNLIMITED_PATHS: Final = frozenset({"/health", "/health/ready", "/metrics"})
"""Probes and scrapes: cheap, and a load balancer must never be told to slow down."""

UNROUTED: Final = Access(Role.VIEWER)
"""A request no route serves still needs a key: a stranger learns nothing, a caller gets 404/405."""


class SecurityMiddleware:
    """Authentication, authorization, rate limits and body limits for every HTTP request."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self._index: RouteIndex | None = None
        self._limits = BodyLimits(settings.max_body_bytes, settings.max_batch_body_bytes)
        self._body_timeout = settings.body_timeout_seconds
        self._auth = settings.auth_enabled
        self._rate_limit = settings.rate_limit_enabled
        self._quotas = Quotas(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        method: str = scope["method"]
        # Found already by ``cached_reads`` for a GET it left to the stack.
        found = scope.get(PREMATCHED) or self._route_index(scope).find(scope, path)
        route = found.route
        access = UNROUTED if route is None else access_of(route)
        needed = access.role

        limit = self._limits.in_bytes(access.body)
        declared = declared_length(scope)
        if declared == INVALID:
            await send_error(
                MalformedRequest("Content-Length must be one non-negative integer"), scope, receive, send
            )
            return
        if declared is not None and declared > limit:
            message = f"the body is {declared} bytes; at most {limit} are accepted"
            await send_error(PayloadTooLarge(message), scope, receive, send)
            return

        principal: Principal | None = None
        rejection: Unauthorized | ServiceUnavailable | None = None
        services = security_services(scope)  # once: each look-up goes through Starlette's State.__getattr__
        if not self._auth:
            principal = AUTH_DISABLED
        elif needed != PUBLIC:
            principal, rejection = await authenticate(scope, services, ticket_auth=access.ticket_auth)

        extra_headers: list[tuple[bytes, bytes]] = []
        if self._rate_limit and path not in UNLIMITED_PATHS:
            decision = await self._quotas.count(scope, services, principal)
            extra_headers = decision.headers()
            if not decision.allowed:
                detail = f"more than {decision.limit} requests in the window; retry later"
                await send_error(TooManyRequests(detail), scope, receive, send, extra_headers)
                return

        if rejection is not None:
            await send_error(rejection, scope, receive, send, extra_headers)
            return
        if needed != PUBLIC and principal is not None and not principal.role.includes(needed):
            forbidden = Forbidden(
                f"this needs the {needed.value} role; the key has {principal.role.value}",
                extra={"required_role": needed.value},
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="insufficient_scope"'},
            )
            await send_error(forbidden, scope, receive, send, extra_headers)
            return

        if declared or (declared is None and method not in ("GET", "HEAD")):
            # A body is coming: counted, timed, and checked against its Content-Length.
            receive = counting_receive(receive, limit, declared, self._body_timeout)
        if route is None:
            # A 404 or a 405. The router's 405 names only the methods of the first route that matched
            # the path in its Allow (each method is a route of its own): name them all.
            request = {
                "type": "http",
                "method": method,
                "path": scope["path"],
                "root_path": scope.get("root_path", ""),
            }
            send = _with_allow(send, self._route_index(scope), request)
        response_headers(scope).added.extend(extra_headers)
        scope[PREMATCHED] = found  # the router goes there without matching again
        token = bind_principal(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_principal(token)

    def _route_index(self, scope: Scope) -> RouteIndex:
        # Built on the first request, once every route has been added.
        if self._index is None:
            self._index = RouteIndex(scope["app"].routes)
        return self._index


def _with_allow(send: Send, index: RouteIndex, request: Scope) -> Send:
    async def send_with_allow(message: Message) -> None:
        is_405 = message["type"] == "http.response.start" and message["status"] == 405
        if is_405 and (allowed := index.allowed_methods(request)):
            headers = [
                (name, value) for name, value in message.get("headers", ()) if name.lower() != b"allow"
            ]
            message["headers"] = [*headers, (b"allow", ", ".join(sorted(allowed)).encode())]
        await send(message)

    return send_with_allow
