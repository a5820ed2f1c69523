"""Domain errors, and their one mapping to RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
import structlog
from sqlalchemy import exc as sa_exc
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


class IncompleteBody(MalformedRequest):
    """Raised from ``receive`` when a body ends short of its ``Content-Length`` (the client closed its
    side); handled as a 400 that closes the connection."""

    slug = "incomplete-body"
    title = "Incomplete request body"


class RequestTimeout(ApiError):
    """Raised from ``receive`` when a body has not fully arrived within ``ERP_BODY_TIMEOUT_SECONDS``."""

    status = 408
    slug = "request-timeout"
    title = "Request timeout"


class HeaderFieldsTooLarge(ApiError):
    """A request line and headers longer than ``ERP_MAX_HEADER_BYTES`` (``serving.py``)."""

    status = 431
    slug = "request-header-fields-too-large"
    title = "Request header fields too large"


class DeadlineExceeded(ApiError):
    """The service did not start its answer within ``ERP_REQUEST_TIMEOUT_SECONDS`` (``serving.py``):
    the outcome of the request is unknown, so only an idempotent one may be retried as it is."""

    status = 504
    slug = "deadline-exceeded"
    title = "Request deadline exceeded"


CLOSE_CONNECTION: Final = {"Connection": "close"}
"""For errors after which the rest of the connection's bytes cannot be trusted to start a request."""

DATABASE_RETRY_AFTER_SECONDS: Final = 5
"""What a 503 for an unreachable database asks clients to wait: about a pool's connect timeout."""

# PostgreSQL SQLSTATE classes of a database that is down, overloaded or cancelling: connection
# exception (08), insufficient resources (53: too many connections), operator intervention (57:
# statement timeout, shutdown, cannot connect now).
_UNAVAILABLE_SQLSTATE_CLASSES: Final = frozenset({"08", "53", "57"})
# SQLite primary result codes of the same: BUSY and LOCKED (past the busy timeout), IOERR, CANTOPEN.
# Not ERROR: a missing table is a fault of the service, a 500.
_UNAVAILABLE_SQLITE_CODES: Final = frozenset({5, 6, 10, 14})
_UNAVAILABLE_ERRORS: Final = (
    sa_exc.InterfaceError,  # asyncpg: the connection was closed under the query
    sa_exc.TimeoutError,  # no pooled connection within ERP_DB_POOL_TIMEOUT_SECONDS
    sa_exc.DisconnectionError,
    ConnectionError,  # refused or reset while connecting (raised as it is by asyncpg)
    TimeoutError,  # no connection within ERP_DB_CONNECT_TIMEOUT_SECONDS, or asyncpg's command timeout
    socket.gaierror,  # the database's host name does not resolve
)


def database_unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 for ``exc`` if it says the database cannot be reached or cannot serve now, else None."""
    unavailable = isinstance(exc, _UNAVAILABLE_ERRORS)
    if not unavailable and isinstance(exc, sa_exc.DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
        unavailable = (
            exc.connection_invalidated
            or (isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES)
            or (isinstance(sqlite_code, int) and sqlite_code & 0xFF in _UNAVAILABLE_SQLITE_CODES)
        )
    if not unavailable:
        return None
    return ServiceUnavailable(
        "the database is unavailable; retry later",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


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
    unavailable = database_unavailable(exc)
    if unavailable is not None:
        # Raised where no handler of the router reaches (a middleware's own query): the same 503.
        log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
        return error_response(unavailable, request.url.path)
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
    # Answered inside the middleware, not re-raised to the server as Exception is (which would log a
    # trace per request and close the connection): a 503 for an unreachable database, else a 500.
    sa_exc.SQLAlchemyError: unhandled_error_handler,
    ConnectionError: unhandled_error_handler,
    TimeoutError: unhandled_error_handler,
    Exception: unhandled_error_handler,
}
