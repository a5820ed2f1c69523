"""The headers middleware add to every response, added in one place as the response starts.

Every response carries the security headers (``security.headers``), its request id (from the
observability middleware) and, for a rate-limited caller, the ``RateLimit-*`` headers (from the
security middleware). Rather than each of them wrapping ``send`` (three more calls on the way of
every message), the outermost middleware, ``ResponseHeadersMiddleware``, wraps it once: the others
note their headers in the request's ``ResponseHeaders`` (``response_headers(scope)``), where they
also find the status the response started with. ``DefaultHeaders`` completes a response's headers
for it, and for ``cached_reads``, which answers in front of the middleware.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCOPE_KEY: Final = "erp.response_headers"


class ResponseHeaders:
    """What the middleware know of one HTTP response: headers to add, and its status once started."""

    __slots__ = ("added", "status")

    def __init__(self) -> None:
        self.added: list[tuple[bytes, bytes]] = []
        """Sent with the response, after its own headers (raw: lower-case name, latin-1 value)."""
        self.status: int | None = None
        """The status of ``http.response.start`` once it has been sent; None before."""


def response_headers(scope: Scope) -> ResponseHeaders:
    """The ``ResponseHeaders`` of a request inside ``ResponseHeadersMiddleware``."""
    headers: ResponseHeaders = scope[SCOPE_KEY]
    return headers


class DefaultHeaders:
    """Headers every response carries unless it sets them itself (raw, as in ASGI messages)."""

    __slots__ = ("names", "raw")

    def __init__(self, defaults: Sequence[tuple[str, str]]) -> None:
        self.raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in defaults]
        self.names = frozenset(name for name, _ in self.raw)

    def complete(
        self, own: Sequence[tuple[bytes, bytes]], added: Sequence[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """A response's ``own`` headers, then the defaults it does not set itself, then ``added``."""
        present = {name for name, _ in own}
        if present.isdisjoint(self.names):
            return [*own, *self.raw, *added]
        return [*own, *[header for header in self.raw if header[0] not in present], *added]

    def sending(self, send: Send, noted: ResponseHeaders) -> Send:
        """``send`` completing the response's start (``complete``, with ``noted.added``), and noting
        its status in ``noted``."""
        complete = self.complete

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                noted.status = message["status"]
                message["headers"] = complete(message.get("headers", ()), noted.added)
            await send(message)

        return send_with_headers


class ResponseHeadersMiddleware:
    """Adds ``defaults`` that a response does not set itself, then what inner middleware noted.

    It must be the outermost middleware of the app, so that everything inside can note headers.
    """

    def __init__(self, app: ASGIApp, defaults: Sequence[tuple[str, str]]) -> None:
        self.app = app
        self._defaults = DefaultHeaders(defaults)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        noted = scope[SCOPE_KEY] = ResponseHeaders()
        await self.app(scope, receive, self._defaults.sending(send, noted))
