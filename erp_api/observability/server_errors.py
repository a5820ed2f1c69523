"""Give 500 responses the same request id and security headers as every other response.

Starlette answers unhandled exceptions in its outermost layer (``ServerErrorMiddleware``), outside
every middleware of the app, so those responses would miss the headers the middleware adds. The
handler registered for ``Exception`` is therefore wrapped to add them itself, and to log with the
request's id bound.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response

from erp_api.observability.request_id import REQUEST_ID_HEADER, SCOPE_KEY, bind_request_id, reset_request_id

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


def with_response_headers(handler: ErrorHandler, headers: Sequence[tuple[str, str]]) -> ErrorHandler:
    """``handler``, adding ``headers`` and ``X-Request-ID`` to the response it builds."""

    async def handle(request: Request, exc: Exception) -> Response:
        request_id: str | None = request.scope.get(SCOPE_KEY)
        token = bind_request_id(request_id)
        try:
            response = await handler(request, exc)
        finally:
            reset_request_id(token)
        for name, value in headers:
            if name not in response.headers:
                response.headers[name] = value
        if request_id is not None:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    return handle
