"""The streaming contract of ``ExportStream``, driven message by message with a chunk source the test
holds back: what is sent before the first query, one chunk at a time, disconnects, the row cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from starlette.types import Message

from erp_api.exports.columns import Kind, column
from erp_api.exports.formats import CsvFormat, NdjsonFormat
from erp_api.exports.service import Export
from erp_api.exports.stream import ExportStream

COLUMNS = (column("id", Kind.INTEGER),)


class Row:
    def __init__(self, row_id: int) -> None:
        self.id = row_id


class HeldBackChunks:
    """Chunks of 2 rows each, every chunk's "query" waiting until the test releases it."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.queries_started = 0
        self.released = asyncio.Semaphore(0)

    def export(self) -> Export:
        return Export("charges", COLUMNS, self.read)

    async def read(self) -> AsyncGenerator[Sequence[Any], None]:
        for chunk in range(self.chunks):
            self.queries_started += 1
            await self.released.acquire()
            yield [Row(2 * chunk + 1), Row(2 * chunk + 2)]


class Client:
    """The server side of one request: records what the app sends, can go away."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.gone = asyncio.Event()
        self.message_sent = asyncio.Event()

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        self.message_sent.set()

    def body(self) -> bytes:
        return b"".join(message.get("body", b"") for message in self.sent[1:])

    def ended(self) -> bool:
        return any(m["type"] == "http.response.body" and not m.get("more_body") for m in self.sent)


def run(stream: ExportStream, client: Client, method: str = "GET") -> asyncio.Task[None]:
    scope = {"type": "http", "method": method, "path": "/api/v1/exports/charges.csv"}
    return asyncio.ensure_future(stream(scope, client.receive, client.send))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)


async def test_the_header_row_is_sent_before_the_first_query_returns() -> None:
    source, client = HeldBackChunks(chunks=2), Client()
    task = run(ExportStream(source.export(), CsvFormat(bom=False), max_rows=100), client)
    await settle()
    assert client.sent[0]["type"] == "http.response.start"
    assert client.body() == b"id\r\n"
    assert source.queries_started == 1  # and still waiting
    for _ in range(2):
        source.released.release()
    await task
    assert client.body() == b"id\r\n1\r\n2\r\n3\r\n4\r\n"
    assert client.ended()


async def test_each_chunk_is_sent_before_the_next_one_is_read() -> None:
    source, client = HeldBackChunks(chunks=3), Client()
    task = run(ExportStream(source.export(), NdjsonFormat(), max_rows=100), client)
    source.released.release()
    await settle()
    assert client.body() == b'{"id":1}\n{"id":2}\n'
    assert source.queries_started == 2 and not client.ended()
    source.released.release()
    await settle()
    assert client.body().count(b"\n") == 4 and not client.ended()
    source.released.release()
    await task
    assert client.body().count(b"\n") == 6 and client.ended()


async def test_a_client_that_goes_away_stops_the_export_before_its_next_query() -> None:
    source, client = HeldBackChunks(chunks=5), Client()
    task = run(ExportStream(source.export(), CsvFormat(), max_rows=100), client)
    source.released.release()
    await settle()
    client.gone.set()
    await settle()
    source.released.release()  # the second query, already started, returns
    await asyncio.wait_for(task, 5)
    assert source.queries_started == 2
    assert not client.ended()


async def test_a_send_that_fails_ends_the_export() -> None:
    source = HeldBackChunks(chunks=3)

    async def failing_send(message: Message) -> None:
        if message["type"] == "http.response.body" and message["body"].startswith(b"1"):
            raise OSError("connection reset")

    for _ in range(3):
        source.released.release()
    stream = ExportStream(source.export(), CsvFormat(bom=False), max_rows=100)
    await stream({"type": "http", "method": "GET"}, Client().receive, failing_send)
    assert source.queries_started == 1


async def test_an_export_past_the_row_cap_ends_without_the_end_of_the_body() -> None:
    source, client = HeldBackChunks(chunks=3), Client()
    for _ in range(3):
        source.released.release()
    await run(ExportStream(source.export(), CsvFormat(bom=False), max_rows=3), client)
    assert client.body() == b"id\r\n1\r\n2\r\n3\r\n"
    assert not client.ended(), "a cut-off export must not look complete"
    assert source.queries_started == 2


async def test_an_export_of_exactly_the_cap_is_complete() -> None:
    source, client = HeldBackChunks(chunks=2), Client()
    for _ in range(2):
        source.released.release()
    await run(ExportStream(source.export(), CsvFormat(bom=False), max_rows=4), client)
    assert client.body() == b"id\r\n1\r\n2\r\n3\r\n4\r\n"
    assert client.ended()


async def test_head_reads_nothing() -> None:
    source, client = HeldBackChunks(chunks=2), Client()
    await run(ExportStream(source.export(), CsvFormat(), max_rows=100), client, method="HEAD")
    assert source.queries_started == 0
    assert client.body() == b"" and client.ended()
