"""Gzip for the clients that ask for it; nothing at all on the way of the others.

Starlette's ``GZipMiddleware`` puts a responder around every request: for a client that does not
accept gzip it still parses the request's headers and inspects every response it sends, only to
pass it on unchanged. Here a request whose ``Accept-Encoding`` does not name gzip goes straight to
the app, and one that does is answered through Starlette's own ``GZipResponder``, so what is
compressed and how is Starlette's: bodies from ``minimum_size`` bytes, never an already encoded,
partial (206) or ``text/event-stream`` response, ``Vary: Accept-Encoding`` and ``Content-Length``
set on what it compresses.

What a client without gzip gets carries no ``Vary`` (Starlette's adds one to large responses): a
cache may hand that identity response to any client, since every client reads it.
"""

from __future__ import annotations

from typing import Final

from starlette.middleware.gzip import GZipResponder
from starlette.types import ASGIApp, Receive, Scope, Send

ACCEPT_ENCODING: Final = b"accept-encoding"


class GZipMiddleware:
    """Compresses responses of ``minimum_size`` bytes or more for clients that accept gzip."""

    def __init__(self, app: ASGIApp, minimum_size: int = 500, compresslevel: int = 9) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and accepts_gzip(scope):
            responder = GZipResponder(self.app, self.minimum_size, compresslevel=self.compresslevel)
            await responder(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def accepts_gzip(scope: Scope) -> bool:
    """Whether the first ``Accept-Encoding`` header names gzip (Starlette's own test)."""
    for name, value in scope["headers"]:
        if name == ACCEPT_ENCODING:
            return b"gzip" in value
    return False
