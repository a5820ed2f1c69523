"""Request body limits enforced below every route: by ``Content-Length`` before routing, and by
counting the chunks of a body sent without one.

Each route declares its limit class (``Access.body``): ``DEFAULT`` takes up to ``ERP_MAX_BODY_BYTES``,
``BATCH`` up to ``ERP_MAX_BATCH_BODY_BYTES``. Routes read their bodies with ``http.read_json``, which
enforces the same limits; this layer makes sure no route, present or future, can be flooded whatever
it does with its body.

The same ``receive`` times the body and checks its end: all of it must arrive within
``ERP_BODY_TIMEOUT_SECONDS`` of the first read (else 408), and one that ends short of its
``Content-Length`` (the client closed its side, ``serving.py``) is a 400. Both close the connection:
what the client sends after cannot be told from a new request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from enum import Enum
from typing import Final

from starlette.types import Message, Receive, Scope

from erp_api.errors import CLOSE_CONNECTION, BodyTooLarge, IncompleteBody, RequestTimeout

INVALID: Final = -1


class BodyLimit(Enum):
    """The body size class a route declares."""

    DEFAULT = "default"
    BATCH = "batch"


class BodyLimits:
    """The size in bytes of each body limit class."""

    def __init__(self, default_bytes: int, batch_bytes: int) -> None:
        self._bytes = {BodyLimit.DEFAULT: default_bytes, BodyLimit.BATCH: batch_bytes}

    def in_bytes(self, limit: BodyLimit) -> int:
        return self._bytes[limit]


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length`` (None if absent, ``INVALID`` if it is not one non-negative integer)."""
    return content_length(scope["headers"])


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` among raw ASGI headers (None if absent, ``INVALID`` if it is not one
    non-negative integer): of a request's scope, or of a response's start."""
    found: int | None = None
    for name, value in headers:
        if name == b"content-length":
            if found is not None or not value.isdigit():
                return INVALID
            found = int(value)
    return found


def counting_receive(
    receive: Receive, limit: int, declared: int | None = None, timeout: float = 0.0
) -> Receive:
    """``receive``, raising ``BodyTooLarge`` as soon as the body's chunks add up to more than ``limit``,
    and, with a ``timeout``, ``RequestTimeout`` when the body is not complete within it of the first
    call, ``IncompleteBody`` when it ends short of the ``declared`` length. Once the body is complete,
    the calls go straight to ``receive`` (a streamed response waits on it for the disconnect)."""
    received = 0
    deadline: float | None = None
    complete = False

    async def wrapped() -> Message:
        nonlocal received, deadline, complete
        if complete or not timeout:
            message = await receive()
        else:
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                detail = f"the body did not arrive within {timeout:g} s ({received} bytes came)"
                raise RequestTimeout(detail, headers=CLOSE_CONNECTION) from None
        if message["type"] == "http.request" and not complete:
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(f"the body exceeds {limit} bytes")
            if not message.get("more_body", False):
                complete = True
                if declared is not None and received < declared:
                    detail = f"the body ended after {received} of the {declared} bytes of its Content-Length"
                    raise IncompleteBody(detail, headers=CLOSE_CONNECTION)
        return message

    return wrapped
