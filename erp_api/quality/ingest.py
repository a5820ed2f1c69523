"""Group commit for single measurements: requests arriving together share one INSERT and one commit.

Each request puts its row on a bounded queue and awaits a future. One background writer takes the
first waiting row, waits until that row has waited ``window_seconds`` (or until ``max_rows`` rows are
waiting), writes everything waiting (up to ``max_rows``) in one transaction and, after the commit,
resolves each row's future with its stored measurement, or with the error that concerns that row.
So a request is answered 201 only once its own row is durable, a full queue is a 503 with
Retry-After instead of unbounded memory, and stopping commits every row already accepted.

``max_rows == 1`` turns grouping off: each request writes its own row in its own transaction, in
its own task (the baseline the group commit is measured against).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import DataError, IntegrityError

from erp_api.errors import ApiError, ServiceUnavailable
from erp_api.observability.metrics import observe_ingest_batch, set_ingest_queue_depth
from erp_api.quality.records import NewMeasurement, StoredMeasurement

WriteRows = Callable[[Sequence[NewMeasurement]], Awaitable[Sequence[StoredMeasurement | ApiError]]]

RETRY_AFTER_SECONDS = 1
log = structlog.get_logger("erp_api.quality.ingest")


@dataclass(slots=True)
class _Pending:
    row: NewMeasurement
    future: asyncio.Future[StoredMeasurement]
    enqueued_at: float


class MeasurementIngestor:
    """Writes single measurements in groups; ``start`` it in the lifespan and ``stop`` it on exit."""

    def __init__(
        self,
        write: WriteRows,
        *,
        window_seconds: float,
        max_rows: int,
        queue_bound: int,
        stop_timeout_seconds: float = 30.0,
    ) -> None:
        if window_seconds < 0 or max_rows < 1 or queue_bound < 1:
            raise ValueError("window_seconds must be >= 0, max_rows and queue_bound >= 1")
        self._write = write
        self._window = window_seconds
        self._max_rows = max_rows
        self._bound = queue_bound
        self._stop_timeout = stop_timeout_seconds
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(maxsize=queue_bound)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._direct_in_flight = 0
        self.commits = 0
        """Transactions written so far (for metrics and benchmarks)."""

    @property
    def grouping(self) -> bool:
        return self._max_rows > 1

    @property
    def waiting(self) -> int:
        """Rows accepted and not yet handed to the database."""
        return self._queue.qsize()

    async def start(self) -> None:
        self._running = True
        if self.grouping and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="measurement-ingestor")

    async def submit(self, row: NewMeasurement) -> StoredMeasurement:
        """Store ``row``; returns once it is committed. Raises ServiceUnavailable when full or stopped."""
        if not self._running:
            raise _unavailable("measurement ingestion is not running")
        if not self.grouping:
            return await self._write_alone(row)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[StoredMeasurement] = loop.create_future()
        try:
            self._queue.put_nowait(_Pending(row, future, loop.time()))
        except asyncio.QueueFull:
            raise _unavailable(f"{self._bound} measurements are waiting to be written") from None
        set_ingest_queue_depth(self._queue.qsize())
        if self._queue.qsize() >= self._max_rows - 1:
            self._wake.set()
        return await future

    async def stop(self) -> None:
        """Refuse new rows, commit every accepted one, then end the writer (cancelled after a timeout)."""
        self._running = False
        task, self._task = self._task, None
        if task is None:
            return
        self._wake.set()
        try:
            async with asyncio.timeout(self._stop_timeout):
                await self._queue.put(None)
                await asyncio.shield(task)
        except TimeoutError:
            log.error("measurement_ingestor_stop_timeout", waiting=self._queue.qsize())
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # The writer ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        batch: list[_Pending] = []
        try:
            stopping = False
            while not stopping:
                first = await self._queue.get()
                if first is None:
                    break
                batch = [first]
                await self._gather_window(first)
                while len(batch) < self._max_rows and not self._queue.empty():
                    item = self._queue.get_nowait()
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                set_ingest_queue_depth(self._queue.qsize())
                await self._commit(batch)
                batch = []
        except asyncio.CancelledError:
            self._fail_all(batch, _unavailable("the service stopped before the measurement was written"))
            raise

    async def _gather_window(self, first: _Pending) -> None:
        delay = first.enqueued_at + self._window - asyncio.get_running_loop().time()
        if delay <= 0 or not self._running or self._queue.qsize() >= self._max_rows - 1:
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            results = await self._write([pending.row for pending in batch])
        except (IntegrityError, DataError) as exc:
            if len(batch) == 1:
                _settle(batch[0].future, exc)
                return
            # A problem of one row must not fail the rows it happened to share a commit with.
            for pending in batch:
                await self._commit([pending])
            return
        except Exception as exc:
            log.error("measurement_batch_failed", rows=len(batch), exc_info=exc)
            for pending in batch:
                _settle(pending.future, exc)
            return
        self.commits += 1
        observe_ingest_batch(
            len(batch),
            wait_seconds=asyncio.get_running_loop().time() - batch[0].enqueued_at,
            stored=sum(1 for result in results if not isinstance(result, ApiError)),
        )
        for pending, result in zip(batch, results, strict=True):
            _settle(pending.future, result)

    def _fail_all(self, batch: list[_Pending], error: ApiError) -> None:
        for pending in batch:
            _settle(pending.future, error)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                _settle(item.future, error)

    async def _write_alone(self, row: NewMeasurement) -> StoredMeasurement:
        if self._direct_in_flight >= self._bound:
            raise _unavailable(f"{self._bound} measurements are being written")
        self._direct_in_flight += 1
        try:
            (result,) = await self._write([row])
        finally:
            self._direct_in_flight -= 1
        self.commits += 1
        observe_ingest_batch(1, stored=0 if isinstance(result, ApiError) else 1)
        if isinstance(result, ApiError):
            raise result
        return result


def _settle(future: asyncio.Future[StoredMeasurement], result: StoredMeasurement | BaseException) -> None:
    # A request that went away has cancelled its future; its row is stored all the same.
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _unavailable(reason: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"{reason}; retry in {RETRY_AFTER_SECONDS} s", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )
