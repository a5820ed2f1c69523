"""One pure ASGI middleware for the per-request work: request id, HTTP metrics, access log line.

Per request it reads the clock twice, sets the request id and notes the outcome in a
``RequestLedger``, which turns the notes into metrics and access log lines in batches: together
they must cost a small fraction of the fastest (cached) request. It does not wrap ``send``: the
``X-Request-ID`` header goes out with the others, and the status is read back, through
``response_headers`` (it runs inside ``ResponseHeadersMiddleware``).
"""

from __future__ import annotations

from collections.abc import Collection
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erp_api.observability import request_ledger
from erp_api.observability.request_id import REQUEST_ID, SCOPE_KEY, accept_request_id
from erp_api.observability.request_ledger import KNOWN_METHODS, RequestLedger
from erp_api.response_headers import response_headers

REQUEST_ID_RAW = b"x-request-id"


class ObservabilityMiddleware:
    """Tags every HTTP request with an id, and measures and logs all but ``excluded_paths`` in
    ``ledger``.

    The id (the client's ``X-Request-ID`` if well formed, else a new one) is bound for log lines,
    left in the scope under ``request_id.SCOPE_KEY`` and returned as ``X-Request-ID``.
    ``excluded_paths`` (scrapes and probes) get an id but are neither counted nor logged.
    """

    def __init__(self, app: ASGIApp, ledger: RequestLedger, excluded_paths: Collection[str] = ()) -> None:
        self.app = app
        self._excluded = frozenset(excluded_paths)
        # One per process, shared with ``cached_reads`` (its in-flight gauge counts both).
        self._ledger = ledger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._flushing_receive(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent_id: bytes | None = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_RAW:
                sent_id = value
                break
        request_id = accept_request_id(sent_id)
        scope[SCOPE_KEY] = request_id
        response = response_headers(scope)
        response.added.append((REQUEST_ID_RAW, request_id.encode("ascii")))

        # The context variable itself, not bind_request_id(): this runs for every request.
        token = REQUEST_ID.set(request_id)
        try:
            root_path: str = scope.get("root_path", "")
            path: str = scope["path"]
            if (path[len(root_path) :] if root_path else path) in self._excluded:
                scope[request_ledger.SCOPE_KEY] = self._ledger  # /metrics flushes it before rendering
                await self.app(scope, receive, send)
                return
            method: str = scope["method"]
            ledger = self._ledger
            ledger.started(method if method in KNOWN_METHODS else "other")
            start = perf_counter()
            try:
                await self.app(scope, receive, send)
            finally:
                # No status: the app raised before responding, and the client gets a 500.
                status = 500 if response.status is None else response.status
                ledger.finished(method, scope, root_path, status, start, perf_counter(), request_id)
        finally:
            REQUEST_ID.reset(token)

    def _flushing_receive(self, receive: Receive) -> Receive:
        async def receive_lifespan() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                # Before the app's own shutdown, which may drop this worker's live gauges.
                self._ledger.flush()
            return message

        return receive_lifespan
