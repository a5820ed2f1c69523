"""One pure ASGI middleware for the per-request security work, in this order:

1. find the route template the router will pick, hence the role it requires and its body limit;
2. refuse a malformed (400) or too large (413) ``Content-Length`` before anything else is done;
3. authenticate ``Authorization: Bearer <key>`` (public routes skip this);
4. count the request against the caller's rate limit: per key, or per client address for callers
   without one (429 with ``Retry-After``); probes and metrics are not limited;
5. answer 401 for missing or bad credentials, 403 for a role below the route's requirement;
6. bind the principal for the audit trail, count streamed bodies, and add the ``RateLimit-*``
   headers to the response (and an ``Allow`` naming every method of the path to a 405).

It sits inside CORS (so preflights need no key) and outside the router (so nothing reaches a
route unchecked). Its services come from ``app.state.resources.security``, built by the lifespan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erp_api.errors import MalformedRequest, PayloadTooLarge
from erp_api.security.body_limit import INVALID, BodyLimits, counting_receive, declared_length
from erp_api.security.principal import AUTH_DISABLED, Principal, bind_principal, reset_principal
from erp_api.security.problems import Forbidden, TooManyRequests, Unauthorized, send_problem
from erp_api.security.ratelimit import Decision
from erp_api.security.roles import PUBLIC, Requirement, Role, access_policy, requirement
from erp_api.security.route_match import RouteTable
from erp_api.settings import Settings

if TYPE_CHECKING:
    from erp_api.security.services import SecurityServices

UNLIMITED_PATHS: Final = frozenset({"/health", "/health/ready", "/metrics"})
"""Probes and scrapes: cheap, and a load balancer must never be told to slow down."""

_CHALLENGE: Final = 'Bearer realm="erp-api"'


class SecurityMiddleware:
    """Authentication, authorization, rate limits and body limits for every HTTP request."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        # Compiled from the app's routes on the first request, once every route has been added.
        self._table: RouteTable | None = None
        self._policy = access_policy(metrics_public=settings.metrics_public)
        self._limits = BodyLimits(settings.max_body_bytes, settings.max_batch_body_bytes)
        self._auth = settings.auth_enabled
        self._rate_limit = settings.rate_limit_enabled
        self._quotas = {
            Role.VIEWER: settings.rate_limit_viewer,
            Role.OPERATOR: settings.rate_limit_operator,
            Role.QUALITY_MANAGER: settings.rate_limit_quality_manager,
            Role.ADMIN: settings.rate_limit_admin,
        }
        self._anonymous_quota = settings.rate_limit_anonymous

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        method: str = scope["method"]
        if self._table is None:
            self._table = RouteTable(scope["app"].routes)
        template = self._table.match(method, path)
        # A path no route serves still needs a key: a stranger learns nothing, a caller gets 404/405.
        needed: Requirement = Role.VIEWER if template is None else requirement(self._policy, method, template)

        limit = self._limits.for_route(method, template)
        declared = declared_length(scope)
        if declared == INVALID:
            await send_problem(
                MalformedRequest("Content-Length must be one non-negative integer"), scope, receive, send
            )
            return
        if declared is not None and declared > limit:
            message = f"the body is {declared} bytes; at most {limit} are accepted"
            await send_problem(PayloadTooLarge(message), scope, receive, send)
            return

        principal: Principal | None = None
        rejection: Unauthorized | None = None
        if not self._auth:
            principal = AUTH_DISABLED
        elif needed != PUBLIC:
            principal, rejection = await self._authenticate(scope)

        extra_headers: list[tuple[bytes, bytes]] = []
        if self._rate_limit and path not in UNLIMITED_PATHS:
            decision = await self._count(scope, principal)
            extra_headers = decision.headers()
            if not decision.allowed:
                detail = f"more than {decision.limit} requests in the window; retry later"
                await send_problem(TooManyRequests(detail), scope, receive, send, extra_headers)
                return

        if rejection is not None:
            await send_problem(rejection, scope, receive, send, extra_headers)
            return
        if needed != PUBLIC and principal is not None and not principal.role.includes(needed):
            forbidden = Forbidden(
                f"this needs the {needed.value} role; the key has {principal.role.value}",
                extra={"required_role": needed.value},
                headers={"WWW-Authenticate": f'{_CHALLENGE}, error="insufficient_scope"'},
            )
            await send_problem(forbidden, scope, receive, send, extra_headers)
            return

        if declared is None and method not in ("GET", "HEAD"):
            receive = counting_receive(receive, limit)
        if template is None and (allowed := self._table.allowed_methods(path)):
            # The router answers 405, but its Allow names only the methods of the first route that
            # matched the path (each method is a route of its own): name them all.
            send = _with_allow(send, ", ".join(sorted(allowed)).encode())
        if extra_headers:
            send = _with_headers(send, extra_headers)
        token = bind_principal(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_principal(token)

    async def _authenticate(self, scope: Scope) -> tuple[Principal | None, Unauthorized | None]:
        values = [value for name, value in scope["headers"] if name == b"authorization"]
        if not values:
            return None, Unauthorized(
                "send an API key as Authorization: Bearer <key>", headers={"WWW-Authenticate": _CHALLENGE}
            )
        scheme, _, key = values[0].decode("latin-1").partition(" ")
        principal = None
        if len(values) == 1 and scheme.lower() == "bearer":
            principal = await _services(scope).keys.authenticate(key.strip())
        if principal is None:
            return None, Unauthorized(
                "the API key is not valid (unknown, revoked, or not a Bearer key)",
                headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
            )
        return principal, None

    async def _count(self, scope: Scope, principal: Principal | None) -> Decision:
        if principal is not None and principal.key_id is not None:
            bucket, quota = f"key:{principal.key_id}", self._quotas[principal.role]
        else:
            client = scope.get("client")
            address = client[0] if client else "unknown"
            quota = self._quotas[principal.role] if principal is not None else self._anonymous_quota
            bucket = f"addr:{address}"
        return await _services(scope).limiter.hit(bucket, quota)


def _services(scope: Scope) -> SecurityServices:
    services: SecurityServices = scope["app"].state.resources.security
    return services


def _with_allow(send: Send, allow: bytes) -> Send:
    async def send_with_allow(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 405:
            headers = [
                (name, value) for name, value in message.get("headers", ()) if name.lower() != b"allow"
            ]
            message["headers"] = [*headers, (b"allow", allow)]
        await send(message)

    return send_with_allow


def _with_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *headers]
        await send(message)

    return send_with_headers
