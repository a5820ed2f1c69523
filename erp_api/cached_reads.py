"""Cached reads answered in front of the framework: the full stack's answer for a fraction of its work.

A route may declare its answer from the cache alone (``Endpoint(..., cached=...)``: a charge's
document). For a ``GET`` of such a route, ``CachedReads``, the outermost layer of the app, does
what the middleware stack does, with the same functions, and answers without entering Starlette's
error layers, the four middleware, the router and a request/response round of their own:

1. the route is found with the route index (and handed down to the security middleware);
2. the caller is authenticated (``security.admission.authenticate``) and must hold the route's role;
3. the route's reader gives its answer from the cache (``CacheManager.peek``), or None;
4. only then is the request counted against the caller's limit (``admission.Quotas``). Refused, it
   is answered 429 as the security middleware answers it; else the answer goes out with the headers
   the stack adds: CORS (``CorsPolicy.mark``), the security headers, the request id and the
   ``RateLimit-*`` headers (``DefaultHeaders``, as ``ResponseHeadersMiddleware`` adds them), and is
   noted in the request ledger (metrics and access log) under its route.

Anything else is left to the full stack before it is counted, and served there as if this layer
were not in front: a request with a body, without a valid key or the role, a cache miss, an answer
gzip would compress, an error on the way. Nothing is decided twice; a miss costs one cache look-up
more. ``tests/erp_api/test_cached_reads.py`` holds both ways to the same bytes, headers included.
"""

from __future__ import annotations

from collections.abc import Collection
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erp_api.compression import accepts_gzip
from erp_api.errors import TooManyRequests, send_error
from erp_api.observability.request_id import REQUEST_ID, accept_request_id
from erp_api.observability.request_id import SCOPE_KEY as REQUEST_ID_KEY
from erp_api.response_headers import SCOPE_KEY as RESPONSE_HEADERS_KEY
from erp_api.response_headers import DefaultHeaders, ResponseHeaders
from erp_api.routing import PREMATCHED, RouteIndex, route_path
from erp_api.security.access import Endpoint
from erp_api.security.admission import Quotas, authenticate, security_services
from erp_api.security.principal import AUTH_DISABLED, Principal, bind_principal, reset_principal
from erp_api.security.roles import PUBLIC

if TYPE_CHECKING:
    from starlette.responses import Response

    from erp_api.observability.request_ledger import RequestLedger
    from erp_api.security.cors import CorsPolicy
    from erp_api.security.ratelimit import Decision
    from erp_api.settings import Settings

_ORIGIN: Final = b"origin"
_REQUEST_ID: Final = b"x-request-id"
_BODY_HEADERS: Final = frozenset({b"content-length", b"transfer-encoding"})


