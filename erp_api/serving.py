"""The HTTP edge of a served process: uvicorn's options from the settings, and its httptools protocol
with the two timers uvicorn lacks.

uvicorn closes a keep-alive connection idle for ``timeout_keep_alive``, but waits for ever for the
headers of a request (a connection opened and left silent, or headers sent a byte at a time, is held
as long as the client likes) and for the app's answer. ``EdgeProtocol`` adds both; a check of every
connection of the process, a tenth of the shorter timeout apart (a second at most), enforces them,
so that a request costs no timer of its own (in uvloop a timer costs more than a small request):

* the headers must be complete within ``ERP_HEADER_TIMEOUT_SECONDS`` (of connecting, for the first
  request), else the connection is closed, after a 408 if part of a request had come;
* the request line and headers may take at most ``ERP_MAX_HEADER_BYTES``, else the client gets a
  431 and the connection is closed (uvicorn's httptools protocol buffers headers without a bound),
  lingering: the answer is followed by a FIN, and what the client still sends is read and dropped
  for up to ``LINGER_SECONDS``, so that its kernel does not throw the answer away on a reset;
* the app must start its answer within ``ERP_REQUEST_TIMEOUT_SECONDS`` of the headers' end, else the
  client gets a 504 ``deadline-exceeded`` problem and the connection is closed. A streamed answer is
  bounded only by its start. The app's task goes on to its end, unheard (its database work is bounded
  by the statement and command timeouts): cancelling it in the middle of a write would be worse.

Each is kept to within the check's interval. Between requests, uvicorn's ``timeout_keep_alive`` rules.

uvicorn writes a response's head as soon as the app sends ``http.response.start`` and its body in a
second write: two system calls where one will do, and on a small response those calls are most of
what the server spends. ``EdgeProtocol`` gives uvicorn a ``CoalescingTransport``: a write is held
until the next write, which goes out with it in one call, or until the current step of the event
loop ends, whichever comes first; nothing waits past the step that wrote it (a streamed answer's
head still leaves before the stream's first await).

A body is the app's to time (``security/body_limit.py``: 408 when slow, 400 when short). For the
400, a client that half-closes its side within a body shorter than its ``Content-Length`` gets its
body ended there instead of its connection closed unanswered (uvicorn's way, still taken for chunked
bodies, where the end cannot be told from the ASGI side).
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from erp_api.errors import (
    CLOSE_CONNECTION,
    ApiError,
    DeadlineExceeded,
    HeaderFieldsTooLarge,
    RequestTimeout,
    error_response,
)
from erp_api.settings import Settings, load_settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The options of ``uvicorn.run`` that come from the settings (``SERVER_OPTIONS`` holds the rest).

    ``X-Forwarded-For`` and ``-Proto`` are read only from ``ERP_TRUSTED_PROXIES``: uvicorn's default
    trusts them from 127.0.0.1, so any local client could choose the address it is counted under.
    """
    return {
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
    }


LINGER_SECONDS = 2.0
"""How long a refused request's remaining bytes are read and dropped before the connection closes."""


