"""Gzip for the clients that ask for it; nothing at all on the way of the others.

Starlette's ``GZipMiddleware`` puts a responder around every request: for a client that does not
accept gzip it still parses the request's headers and inspects every response it sends, only to
pass it on unchanged. Here a request whose ``Accept-Encoding`` does not name gzip goes straight to
the app, and one that does is answered through Starlette's own ``GZipResponder``, so what is
compressed and how is Starlette's: bodies from ``minimum_size`` bytes, never an already encoded,
partial (206) or ``text/event-stream`` response, ``Vary: Accept-Encoding`` and ``Content-Length``
set on what it compresses.

Every browser and HTTP library accepts gzip, and most answers (a charge, a page of a list) are
below ``minimum_size``: a response that announces a ``Content-Length`` below it passes untouched
from its start, as the responder would have passed it, without the responder's work on each
message (a sixth of a cached read's cost). The responder takes over only the others.

What a client without gzip gets carries no ``Vary`` (Starlette's adds one to large responses): a
cache may hand that identity response to any client, since every client reads it.
"""

from __future__ import annotations

from typing import Final

from starlette.middleware.gzip import GZipResponder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erp_api.security.body_limit import content_length

ACCEPT_ENCODING: Final = b"accept-encoding"


class GZipMiddleware:
    """Compresses responses of ``minimum_size`` bytes or more for clients that accept gzip."""

    def __init__(self, app: ASGIApp, minimum_size: int = 500, compresslevel: int = 9) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and accepts_gzip(scope):
            await self.app(scope, receive, self._compressing(send))
        else:
            await self.app(scope, receive, send)

    def _compressing(self, send: Send) -> Send:
        """``send`` for a client that accepts gzip: small announced answers straight through, the
        rest through a ``GZipResponder`` fed the messages as the app sends them."""
        responder: GZipResponder | None = None
        passing = False

        async def send_compressed(message: Message) -> None:
            nonlocal responder, passing
            if passing:
                await send(message)
            elif responder is not None:
                await responder.send_with_compression(message)
            elif message["type"] == "http.response.start" and _announced_below(message, self.minimum_size):
                passing = True
                await send(message)
            else:
                # The responder as its own __call__ sets it up, minus the app it would call.
                responder = GZipResponder(self.app, self.minimum_size, compresslevel=self.compresslevel)
                responder.send = send
                await responder.send_with_compression(message)

        return send_compressed


def accepts_gzip(scope: Scope) -> bool:
    """Whether the first ``Accept-Encoding`` header names gzip (Starlette's own test)."""
    for name, value in scope["headers"]:
        if name == ACCEPT_ENCODING:
            return b"gzip" in value
    return False


def _announced_below(start: Message, minimum_size: int) -> bool:
    """Whether a response start carries one ``Content-Length`` smaller than ``minimum_size``."""
    length = content_length(start.get("headers", ()))
    return length is not None and 0 <= length < minimum_size
