"""CORS for browser frontends on the allow-listed origins (``ERP_CORS_ALLOW_ORIGINS``), plain ASGI.

What a single-page app on an allowed origin may do: every method the API serves, with the headers
it acts on (``CORS_REQUEST_HEADERS``: keys, conditional requests, idempotency, resuming an event
stream, request ids), and read the response headers it needs (``CORS_EXPOSED_HEADERS``: entity tags,
locations, the rate limit state and ``Retry-After`` to honour a 429, links to the next page,
replayed idempotent answers, an export's file name).

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered here, before the
security middleware: a browser sends it without the key. An allowed one gets 200 and the allowed
methods and headers, cached by the browser for ``MAX_AGE`` seconds; a refused one (origin not
allowed, or a method or header that is not) gets a 403 problem+json saying what was refused, where
a browser only says "CORS error". Other requests pass through; from an allowed origin their
responses carry ``Access-Control-Allow-Origin`` and ``Access-Control-Expose-Headers``. Every
response varies by ``Origin``. No credentials mode: the API is called with a bearer key, no cookie.
Without an allow list there is no middleware at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erp_api.errors import Forbidden, send_error
from erp_api.settings import Settings

CORS_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_REQUEST_HEADERS: Final = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "Last-Event-ID",
    "X-Request-ID",
)
# Headers a browser may always send (CORS-safelisted); some list them in a preflight all the same.
SAFELISTED_REQUEST_HEADERS: Final = ("Accept", "Accept-Language", "Content-Language")
CORS_EXPOSED_HEADERS: Final = (
    "ETag",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-Request-ID",
    "Link",
    "Idempotent-Replayed",
    "Content-Disposition",
)
MAX_AGE: Final = 600


def _listed(names: Iterable[str]) -> bytes:
    return ", ".join(names).encode("latin-1")


class CorsPolicy:
    """The allow list, and what it adds to the response to a request that is not a preflight."""

    def __init__(self, allow_origins: Iterable[str]) -> None:
        # Browsers send origins in lower case (scheme and host are case-insensitive).
        self.origins = frozenset(origin.lower() for origin in allow_origins)

    def mark(self, start: Message, origin: str | None) -> None:
        """Let an allowed ``origin`` read the response ``start`` begins; vary by ``Origin`` in any case."""
        headers = MutableHeaders(scope=start)
        if origin is not None and origin.lower() in self.origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = _listed(CORS_EXPOSED_HEADERS).decode()
        headers.add_vary_header("Origin")


class CorsMiddleware:
    """CORS for ``allow_origins`` (see the module's docstring)."""

    def __init__(self, app: ASGIApp, *, allow_origins: Iterable[str]) -> None:
        self.app = app
        self._policy = CorsPolicy(allow_origins)
        self._headers = frozenset(
            name.lower() for name in (*CORS_REQUEST_HEADERS, *SAFELISTED_REQUEST_HEADERS)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        origin = request_headers.get("origin")
        if (
            origin is not None
            and scope["method"] == "OPTIONS"
            and "access-control-request-method" in request_headers
        ):
            await self._preflight(origin, request_headers, scope, receive, send)
            return
        policy = self._policy

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                policy.mark(message, origin)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self, origin: str, request: Headers, scope: Scope, receive: Receive, send: Send
    ) -> None:
        vary = (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        method = request["access-control-request-method"].strip()
        asked = [name.strip() for name in request.get("access-control-request-headers", "").split(",")]
        refused_headers = [name for name in asked if name and name.lower() not in self._headers]
        if origin.lower() not in self._policy.origins:
            detail = (
                f"the origin {origin} may not call this API from a browser (not in ERP_CORS_ALLOW_ORIGINS)"
            )
        elif method not in CORS_METHODS:
            detail = f"the method {method} is not allowed cross-origin; allowed: {', '.join(CORS_METHODS)}"
        elif refused_headers:
            detail = (
                f"the request headers {', '.join(refused_headers)} are not allowed cross-origin; "
                f"allowed: {', '.join(CORS_REQUEST_HEADERS)}"
            )
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"access-control-allow-origin", origin.encode("latin-1")),
                        (b"access-control-allow-methods", _listed(CORS_METHODS)),
                        (
                            b"access-control-allow-headers",
                            _listed((*CORS_REQUEST_HEADERS, *SAFELISTED_REQUEST_HEADERS)),
                        ),
                        (b"access-control-max-age", str(MAX_AGE).encode()),
                        (b"content-length", b"0"),
                        vary,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await send_error(Forbidden(f"CORS preflight refused: {detail}"), scope, receive, send, headers=[vary])


def cors_policy(settings: Settings) -> CorsPolicy | None:
    """The policy of ``ERP_CORS_ALLOW_ORIGINS``; None without an allow list (no CORS at all)."""
    return CorsPolicy(settings.cors_allow_origins) if settings.cors_allow_origins else None


def cors_middleware(settings: Settings) -> list[Middleware]:
    """CORS for the allow-listed origins only; no middleware at all when the list is empty."""
    if not settings.cors_allow_origins:
        return []
    return [Middleware(CorsMiddleware, allow_origins=settings.cors_allow_origins)]
