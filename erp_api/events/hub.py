"""One reader per process that learns of new events and fans them out to that process's streams.

Why this way. The event log (``log.py``) is the source of truth; what crosses processes is only a
wake-up. Each process runs one reader task that reads ``events`` by id (``id > cursor``, an index
range scan on the primary key) and hands each event to the bounded queue of every connected client
whose filter it matches: one query per process per round, whatever the number of clients.

- PostgreSQL: ``record_event`` queues ``NOTIFY erp_events`` in the writer's transaction, delivered
  at its commit to every process that ``LISTEN``s; the reader wakes at once. A missed notification
  (the listening connection dropped) costs at most one poll interval, never a gap, because the
  reader also polls and always reads the log from its cursor.
- SQLite (the embedded default; all processes on one machine): no notification mechanism across
  processes, so the reader polls every ``ERP_EVENT_POLL_INTERVAL_MS`` (200 ms).
Redis pub/sub would add a second source of wake-ups with the same properties and nothing more,
so it is not used: PostgreSQL deployments have NOTIFY, SQLite ones are single-machine.

Commit order. Ids are assigned at insert, so a smaller id can commit after a larger one. The reader
never moves its cursor past a missing id while it may still commit: it delivers the run of ids up
to the first hole and waits for the hole up to ``GAP_GRACE_SECONDS`` (a rolled-back insert leaves
a hole forever). Streams therefore receive ids in increasing order, which is what makes
``Last-Event-ID`` resumption exact.

Slow clients. Each client's queue holds ``ERP_EVENT_CLIENT_BUFFER`` events; a client whose queue is
full is cut off (``Subscription.overflowed``) and resumes from the log with ``Last-Event-ID``.

Retention. The reader also deletes events older than ``ERP_EVENT_RETENTION_HOURS``, at most once a
``PURGE_INTERVAL_SECONDS`` per process (one indexed DELETE, idempotent across processes).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from time import monotonic
from typing import Any, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from erp_api.events.log import NOTIFY_CHANNEL, delete_expired, events_after, latest_id
from erp_api.events.models import Event
from erp_api.events.policy import EventFilter
from erp_api.observability.metrics import set_event_clients

log = structlog.get_logger("erp_api.events")

GAP_GRACE_SECONDS: Final = 2.0
"""How long a hole in the ids may still be filled by a transaction committing late."""
PURGE_INTERVAL_SECONDS: Final = 60.0
START_TIMEOUT_SECONDS: Final = 5.0
"""How long start waits for the database before leaving the reader to find the log later."""
READ_BATCH: Final = 1000
FAILURE_BACKOFF_MAX_SECONDS: Final = 5.0
"""While the database is away the hub polls less often, up to this, and logs the first failure in full."""


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """An event as streams send it: the JSON of its data already encoded once for all clients."""

    id: int
    type: str
    charge_id: int | None
    product_sku: str | None
    payload: dict[str, Any]
    created_at_epoch: float

    @classmethod
    def of(cls, event: Event) -> LiveEvent:
        return cls(
            event.id,
            event.type,
            event.charge_id,
            event.product_sku,
            event.payload,
            event.created_at.timestamp(),
        )


@dataclass(eq=False)
class Subscription:
    """One connected client: its filter, its bounded queue, and whether it fell behind."""

    filter: EventFilter
    queue: asyncio.Queue[LiveEvent]
    start_after: int
    """The reader's cursor when the client subscribed: the queue gets every matching id above it."""
    overflowed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class HubNotReady(Exception):
    """The reader has not reached the database yet (it was away when the process started)."""


class TooManyClients(Exception):
    """The process serves its maximum number of streams."""


