"""Domain errors, and their one mapping to RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://erp-api.dev/problems/"

log = structlog.get_logger("erp_api.errors")


class ApiError(Exception):
    """An error with an HTTP status that a client can act on; subclasses name the cases."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


class ValidationFailed(ApiError):
    status = 422
    slug = "validation-failed"
    title = "Request validation failed"

    def __init__(self, detail: str, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(detail, extra={"errors": list(errors)})


class MalformedRequest(ApiError):
    status = 400
    slug = "malformed-request"
    title = "Malformed request"


class UnsupportedMediaType(ApiError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class PayloadTooLarge(ApiError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class NotFound(ApiError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(ApiError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PreconditionFailed(ApiError):
    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class ServiceUnavailable(ApiError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"


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


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return Response(
        orjson.dumps(body), status_code=status, headers=dict(headers or {}), media_type=PROBLEM_CONTENT_TYPE
    )


def error_response(error: ApiError, instance: str | None) -> Response:
    """``error`` as a problem+json response about ``instance`` (the request path)."""
    return problem_response(
        error.status,
        error.title,
        error.detail,
        slug=error.slug,
        instance=instance,
        extra=error.extra,
        headers=error.headers,
    )


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc, request.url.path)


async def send_error(
    error: ApiError,
    scope: Scope,
    receive: Receive,
    send: Send,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with ``error`` (plus ``headers``) from a middleware, outside Starlette's exception handling."""
    response = error_response(error, scope.get("path"))
    response.raw_headers.extend(headers)
    await response(scope, receive, send)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 304:
        return Response(status_code=304, headers=exc.headers)
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404:
        detail = f"No route matches {request.url.path}"
    return problem_response(exc.status_code, title, detail, instance=request.url.path, headers=exc.headers)


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    # The trace goes to the log only; the client learns nothing of the internals.
    log.error("unhandled_error", path=request.url.path, exc_info=exc)
    return problem_response(
        500,
        "Internal server error",
        "The server could not complete the request; it has been logged.",
        instance=request.url.path,
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    Exception: unhandled_error_handler,
}
