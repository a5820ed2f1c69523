"""The durable event log: what is recorded, in whose transaction, and how it is read back.

Outbox semantics: ``record_event`` inserts into the caller's session, so an event commits or rolls
back with the change it tells of; there is never an event for a change that did not commit, nor a
committed change without its event. Ids grow with each insert; a reader that remembers the last id
it saw and reads ``id > last`` in id order sees every event once.

Ids are assigned at insert, not at commit: of two concurrent transactions the one with the smaller
id may commit second. A reader therefore does not move past an id it has not seen yet while a
younger one is visible (see ``hub.py``: gaps are re-read for a short grace period).

On PostgreSQL the insert also queues ``NOTIFY erp_events`` in the same transaction, delivered only
when it commits: a wake-up for every process's reader (``hub.py``). It carries nothing; the log is
the source of truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.db import insert_rows, utcnow
from erp_api.events.models import Event

NOTIFY_CHANNEL: Final = "erp_events"


class EventType(StrEnum):
    CHARGE_CREATED = "charge.created"
    CHARGE_UPDATED = "charge.updated"
    CHARGE_STATUS_CHANGED = "charge.status_changed"
    MEASUREMENTS_ADDED = "measurements.added"
    """One per commit of measurements, with the count per (charge, parameter)."""
    ALERT_OPENED = "alert.opened"
    ALERT_CHANGED = "alert.changed"
    ANALYSIS_FINISHED = "analysis.finished"


async def record_event(
    session: AsyncSession,
    type: EventType | str,
    payload: dict[str, Any],
    *,
    charge_id: int | None = None,
    product_sku: str | None = None,
) -> None:
    """Add one event to the log in ``session``'s transaction (the caller commits)."""
    await record_events(session, [(EventType(type), payload, charge_id, product_sku)])


async def record_events(
    session: AsyncSession, events: Sequence[tuple[EventType, dict[str, Any], int | None, str | None]]
) -> None:
    """Add (type, payload, charge_id, product_sku) events to the log in ``session``'s transaction."""
    if not events:
        return
    now = utcnow()
    await session.flush()  # what the caller added before its event is written first, as always
    await insert_rows(
        session,
        Event,
        [
            {
                "type": event_type.value,
                "payload": _jsonable(payload),
                "charge_id": charge_id,
                "product_sku": product_sku,
                "created_at": now,
            }
            for event_type, payload, charge_id, product_sku in events
        ],
    )
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


async def events_after(session: AsyncSession, after_id: int, limit: int) -> list[Event]:
    """Up to ``limit`` events with an id above ``after_id``, oldest first."""
    rows = await session.scalars(select(Event).where(Event.id > after_id).order_by(Event.id).limit(limit))
    return list(rows)


async def latest_id(session: AsyncSession) -> int:
    """The id of the newest event, 0 for an empty log."""
    return int(await session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0)


async def oldest_id(session: AsyncSession) -> int | None:
    """The id of the oldest event kept, None for an empty log."""
    value = await session.scalar(select(func.min(Event.id)))
    return None if value is None else int(value)


async def delete_expired(session: AsyncSession, retention: timedelta, now: datetime | None = None) -> int:
    """Delete events older than ``retention``; the newest event is always kept, so that ids never
    restart from 1 (SQLite reuses ids of an emptied table) and a resume id stays comparable."""
    cutoff = (now or utcnow()) - retention
    newest = select(func.max(Event.id)).scalar_subquery()
    result = await session.execute(delete(Event).where(Event.created_at < cutoff, Event.id < newest))
    return int(getattr(result, "rowcount", 0) or 0)


def _jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 text, so the payload is stored and sent the same on every backend."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value
