"""Reading the audit trail: keyset pages, newest first (never cached: the trail is read to be current)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.audit.documents import event_dict
from erp_api.audit.repository import AuditRepository
from erp_api.audit.schemas import AuditQuery
from erp_api.pagination import decode_id_cursor, page_of, rows_to_fetch


class AuditService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def page(self, query: AuditQuery) -> dict[str, Any]:
        """One page of events, filtered by kind of entity (and entity id), after ``query.cursor``.

        A cursor that this server did not issue is a ``ValidationFailed`` (422).
        """
        before_id = decode_id_cursor(query.cursor)
        async with self._sessions() as session:
            rows = await AuditRepository(session).events(
                entity=query.entity,
                entity_id=query.entity_id,
                before_id=before_id,
                limit=rows_to_fetch(query.limit),
            )
        return page_of(rows, query.limit, key=lambda event: event.id).document(event_dict)