@cache
def _limits() -> tuple[float, float, int]:
    # Once per worker process, which has the environment ``serve`` validated.
    settings = load_settings()
    return settings.header_timeout_seconds, settings.request_timeout_seconds, settings.max_header_bytes


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a request deadline (module docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout, self.request_timeout, self.max_header_bytes = _limits()
        # Bytes received since the current request's headers began, while they are incomplete.
        self.reading_head = True
        self.head_bytes = 0
        self.lingering = False
        # What the watch saw last (the scope whose headers are awaited, or the cycle the app has), since when.
        self.watched: object = None
        self.watched_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))
        self.watched, self.watched_since = self, self.loop.time()
        _Watch.start(self.server_state, self.loop, min(self.header_timeout, self.request_timeout))

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # the rest of a refused request
        reading_head = self.reading_head
        super().data_received(data)
        # Counted after parsing, so a read that ends the headers and carries body bytes is not held
        # against them; what httptools buffered meanwhile is at most one read more than the limit.
        if reading_head and self.reading_head:
            self.head_bytes += len(data)
            if self.head_bytes > self.max_header_bytes and not self.transport.is_closing():
                self._refuse_head()

    def _refuse_head(self) -> None:
        self.reading_head, self.lingering = False, True
        limit = self.max_header_bytes
        self._answer(HeaderFieldsTooLarge(f"the request line and headers take more than {limit} bytes"))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def on_headers_complete(self) -> None:
        self.reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_head, self.head_bytes = True, 0

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio's signature
        cycle = self.cycle
        if (
            cycle is None
            or not cycle.more_body
            or cycle.response_complete
            or not any(name == b"content-length" for name, _ in cycle.scope["headers"])
        ):
            return None  # close, as uvicorn does
        # Half-closed within a body shorter than announced: end the body here, answer, then close.
        cycle.more_body = False
        cycle.keep_alive = False
        cycle.message_event.set()
        return True

    def check_timeouts(self, now: float) -> None:
        """Close the connection if its headers, or the app's answer, are late (called by the watch)."""
        if (
            self.transport is None
            or self.lingering
            or self.transport.is_closing()
            or self.transport.get_protocol() is not self
        ):
            return
        cycle, scope = self.cycle, self.scope
        watched: object
        if cycle is None or cycle.scope is not scope:  # headers awaited (before any byte: no scope)
            watched, limit = (self if scope is None else scope), self.header_timeout
        elif not (cycle.response_started or cycle.response_complete or cycle.disconnected):
            watched, limit = cycle, self.request_timeout
        else:  # answering, or idle between requests (uvicorn's keep-alive timeout)
            self.watched = None
            return
        if watched is not self.watched:
            # The first request's headers are timed from the connection, not from their first byte.
            if self.watched is not self or watched is not scope:
                self.watched_since = now
            self.watched = watched
        elif now - self.watched_since >= limit:
            self._time_out(cycle if watched is cycle else None)

    def _time_out(self, cycle: RequestResponseCycle | None) -> None:
        if cycle is not None:
            cycle.disconnected = True  # whatever the app sends later goes nowhere
            cycle.message_event.set()
            late = DeadlineExceeded(
                f"no answer within {self.request_timeout:g} s; the request may or may not have taken effect"
            )
            self._answer_and_close(late, instance=cycle.scope["path"])
        elif self.scope is None:  # connected and never sent a byte: nothing to answer
            self.transport.close()
        else:
            self._answer_and_close(
                RequestTimeout(f"the headers did not arrive within {self.header_timeout:g} s")
            )

    def _answer_and_close(self, error: ApiError, instance: str | None = None) -> None:
        self._answer(error, instance)
        self.transport.close()

    def _answer(self, error: ApiError, instance: str | None = None) -> None:
        """Write ``error`` as a whole response that closes the connection (the caller closes it)."""
        error.headers.update(CLOSE_CONNECTION)
        response = error_response(error, instance)
        head = [STATUS_LINE[response.status_code]]
        for name, value in [*self.server_state.default_headers, *response.raw_headers]:
            head.extend((name, b": ", value, b"\r\n"))
        self.transport.write(b"".join([*head, b"\r\n", response.body]))


class CoalescingTransport(asyncio.Transport):
    """A transport whose writes go out in pairs: a write is held until the next one, which sends both
    in one call, or until the end of the current event-loop step (module docstring)."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._held = None
            self._transport.writelines((held, data))  # one call (uvloop: one writev)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


class _Watch:
    """One periodic check of every connection of a server, running while it has connections: no
    timer per request (a uvloop timer costs more than the rest of what the protocol adds)."""

    _running: ClassVar[set[int]] = set()

    def __init__(self, server_state: ServerState, loop: asyncio.AbstractEventLoop, shortest: float) -> None:
        self._server_state = server_state
        self._loop = loop
        # A timeout is kept to within a tenth of the shortest one, and a second at most.
        self._interval = min(max(shortest / 10, 0.05), 1.0)

    @classmethod
    def start(cls, server_state: ServerState, loop: asyncio.AbstractEventLoop, shortest: float) -> None:
        if id(server_state) not in cls._running:
            cls._running.add(id(server_state))
            watch = cls(server_state, loop, shortest)
            loop.call_later(watch._interval, watch._check)

    def _check(self) -> None:
        connections = self._server_state.connections
        if not connections:
            self._running.discard(id(self._server_state))
            return
        now = self._loop.time()
        for connection in list(connections):
            if isinstance(connection, EdgeProtocol):
                connection.check_timeouts(now)
        self._loop.call_later(self._interval, self._check)
