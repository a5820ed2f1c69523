"""Database access for attribute inspections: store one, page a charge's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.quality.models import Inspection


class InspectionRepository:
    """Queries on ``inspections`` in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, inspection: Inspection) -> Inspection:
        self.session.add(inspection)
        await self.session.flush()
        return inspection

    async def page(
        self, charge_id: int, *, characteristic: str | None, after: tuple[datetime, int] | None, limit: int
    ) -> list[Inspection]:
        """Oldest first by (inspected_at, id); ``after`` is the last row of the previous page."""
        stmt = select(Inspection).where(Inspection.charge_id == charge_id)
        if characteristic is not None:
            stmt = stmt.where(Inspection.characteristic == characteristic)
        if after is not None:
            stmt = stmt.where(tuple_(Inspection.inspected_at, Inspection.id) > tuple_(*after))
        stmt = stmt.order_by(Inspection.inspected_at, Inspection.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())
