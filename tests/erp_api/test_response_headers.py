"""The headers middleware add to responses go out in one place: defaults unless the response sets
them, then what inner middleware noted; the status is read back from the same place."""

from __future__ import annotations

import pytest
from starlette.types import Message, Receive, Scope, Send

from erp_api.response_headers import ResponseHeaders, ResponseHeadersMiddleware, response_headers

DEFAULTS = [("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer")]


async def run(app: ResponseHeadersMiddleware) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send)
    return sent


async def test_defaults_and_noted_headers_are_added_to_the_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response_headers(scope).added.append((b"x-request-id", b"abc12345"))
        await send({"type": "http.response.start", "status": 201, "headers": [(b"etag", b'"1"')]})
        await send({"type": "http.response.body", "body": b"{}"})

    start, body = await run(ResponseHeadersMiddleware(app, DEFAULTS))
    assert start["headers"] == [
        (b"etag", b'"1"'),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-request-id", b"abc12345"),
    ]
    assert body == {"type": "http.response.body", "body": b"{}"}


async def test_a_default_the_response_sets_itself_is_not_added_again() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"x-frame-options", b"SAMEORIGIN")]}
        )
        await send({"type": "http.response.body", "body": b""})

    start, _ = await run(ResponseHeadersMiddleware(app, DEFAULTS))
    assert start["headers"] == [(b"x-frame-options", b"SAMEORIGIN"), (b"referrer-policy", b"no-referrer")]


@pytest.mark.parametrize("responds", [True, False])
async def test_the_status_is_known_once_the_response_started(responds: bool) -> None:
    noted: list[ResponseHeaders] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        noted.append(response_headers(scope))
        assert noted[0].status is None
        if responds:
            await send({"type": "http.response.start", "status": 418, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    await run(ResponseHeadersMiddleware(app, DEFAULTS))
    assert noted[0].status == (418 if responds else None)


async def test_other_scopes_pass_straight_through() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    await ResponseHeadersMiddleware(app, DEFAULTS)({"type": "lifespan"}, receive, send)
    assert scopes == [{"type": "lifespan"}]
