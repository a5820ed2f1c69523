"""Where rendered log lines go (stdout), and when batched work is flushed (``FlushWindow``).

Log lines are written and flushed one by one: most are rare events, and whoever logs one may read
the output right after. The exception is the access log, a line per request: a write system call
per line (and the loop iteration a flush callback per line needs) would cost more than the rest of
a request's observability together, so the request ledger batches it with a ``FlushWindow``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable
from typing import BinaryIO

FLUSH_SECONDS = 0.05
MAX_PENDING = 1000


class FlushWindow:
    """When to run ``flush``: at once after a quiet spell, else when the open window closes.

    A flush opens a window of ``FLUSH_SECONDS``; what is added while it is open waits for its end
    (or for ``MAX_PENDING`` items). At low traffic everything is flushed as it comes; under load,
    once per window, and a crash can lose the last window's batch.
    """

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self._loop: asyncio.AbstractEventLoop | None = None

    def added(self, pending: int) -> None:
        """Call after adding to the batch, with the batch's size now."""
        window = self._loop
        if window is not None and not window.is_closed():
            # Open, so its close will flush. Checked before asking which loop runs: that costs a
            # getpid() system call (Python 3.11), and this runs for every request.
            if pending >= MAX_PENDING:
                self._flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()
            return
        # No open window (or only one of a loop that has closed since).
        self._flush()
        self._loop = loop
        loop.call_later(FLUSH_SECONDS, self._close)

    def _close(self) -> None:
        self._loop = None
        self._flush()


class JsonLineWriter:
    """Writes rendered events to stdout, one per line (also structlog's logger: ``msg(line)``)."""

    def msg(self, line: bytes) -> None:
        _write((line,))

    debug = info = warning = warn = error = critical = exception = fatal = log = msg

    def write_lines(self, lines: Iterable[bytes]) -> None:
        """Write ``lines`` (each without its newline) in one call."""
        _write(lines)


def _write(lines: Iterable[bytes]) -> None:
    # sys.stdout is looked up on every write so that a redirected or captured stdout is honoured.
    stream = sys.stdout
    buffer: BinaryIO | None = getattr(stream, "buffer", None)
    data = b"\n".join(lines) + b"\n"
    if buffer is None:
        stream.write(data.decode())
        stream.flush()
    else:
        buffer.write(data)
        buffer.flush()