class EventHub:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
        *,
        poll_interval_seconds: float,
        client_buffer: int,
        max_clients: int,
        retention: timedelta,
    ) -> None:
        self._sessions = sessions
        self._engine = engine
        self._poll = poll_interval_seconds
        self._buffer = client_buffer
        self._max_clients = max_clients
        self._retention = retention
        self._subscriptions: set[Subscription] = set()
        self._cursor = 0
        self._gap_since: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self._last_purge = 0.0
        # A hub driven by hand (``read_once``) reads from the start of the log; ``start`` finds its end.
        self._placed = True

    @property
    def cursor(self) -> int:
        """Every event up to this id has been handed to the queues (or will never commit)."""
        return self._cursor

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    async def start(self) -> None:
        """Find the log's end and start reading; with the database away, the reader finds it later
        (the process still starts: liveness and readiness must answer during an outage)."""
        self._placed = False
        try:
            async with asyncio.timeout(START_TIMEOUT_SECONDS):
                await self._find_place()
        except Exception:
            log.warning("event_hub_start_deferred", exc_info=True)
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def _find_place(self) -> None:
        async with self._sessions() as session:
            self._cursor = await latest_id(session)
        self._placed = True
        await self._listen()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for subscription in self._subscriptions:
            subscription.overflowed = True
            subscription.wake.set()
        self._subscriptions.clear()
        set_event_clients(0)
        await self._unlisten()

    def subscribe(self, event_filter: EventFilter) -> Subscription:
        """Register a client; raises ``TooManyClients`` at the per-process maximum, and
        ``HubNotReady`` until the reader has found the end of the log."""
        if not self._placed:
            raise HubNotReady
        if len(self._subscriptions) >= self._max_clients:
            raise TooManyClients
        subscription = Subscription(event_filter, asyncio.Queue(self._buffer), self._cursor)
        self._subscriptions.add(subscription)
        set_event_clients(len(self._subscriptions))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        set_event_clients(len(self._subscriptions))

    def notify(self) -> None:
        """Read the log now (a NOTIFY arrived, or this process just committed events)."""
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
        while True:
            wait = self._poll if not failures else min(self._poll * 2**failures, FAILURE_BACKOFF_MAX_SECONDS)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if not self._placed:
                    await self._find_place()
                await self.read_once()
                await self._purge_if_due()
                if failures:
                    log.info("event_read_recovered", failures=failures)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the next round tries again from the cursor
                failures += 1
                # One traceback per outage, then a line now and again: not one every poll.
                if failures == 1:
                    log.warning("event_read_failed", exc_info=True)
                elif failures % 20 == 0:
                    log.warning("event_read_failing", failures=failures, error=str(exc))

    async def read_once(self) -> None:
        """One round: read the events after the cursor and hand them to the matching queues."""
        while True:
            async with self._sessions() as session:
                rows = await events_after(session, self._cursor, READ_BATCH)
            deliverable = self._contiguous(rows)
            if deliverable:
                self._fan_out([LiveEvent.of(row) for row in deliverable])
                self._cursor = deliverable[-1].id
            if len(rows) < READ_BATCH or len(deliverable) < len(rows):
                return

    def _contiguous(self, rows: Sequence[Event]) -> Sequence[Event]:
        """The rows up to the first hole in the ids, or all of them once a hole is older than the grace."""
        expected = self._cursor + 1
        for index, row in enumerate(rows):
            if row.id != expected:
                now = monotonic()
                if self._gap_since is None:
                    self._gap_since = now
                if now - self._gap_since < GAP_GRACE_SECONDS:
                    return rows[:index]
                # Given up on the hole (its transaction rolled back): go on after it.
                self._gap_since = None
            expected = row.id + 1
        self._gap_since = None
        return rows

    def _fan_out(self, events: Sequence[LiveEvent]) -> None:
        for subscription in list(self._subscriptions):
            if subscription.overflowed:
                continue
            for event in events:
                if event.id <= subscription.start_after or not subscription.filter.matches(
                    event.type, event.charge_id, event.product_sku, event.payload
                ):
                    continue
                try:
                    subscription.queue.put_nowait(event)
                except asyncio.QueueFull:
                    subscription.overflowed = True
                    break
            subscription.wake.set()

    async def _purge_if_due(self) -> None:
        now = monotonic()
        if now - self._last_purge < PURGE_INTERVAL_SECONDS:
            return
        self._last_purge = now
        await self.purge()

    async def purge(self) -> int:
        """Delete the events older than the retention; how many went."""
        async with self._sessions.begin() as session:
            return await delete_expired(session, self._retention)

    async def _listen(self) -> None:
        """On PostgreSQL, hold one connection that LISTENs for the writers' wake-ups."""
        if self._engine.dialect.name != "postgresql":
            return
        try:
            connection = await self._engine.connect()
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            if driver is None:
                raise RuntimeError("no driver connection")
            await driver.add_listener(NOTIFY_CHANNEL, self._on_notify)
            self._listener = connection
        except Exception:  # polling alone still delivers everything
            log.warning("event_listen_failed", exc_info=True)

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def _unlisten(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                raw = await self._listener.get_raw_connection()
                if raw.driver_connection is not None:
                    await raw.driver_connection.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
