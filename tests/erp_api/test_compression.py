"""Gzip only for clients that accept it, as Starlette compresses; nothing on the way of the others."""

from __future__ import annotations

import gzip

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from erp_api.compression import GZipMiddleware, accepts_gzip

LARGE = b'{"items": "' + b"x" * 2000 + b'"}'
SMALL = b'{"ok": true}'


def responding(
    body: bytes, *headers: tuple[bytes, bytes], status: int = 200, announced: bool = True
) -> GZipMiddleware:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        length = [(b"content-length", b"%d" % len(body))] if announced else []
        raw = [(b"content-type", b"application/json"), *length, *headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    return GZipMiddleware(app, minimum_size=1024)


async def get(app: GZipMiddleware, accept_encoding: str | None) -> httpx.Response:
    headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # httpx adds its own Accept-Encoding unless told otherwise; None sends none at all.
        request = client.build_request("GET", "/", headers=headers)
        if accept_encoding is None:
            del request.headers["accept-encoding"]
        return await client.send(request)


async def test_a_large_body_is_gzipped_for_a_client_that_accepts_gzip() -> None:
    response = await get(responding(LARGE), "gzip, deflate")
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) < len(LARGE)
    assert response.content == LARGE  # httpx decoded it: valid gzip of the body


@pytest.mark.parametrize("accept_encoding", [None, "identity", "br, deflate"])
async def test_a_client_without_gzip_gets_the_response_exactly_as_the_app_sent_it(
    accept_encoding: str | None,
) -> None:
    response = await get(responding(LARGE), accept_encoding)
    assert response.content == LARGE
    assert list(response.headers.raw) == [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(LARGE)),
    ]


async def test_a_small_body_is_not_compressed() -> None:
    response = await get(responding(SMALL), "gzip")
    assert "content-encoding" not in response.headers
    assert response.content == SMALL


async def test_a_small_announced_body_reaches_a_gzip_client_exactly_as_the_app_sent_it() -> None:
    response = await get(responding(SMALL, (b"etag", b'"1"')), "gzip, deflate")
    assert response.content == SMALL
    assert list(response.headers.raw) == [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(SMALL)),
        (b"etag", b'"1"'),
    ]


@pytest.mark.parametrize(("body", "compressed"), [(SMALL, False), (LARGE, True)])
async def test_without_a_content_length_the_size_of_the_body_decides(body: bytes, compressed: bool) -> None:
    response = await get(responding(body, announced=False), "gzip")
    assert response.content == body
    assert (response.headers.get("content-encoding") == "gzip") is compressed


async def test_an_announced_length_at_the_minimum_is_compressed() -> None:
    body = b"x" * 1024  # minimum_size: compressed from this size on, as Starlette does
    response = await get(responding(body), "gzip")
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == body


async def test_an_already_encoded_body_is_left_alone() -> None:
    encoded = gzip.compress(LARGE)
    response = await get(responding(encoded, (b"content-encoding", b"gzip")), "gzip")
    assert response.content == LARGE  # decoded once by httpx: not compressed a second time


async def test_lifespan_and_other_scopes_pass_straight_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    await GZipMiddleware(app)({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]


def test_only_the_first_accept_encoding_header_counts_as_in_starlette() -> None:
    assert accepts_gzip({"headers": [(b"accept-encoding", b"gzip;q=1.0")]})
    assert not accepts_gzip({"headers": [(b"accept-encoding", b"br"), (b"accept-encoding", b"gzip")]})
    assert not accepts_gzip({"headers": [(b"x-accept-encoding", b"gzip")]})