class CachedReads:
    """Answers ``GET`` requests of routes with a cached reader from the cache (module docstring).

    ``ledger`` is the request ledger of the observability middleware (None: no request ids, no
    metrics, as without that middleware); ``unlimited_paths`` are never counted, ``cors`` is the
    CORS policy (None: no CORS).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        ledger: RequestLedger | None,
        cors: CorsPolicy | None,
        header_defaults: DefaultHeaders,
        unlimited_paths: Collection[str],
    ) -> None:
        self.app = app
        self._ledger = ledger
        self._cors = cors
        self._defaults = header_defaults
        self._auth = settings.auth_enabled
        self._rate_limit = settings.rate_limit_enabled
        self._quotas = Quotas(settings)
        self._gzip_minimum = settings.gzip_minimum_bytes
        self._unlimited = frozenset(unlimited_paths)
        self._index: RouteIndex | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if self._index is None:  # built on the first request, once every route has been added
            self._index = RouteIndex(scope["app"].routes)
        found = self._index.find(scope, path)
        route = found.route
        if (
            isinstance(route, Endpoint)
            and route.cached is not None
            and found.entered is not None
            and found.enters(scope)
            and not route.access.ticket_auth
            and path not in self._unlimited
            and await self._answer(route, found.entered, scope, receive, send)
        ):
            return
        scope[PREMATCHED] = found  # for the security middleware, which finds nothing again
        await self.app(scope, receive, send)

    async def _answer(
        self, route: Endpoint, entered: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """Answer from the cache and return True, or return False having counted and sent nothing."""
        sent_id = origin = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID:
                sent_id = value
            elif name == _ORIGIN:
                origin = value
            elif name in _BODY_HEADERS:
                return False  # a body: its limits and timer are the security middleware's
        request_id = accept_request_id(sent_id) if self._ledger is not None else None
        token = REQUEST_ID.set(request_id)
        try:
            read = await self._read(route, {**scope, **entered}, receive)
            if read is None:
                return False
            await self._respond(read, scope.get("root_path", ""), request_id, origin, receive, send)
            return True
        finally:
            REQUEST_ID.reset(token)

    async def _read(self, route: Endpoint, request_scope: Scope, receive: Receive) -> _Read | None:
        """The admitted and counted answer from the cache, or None having counted nothing.

        ``request_scope`` is the request's scope as the router would leave it (``Found.entered``)."""
        principal: Principal | None = None
        try:
            services = security_services(request_scope)
            needed = route.access.role
            if not self._auth:
                principal = AUTH_DISABLED
            elif needed != PUBLIC:
                principal, rejection = await authenticate(request_scope, services)
                if principal is None or rejection is not None or not principal.role.includes(needed):
                    return None
            assert route.cached is not None
            token = bind_principal(principal)  # the reader runs as the endpoint would
            try:
                response = await route.cached(Request(request_scope, receive))
            finally:
                reset_principal(token)
            if (
                response is None
                or response.background is not None
                or (len(response.body) >= self._gzip_minimum and accepts_gzip(request_scope))
            ):
                return None
            decision = (
                await self._quotas.count(request_scope, services, principal) if self._rate_limit else None
            )
        except Exception:
            return None  # the full stack meets it again, and answers it as it answers errors
        return _Read(request_scope, response, principal, decision)

    async def _respond(  # noqa: PLR0917 - the hot path: positional arguments
        self,
        read: _Read,
        outer_root_path: str,
        request_id: str | None,
        origin: bytes | None,
        receive: Receive,
        send: Send,
    ) -> None:
        """Send the answer (or the 429) with the headers the stack adds; note it in the ledger."""
        scope, response, decision, ledger = read.scope, read.response, read.decision, self._ledger
        added: list[tuple[bytes, bytes]] = []
        if request_id is not None:
            scope[REQUEST_ID_KEY] = request_id
            added.append((_REQUEST_ID, request_id.encode("ascii")))
        token = bind_principal(read.principal)
        if ledger is not None:
            ledger.started("GET")
        start = perf_counter()
        status = 500  # unless a response starts
        try:
            if decision is not None and not decision.allowed:
                noted = scope[RESPONSE_HEADERS_KEY] = ResponseHeaders()
                noted.added = added
                detail = f"more than {decision.limit} requests in the window; retry later"
                error = TooManyRequests(detail)
                await send_error(
                    error, scope, receive, self._defaults.sending(send, noted), decision.headers()
                )
                status = noted.status or status
            else:
                if decision is not None:
                    added.extend(decision.headers())
                message: Message = {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": response.raw_headers,
                }
                if self._cors is not None:  # as the CORS middleware marks it
                    self._cors.mark(message, None if origin is None else origin.decode("latin-1"))
                message["headers"] = self._defaults.complete(message["headers"], added)
                status = response.status_code
                await send(message)  # then the body: as ``Response.__call__`` sends it
                await send({"type": "http.response.body", "body": response.body})
        finally:
            if ledger is not None and request_id is not None:
                ledger.finished("GET", scope, outer_root_path, status, start, perf_counter(), request_id)
            reset_principal(token)


class _Read(NamedTuple):
    scope: Scope
    """The request's scope as the router would leave it."""
    response: Response
    principal: Principal | None
    decision: Decision | None
    """None when rate limiting is off."""
