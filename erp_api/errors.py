"""Domain errors, and their one mapping to RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

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


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_response(
        exc.status,
        exc.title,
        exc.detail,
        slug=exc.slug,
        instance=request.url.path,
        extra=exc.extra,
        headers=exc.headers,
    )


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
