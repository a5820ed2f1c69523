"""Request body limits enforced below every route: by ``Content-Length`` before routing, and by
counting the chunks of a body sent without one.

Routes read their bodies with ``http.read_json``, which enforces the same limits; this layer makes
sure no route, present or future, can be flooded whatever it does with its body.
"""

from __future__ import annotations

from typing import Final

from starlette.types import Message, Receive, Scope

from erp_api.security.problems import BodyTooLarge
from erp_api.security.roles import API, RouteKey

BATCH_ROUTES: Final[frozenset[RouteKey]] = frozenset(
    {
        ("POST", f"{API}/charges/batch"),
        ("POST", f"{API}/charges/lookup"),
        ("POST", f"{API}/charges/{{id}}/measurements"),
    }
)
"""Routes that take up to ``ERP_MAX_BATCH_BODY_BYTES``; every other route ``ERP_MAX_BODY_BYTES``."""

INVALID: Final = -1


class BodyLimits:
    def __init__(self, default_bytes: int, batch_bytes: int) -> None:
        self.default_bytes = default_bytes
        self.batch_bytes = batch_bytes

    def for_route(self, method: str, template: str | None) -> int:
        if template is not None and (method, template) in BATCH_ROUTES:
            return self.batch_bytes
        return self.default_bytes


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
