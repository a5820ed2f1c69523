"""``CoalescingTransport``: what the server writes, in how many calls and when (``erp_api/serving.py``).

A response's head and body leave in one call; nothing held waits past the event-loop step that
wrote it, so a streamed answer's head is not kept back until its first chunk."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from erp_api.serving import CoalescingTransport


class RecordingTransport(asyncio.Transport):
    """Records each call that would reach the socket."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[bytes, ...]]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", (bytes(data),)))

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append(("writelines", tuple(bytes(data) for data in list_of_data)))

    def close(self) -> None:
        self.calls.append(("close", ()))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", ()))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


async def coalescing() -> tuple[CoalescingTransport, RecordingTransport]:
    inner = RecordingTransport()
    return CoalescingTransport(inner, asyncio.get_running_loop()), inner


async def test_a_head_and_its_body_leave_in_one_call() -> None:
    transport, inner = await coalescing()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert inner.calls == [("writelines", (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", b"{}"))]
    await asyncio.sleep(0)  # the held write's flush finds nothing left
    assert len(inner.calls) == 1


async def test_a_lone_write_leaves_when_the_step_that_wrote_it_ends() -> None:
    transport, inner = await coalescing()
    transport.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    assert inner.calls == []
    assert transport.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    await asyncio.sleep(0)  # a streamed answer awaiting its first event
    assert inner.calls == [("write", (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",))]


async def test_writes_keep_their_order_in_pairs() -> None:
    transport, inner = await coalescing()
    for chunk in (b"a", b"b", b"c"):
        transport.write(chunk)
    await asyncio.sleep(0)
    transport.write(b"d")
    await asyncio.sleep(0)
    assert inner.calls == [("writelines", (b"a", b"b")), ("write", (b"c",)), ("write", (b"d",))]


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    transport, inner = await coalescing()
    transport.write(b"last words")
    transport.close()
    assert inner.calls == [("write", (b"last words",)), ("close", ())]

    transport, inner = await coalescing()
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.calls == [("abort", ())]


async def test_a_held_write_to_a_connection_closed_meanwhile_is_dropped() -> None:
    transport, inner = await coalescing()
    transport.write(b"too late")
    inner.closing = True  # the peer went away before the step ended
    await asyncio.sleep(0)
    assert inner.calls == []


@pytest.mark.parametrize("size", [0, 1, 70_000])
async def test_bytes_arrive_unchanged_through_a_real_socket(size: int) -> None:
    """Over a real connection (uvloop or asyncio's own transport): what was written is what arrives."""
    received = asyncio.get_running_loop().create_future()
    head, body = b"HTTP/1.1 200 OK\r\n\r\n", bytes(range(256)) * (size // 256) + b"x" * (size % 256)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = CoalescingTransport(writer.transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(head)
        transport.write(body)
        transport.write(b"end")
        transport.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        received.set_result(await asyncio.wait_for(reader.read(), timeout=10))
        writer.close()
    assert received.result() == head + body + b"end"
