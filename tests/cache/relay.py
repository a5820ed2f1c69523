"""A TCP relay that can hold back a server's replies without closing anything: a lagging connection.

``tests/tcp_proxy.py`` gives outages (connections dropped or black-holed); this gives lag: while
``stalled``, what the client sends still reaches the server, but the server's replies wait in the
relay (in order) until ``resume()``. To a subscriber that is a channel whose heartbeats stop being
answered while its connection looks healthy.
"""

from __future__ import annotations

import asyncio
import contextlib


class StallingRelay:
    """Listens on 127.0.0.1:``port`` (after ``start``) and relays to ``upstream``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def stall(self) -> None:
        """Hold back the server's replies from now on."""
        self._flowing.clear()

    def resume(self) -> None:
        """Deliver what was held back, then relay as before."""
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for pump in (self._pump(reader, up_writer, held=False), self._pump(up_reader, writer, held=True)):
            task = asyncio.get_running_loop().create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, held: bool) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if held:
                    await self._flowing.wait()
                sink.write(data)
                await sink.drain()
        sink.close()
