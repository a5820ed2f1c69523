"""Tables of the audit package: the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from erp_api.db import Base, BigIntId, JsonDocument, UTCDateTime


class AuditEvent(Base):
    """One change: who made it, when, to what, the changed fields before and after, and the request."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_entity_entity_id_id", "entity", "entity_id", "id"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # No foreign key: the trail outlives whatever it mentions.
    actor_key_id: Mapped[int | None] = mapped_column(BigIntId)
    actor_name: Mapped[str] = mapped_column(String(100))
    actor_role: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    request_id: Mapped[str | None] = mapped_column(String(128))
