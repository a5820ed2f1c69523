"""The errors the security layer answers with, and how the middleware sends them.

They are ``ApiError`` values like every other error, rendered by ``errors.problem_response``; the
middleware runs outside Starlette's exception handling, so it sends them itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Receive, Scope, Send

from erp_api.errors import ApiError, PayloadTooLarge, problem_response


class Unauthorized(ApiError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class TooManyRequests(ApiError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"


class BodyTooLarge(PayloadTooLarge):
    """Raised from ``receive`` once a streamed body passes the route's limit; handled as a 413."""


async def send_problem(
    error: ApiError,
    scope: Scope,
    receive: Receive,
    send: Send,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer the request with ``error`` as problem+json, plus ``headers``."""
    response = problem_response(
        error.status,
        error.title,
        error.detail,
        slug=error.slug,
        instance=scope.get("path"),
        extra=error.extra,
        headers=error.headers,
    )
    response.raw_headers.extend(headers)
    await response(scope, receive, send)
