"""Request body limits enforced below every route: by ``Content-Length`` before routing, and by
counting the chunks of a body sent without one.

Each route declares its limit class (``Access.body``): ``DEFAULT`` takes up to ``ERP_MAX_BODY_BYTES``,
``BATCH`` up to ``ERP_MAX_BATCH_BODY_BYTES``. Routes read their bodies with ``http.read_json``, which
enforces the same limits; this layer makes sure no route, present or future, can be flooded whatever
it does with its body.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from starlette.types import Message, Receive, Scope

from erp_api.errors import BodyTooLarge

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
    """The ``Content-Length`` (None if absent, ``INVALID`` if it is not one non-negative integer)."""
    found: int | None = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            if found is not None or not value.isdigit():
                return INVALID
            found = int(value)
    return found


def counting_receive(receive: Receive, limit: int) -> Receive:
    """``receive``, raising ``BodyTooLarge`` as soon as the body's chunks add up to more than ``limit``."""
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(f"the body exceeds {limit} bytes")
        return message

    return wrapped
