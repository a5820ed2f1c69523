"""Database access for reading the audit trail (writing it is ``trail.record``, in the writer's transaction)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.audit.models import AuditEvent


class AuditRepository:
    """Queries on ``audit_events`` within the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def events(
        self, *, entity: str | None, entity_id: str | None, before_id: int | None, limit: int
    ) -> list[AuditEvent]:
        """Newest first by id: rows of one kind of entity (or one entity, or all) with ids below ``before_id``."""
        stmt = select(AuditEvent)
        if entity is not None:
            stmt = stmt.where(AuditEvent.entity == entity)
        if entity_id is not None:
            stmt = stmt.where(AuditEvent.entity_id == entity_id)
        if before_id is not None:
            stmt = stmt.where(AuditEvent.id < before_id)
        stmt = stmt.order_by(AuditEvent.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())
