"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread of the test process.

It verifies every request it gets with the ``standardwebhooks`` package (the reference library a
customer would use), keeps what it got, and answers with the replies the test scripted, then 200.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: Any
    """The parsed payload if the signature verified, else the verification error."""
    received_at: float

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def timestamp(self) -> int:
        return int(self.headers["webhook-timestamp"])


class Receiver:
    def __init__(self) -> None:
        self.secret: str | None = None
        self.requests: list[Received] = []
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a deliberately slow reply must not hold up the test

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/erp"

    def reply_with(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies`` in order, then with 200."""
        with self._lock:
            self._replies.extend(replies)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.pop(0) if self._replies else Reply()

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def _verify(self, body: bytes, headers: dict[str, str]) -> Any:
        if self.secret is None:
            return WebhookVerificationError("the test gave the receiver no secret")
        try:
            return Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as exc:
            return exc

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver._record(
                    Received(self.path, headers, body, receiver._verify(body, headers), time.time())
                )
                reply = receiver._next_reply()
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)
