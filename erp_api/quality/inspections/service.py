"""Attribute inspections of charges: record one, list a charge's; the data of the p, np, c and u charts.

An inspection is stored like a measurement: in one transaction that share-locks its charge, so none is
ever stored for a charge that is gone, released or rejected at commit time (``writer.charge_refusal``:
404 or 409), nor dated more than ``FUTURE_TOLERANCE`` ahead of the server's clock (422). It is
audited on its charge, and once committed the charge's list and the product's attribute charts are
invalidated. Inspections are never edited.
"""

from __future__ import annotations

from datetime import UTC

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.audit import trail as audit
from erp_api.charges.repository import ChargeRepository
from erp_api.db import utcnow
from erp_api.errors import ValidationFailed
from erp_api.pagination import decode_cursor, page_of, rows_to_fetch
from erp_api.quality import cache_tags as quality_tags
from erp_api.quality.charge_state import charge_state
from erp_api.quality.documents import inspection_dict
from erp_api.quality.inspections.repository import InspectionRepository
from erp_api.quality.inspections.schemas import InspectionIn, InspectionListQuery
from erp_api.quality.models import Inspection
from erp_api.quality.validation import FUTURE_TOLERANCE
from erp_api.quality.writer import charge_refusal

NAMESPACE = "quality"


class InspectionService:
    """Records and lists attribute inspections."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: CacheManager) -> None:
        self._sessions = sessions
        self._cache = cache

    async def record(self, charge_id: int, data: InspectionIn) -> Inspection:
        """Store one inspection of a charge that takes quality data (see the module docstring)."""
        now = utcnow()
        inspected_at = data.inspected_at.astimezone(UTC) if data.inspected_at else now
        if inspected_at > now + FUTURE_TOLERANCE:
            minutes = int(FUTURE_TOLERANCE.total_seconds() // 60)
            message = f"{inspected_at.isoformat()} is more than {minutes} minutes after the server's clock"
            raise ValidationFailed(
                f"body.inspected_at: {message}",
                [{"field": "body.inspected_at", "message": message, "type": "inspected_in_future"}],
            )
        async with self._sessions.begin() as session:
            # FOR SHARE: a status change (FOR UPDATE) waits until this inspection is committed.
            state = (await ChargeRepository(session).states([charge_id], lock=True)).get(charge_id)
            refusal = charge_refusal(charge_id, state)
            if refusal is not None:
                raise refusal
            assert state is not None  # a missing charge is refused above
            inspection = await InspectionRepository(session).add(
                Inspection(
                    charge_id=charge_id,
                    product_sku=state[0],
                    characteristic=data.characteristic,
                    inspected=data.inspected,
                    nonconforming=data.nonconforming,
                    units=data.units,
                    nonconformities=data.nonconformities,
                    inspected_at=inspected_at,
                    created_at=now,
                )
            )
            await audit.record(
                session,
                entity="charge",
                entity_id=charge_id,
                action="record_inspection",
                after={"inspection_id": inspection.id, **data.model_dump(exclude_none=True, mode="json")},
            )
        await self._cache.invalidate_tags(quality_tags.tags_for_inspection(charge_id, state[0]))
        return inspection

    async def page(self, charge_id: int, query: InspectionListQuery) -> bytes:
        """One keyset page of a charge's inspections, oldest first, cached; NotFound if no such charge."""
        await charge_state(self._sessions, self._cache, charge_id)
        after = decode_cursor(query.cursor)

        async def load() -> bytes:
            async with self._sessions() as session:
                rows = await InspectionRepository(session).page(
                    charge_id,
                    characteristic=query.characteristic,
                    after=after,
                    limit=rows_to_fetch(query.limit),
                )
            page = page_of(rows, query.limit, key=lambda row: (row.inspected_at, row.id))
            return orjson.dumps(page.document(inspection_dict))

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("inspections", charge_id, *sorted(query.model_dump(mode="json").items())),
            loader=load,
            tags=quality_tags.charge_inspection_tags(charge_id),
        )
