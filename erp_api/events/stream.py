"""One client's Server-Sent Events stream: replay from the log, then live events, heartbeats.

Frames: ``retry:`` once; each event as ``id:`` (its log id), ``event:`` (its type) and ``data:``
(``{"id", "type", "created_at", "charge_id", "product_sku", "data"}``); ``: ping`` comments every
``ERP_EVENT_HEARTBEAT_SECONDS`` so proxies keep the connection and clients notice a dead one.

Resuming (``Last-Event-ID``, or ``last_event_id``): the client is subscribed first, then every event
between its id and the subscription's start is read from the log, then the queue follows with ids
above that start: no gap, no duplicate, in id order. If events after its id were already deleted
(older than the retention), or more than ``ERP_EVENT_REPLAY_MAX`` would have to be replayed, the
stream sends one ``stream.reset`` event instead (``data.reason``: ``expired`` or ``too_many``) whose
``id`` is the current position: the client refetches what it shows and goes on from there. (A 410
would end an ``EventSource`` for good; a reset keeps it connected.)

A client whose buffer overflowed is cut off: the response ends, and its ``EventSource`` reconnects
with the last id it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import anyio
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from erp_api.events.hub import LiveEvent, Subscription
from erp_api.events.log import events_after, oldest_id
from erp_api.observability.metrics import observe_event_sent

RESET_EVENT = "stream.reset"
REPLAY_BATCH = 500


def event_frame(event: LiveEvent) -> bytes:
    data = {
        "id": event.id,
        "type": event.type,
        "created_at": datetime.fromtimestamp(event.created_at_epoch, UTC).isoformat(),
        "charge_id": event.charge_id,
        "product_sku": event.product_sku,
        "data": event.payload,
    }
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.type.encode(), orjson.dumps(data))


def reset_frame(position: int, reason: str) -> bytes:
    data = orjson.dumps({"reason": reason, "refetch": True, "id": position})
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (position, RESET_EVENT.encode(), data)


async def frames(
    subscription: Subscription,
    sessions: async_sessionmaker[AsyncSession],
    *,
    last_event_id: int | None,
    heartbeat_seconds: float,
    retry_ms: int,
    replay_max: int,
) -> AsyncIterator[bytes]:
    """The stream's bytes, until the client falls behind (overflow) or goes away."""
    yield b"retry: %d\n\n" % retry_ms
    sent_up_to = subscription.start_after
    if last_event_id is not None:
        async with sessions() as session:
            oldest = await oldest_id(session)
        if oldest is not None and last_event_id + 1 < oldest:
            yield reset_frame(subscription.start_after, "expired")
        elif last_event_id < subscription.start_after:
            async for frame in _replay(subscription, sessions, last_event_id, replay_max):
                yield frame
        else:
            sent_up_to = last_event_id
    while not subscription.overflowed:
        try:
            async with asyncio.timeout(heartbeat_seconds):
                event = await subscription.queue.get()
        except TimeoutError:
            yield b": ping\n\n"
            continue
        if subscription.overflowed:
            return
        if event.id <= sent_up_to:
            continue
        observe_event_sent(time.time() - event.created_at_epoch)
        yield event_frame(event)


async def _replay(
    subscription: Subscription, sessions: async_sessionmaker[AsyncSession], after: int, replay_max: int
) -> AsyncIterator[bytes]:
    """The events after ``after`` up to the subscription's start, or one reset if too many."""
    until = subscription.start_after
    cursor, replayed = after, 0
    while cursor < until:
        async with sessions() as session:
            rows = await events_after(session, cursor, REPLAY_BATCH)
        rows = [row for row in rows if row.id <= until]
        if not rows:
            return
        replayed += len(rows)
        if replayed > replay_max:
            yield reset_frame(until, "too_many")
            return
        for row in rows:
            event = LiveEvent.of(row)
            if subscription.filter.matches(event.type, event.charge_id, event.product_sku, event.payload):
                observe_event_sent(time.time() - event.created_at_epoch)
                yield event_frame(event)
        cursor = rows[-1].id


class EventStreamResponse:
    """An ASGI response that sends ``body`` as it is produced and ends it when the client leaves;
    ``on_close`` runs however it ends. Nothing is buffered: each frame is one body message."""

    headers = (
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),
    )

    def __init__(self, body: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": list(self.headers)})
            disconnected = False
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    nonlocal disconnected
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    disconnected = True
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                async for frame in self._body:
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
                group.cancel_scope.cancel()
            if not disconnected:
                with contextlib.suppress(OSError):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            with contextlib.suppress(Exception):
                await self._body.aclose()  # type: ignore[attr-defined]
            self._on_close()
