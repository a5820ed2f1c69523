"""An in-process Server-Sent Events client: drives the ASGI app directly, frame by frame.

``httpx.ASGITransport`` collects a whole response before returning it, so it cannot read a stream
that never ends; this client calls the app itself and hands over each body message as it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.types import ASGIApp, Message

WAIT_SECONDS = 15.0


@dataclass(frozen=True)
class Frame:
    id: str | None
    event: str | None
    data: Any
    comment: str | None
    retry: int | None


class SseStream:
    def __init__(
        self,
        app: ASGIApp,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
    ) -> None:
        self._app = app
        self._path = path
        self._query = urlencode(params or {}, doseq=True).encode()
        self._headers = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._disconnect = asyncio.Event()
        self._buffer = b""
        self._task: asyncio.Task[None] | None = None
        self.status = 0
        self.headers: dict[str, str] = {}
        self.ended = False
        self._flowing = asyncio.Event()
        self._flowing.set()

    def pause(self) -> None:
        """Stop taking body messages, as a client that stopped reading its socket."""
        self._flowing.clear()

    def unpause(self) -> None:
        self._flowing.set()

    async def __aenter__(self) -> SseStream:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
            "path": self._path,
            "raw_path": self._path.encode(),
            "query_string": self._query,
            "headers": [(b"host", b"testserver"), *self._headers],
        }

        async def run() -> None:
            await self._app(scope, self._receive, self._send)

        self._task = asyncio.create_task(run())
        self._task.add_done_callback(lambda _: self._chunks.put_nowait(None))
        start = await asyncio.wait_for(self._started, WAIT_SECONDS)
        self.status = start["status"]
        self.headers = {name.decode().lower(): value.decode() for name, value in start.get("headers", ())}
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._disconnect.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, WAIT_SECONDS)

    async def _receive(self) -> Message:
        if not hasattr(self, "_requested"):
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._disconnect.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._started.set_result(message)
        elif message["type"] == "http.response.body":
            await self._flowing.wait()
            if message.get("body"):
                self._chunks.put_nowait(message["body"])
            if not message.get("more_body", False):
                self._chunks.put_nowait(None)

    async def body(self) -> bytes:
        """The whole body of a response that ends (an error)."""
        parts = []
        while (chunk := await asyncio.wait_for(self._chunks.get(), WAIT_SECONDS)) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def frame(self, within: float = WAIT_SECONDS) -> Frame | None:
        """The next frame (event, comment or retry hint); None once the stream has ended."""
        while b"\n\n" not in self._buffer:
            if self.ended:
                return None
            chunk = await asyncio.wait_for(self._chunks.get(), within)
            if chunk is None:
                self.ended = True
                continue
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\n\n", 1)
        fields: dict[str, str] = {}
        comment = None
        for line in raw.decode().split("\n"):
            if line.startswith(":"):
                comment = line[1:].strip()
                continue
            name, _, value = line.partition(": ")
            fields[name] = fields[name] + "\n" + value if name in fields else value
        data = orjson.loads(fields["data"]) if "data" in fields else None
        retry = int(fields["retry"]) if "retry" in fields else None
        return Frame(fields.get("id"), fields.get("event"), data, comment, retry)

    async def event(self, within: float = WAIT_SECONDS) -> Frame:
        """The next event, skipping heartbeats and the retry hint."""
        while True:
            frame = await self.frame(within)
            assert frame is not None, "the stream ended"
            if frame.event is not None:
                return frame

    async def events(self, n: int, within: float = WAIT_SECONDS) -> list[Frame]:
        return [await self.event(within) for _ in range(n)]


async def caught_up(hub: Any, newest: int) -> None:
    """Wait until the process's event reader has handed out every event up to ``newest``."""
    for _ in range(int(WAIT_SECONDS / 0.05)):
        if hub.cursor >= newest:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the event reader stayed at {hub.cursor}, below {newest}")
