"""Tables of the events package: the durable event log, and single-use stream tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from erp_api.db import Base, BigIntId, JsonDocument, UTCDateTime, utcnow


class Event(Base):
    """One change that committed, in commit order of its id (the SSE ``id:``, ``Last-Event-ID``).

    Inserted in the transaction of the change it tells of (``log.record_event``), so an event exists
    exactly when its change committed; deleted once older than the retention.
    """

    __tablename__ = "events"
    __table_args__ = (
        # Retention deletes by age; resuming reads by id (the primary key).
        Index("ix_events_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(40))
    charge_id: Mapped[int | None] = mapped_column(BigIntId, default=None)
    product_sku: Mapped[str | None] = mapped_column(String(64), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventTicket(Base):
    """A single-use, short-lived ticket to open one event stream without an Authorization header.

    Only the SHA-256 of the ticket is stored; redeeming deletes the row (``DELETE ... RETURNING``),
    so of two concurrent redemptions, on any process, exactly one succeeds.
    """

    __tablename__ = "event_tickets"
    __table_args__ = (Index("ix_event_tickets_expires_at", "expires_at"),)

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int | None] = mapped_column(BigIntId, default=None)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
