"""A TCP proxy a test cuts and restores, to give a client an outage of a chosen kind and length.

Two kinds of outage, chosen per ``cut()``:

* ``REFUSE``: every open connection is closed and the port stops listening, so new connections are
  refused: a server that is down. ``restore()`` listens on the same port again.
* ``BLACK_HOLE``: every open connection is closed and new ones are accepted and never answered:
  a hung or partitioned server, where every call waits for its timeout. ``restore()`` drops the
  black-holed connections too, so that clients reconnect.

The server behind the proxy keeps its data throughout, so restoring shows what a client sees when
it comes back with everything it had. Threads only: usable from sync and async tests alike, and
the proxied client (in this process or another) notices nothing but the network.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from enum import Enum
from types import TracebackType


class Outage(Enum):
    REFUSE = "refuse"
    BLACK_HOLE = "black-hole"


REFUSE = Outage.REFUSE
BLACK_HOLE = Outage.BLACK_HOLE


class TcpProxy:
    """Listens on 127.0.0.1:``port`` and forwards every connection to ``upstream``."""

    def __init__(self, upstream: tuple[str, int], *, outage: Outage = REFUSE) -> None:
        self._upstream = upstream
        self._default_outage = outage
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._outage: Outage | None = None
        self.black_holed = 0
        """Connections accepted during a black-hole outage (each one a client waiting for its timeout)."""
        self.port = self._listen(0)

    @property
    def is_cut(self) -> bool:
        return self._outage is not None

    def cut(self, outage: Outage | None = None) -> None:
        """Close every open connection and start an outage (the proxy's default kind if None)."""
        outage = outage or self._default_outage
        with self._lock:
            self._outage = outage
        if outage is REFUSE:
            self._stop_listening()
        self._drop_connections()

    def restore(self) -> None:
        """End the outage: forward new connections again (black-holed ones are dropped)."""
        with self._lock:
            self._outage = None
        self._drop_connections()
        if self._listener is None:
            self._listen(self.port)

    def close(self) -> None:
        with self._lock:
            self._outage = REFUSE
        self._stop_listening()
        self._drop_connections()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    # Internals ----------------------------------------------------------------------------------

    def _listen(self, port: int) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        bound: int = listener.getsockname()[1]
        return bound

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave it listening.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            if self._hold_if_cut(client):
                continue
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._outage is not None:  # cut while connecting upstream
                    server.close()
                    client.close()
                    continue
                self._connections.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _hold_if_cut(self, client: socket.socket) -> bool:
        """During an outage, keep ``client`` open and unanswered (black hole) or close it."""
        with self._lock:
            if self._outage is None:
                return False
            if self._outage is BLACK_HOLE:
                self._connections.add(client)
                self.black_holed += 1
                return True
        client.close()
        return True

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                self._close(sock)

    def _drop_connections(self) -> None:
        with self._lock:
            open_now = list(self._connections)
        for sock in open_now:
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
