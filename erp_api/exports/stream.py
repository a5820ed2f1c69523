"""The response of an export: a plain ASGI app that streams it chunk by chunk, in constant memory.

The contract:

- Headers, then what comes before the rows (the CSV header row) go out before the first chunk is
  read, so the first bytes do not wait for the database.
- Then each chunk is read (one keyset query, ``service``), written and sent before the next one is
  read, in pieces of ``WRITE_ROWS`` rows with the event loop free between them: the server holds
  one chunk at a time, whatever the export's size, and keeps serving other requests meanwhile. ``send`` waits while the
  client does not keep up, so a slow client slows the reading, never grows a buffer.
- A client that goes away stops the export before its next query: a listener watches for
  ``http.disconnect`` (servers on ASGI < 2.4 drop what is sent after it without a word), and a
  ``send`` that raises ``OSError`` (ASGI 2.4) ends it too.
- At most ``max_rows`` rows are sent (``ERP_EXPORT_MAX_ROWS``). The status and headers are gone by
  the time the cap is reached, so a larger export ends without the end of the HTTP body: the server
  closes the connection, and every client reports an incomplete transfer instead of a file that
  looks complete but is not. Narrow the filters to export less.
- ``HEAD`` sends the headers only and reads nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Final

import structlog
from starlette.types import Message, Receive, Scope, Send

from erp_api.exports.formats import ExportFormat
from erp_api.exports.service import Export

log = structlog.get_logger("erp_api.exports")

WRITE_ROWS: Final = 500
"""Rows written and sent at a time: a few milliseconds of the event loop, tens of kilobytes."""


def attachment_name(export: Export, export_format: ExportFormat, now: datetime) -> str:
    """``charges-20260301T050000Z.csv``: what the export holds and when (UTC) it was made."""
    return f"{export.name}-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.{export_format.extension}"


class ExportStream:
    """Streams ``export`` in ``export_format`` (see the module's contract)."""

    def __init__(self, export: Export, export_format: ExportFormat, *, max_rows: int) -> None:
        self.export = export
        self.format = export_format
        self.max_rows = max_rows
        self.filename = attachment_name(export, export_format, datetime.now(UTC))
        self.rows_sent = 0

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", self.format.media_type.encode()),
            (b"content-disposition", f'attachment; filename="{self.filename}"'.encode()),
            # A copy of data as it was, not a representation to reuse.
            (b"cache-control", b"no-store"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers()})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        disconnected = asyncio.Event()
        listener = asyncio.ensure_future(_watch_for_disconnect(receive, disconnected))
        try:
            outcome = await self._stream(send, disconnected)
        except OSError:
            outcome = "disconnected"
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        log.info("export_ended", export=self.export.name, outcome=outcome, rows=self.rows_sent)

    async def _stream(self, send: Send, disconnected: asyncio.Event) -> str:
        columns = self.export.columns
        await _send_body(send, self.format.begin(columns), more=True)
        chunks = self.export.chunks()
        try:
            while not disconnected.is_set():
                rows = await anext(chunks, None)  # the next chunk's query runs here
                if rows is None:
                    await _send_body(send, b"", more=False)
                    return "complete"
                allowed = rows[: self.max_rows - self.rows_sent]
                for start in range(0, len(allowed), WRITE_ROWS):
                    if disconnected.is_set():
                        return "disconnected"
                    piece = allowed[start : start + WRITE_ROWS]
                    await _send_body(send, self.format.rows(columns, piece), more=True)
                    self.rows_sent += len(piece)
                    # Let the event loop serve other requests between pieces.
                    await asyncio.sleep(0)
                if len(allowed) < len(rows):
                    log.warning("export_cut_off", export=self.export.name, max_rows=self.max_rows)
                    # No end of body: the server closes the connection, the transfer is incomplete.
                    return "cut_off"
        finally:
            await chunks.aclose()
        return "disconnected"


async def _send_body(send: Send, body: bytes, *, more: bool) -> None:
    message: Message = {"type": "http.response.body", "body": body, "more_body": more}
    await send(message)


async def _watch_for_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    disconnected.set()
