"""Durable writes of measurements: one transaction per call, committed, then the cache invalidated.

The charge of every row is read and share-locked in the same transaction as the insert, so a row is
never stored for a charge that is gone or rejected at commit time, whatever was checked before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.audit import trail as audit
from erp_api.charges.states import ChargeStatus
from erp_api.db import utcnow
from erp_api.errors import ApiError, Conflict, NotFound
from erp_api.quality import cache_tags as quality_tags
from erp_api.quality.records import NewMeasurement, StoredMeasurement
from erp_api.quality.repository import MeasurementRepository

log = structlog.get_logger("erp_api.quality")


def charge_refusal(charge_id: int, state: tuple[str, str] | None) -> ApiError | None:
    """Why a charge takes no measurements (it does not exist, or it is rejected), or None."""
    if state is None:
        return NotFound(f"charge {charge_id} does not exist")
    if state[1] == ChargeStatus.REJECTED:
        return Conflict(
            f"charge {charge_id} is rejected; it takes no more measurements", extra={"current": state[1]}
        )
    return None


class MeasurementWriter:
    """Writes measurements and invalidates what they change; used by the ingestor and the service."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: CacheManager) -> None:
        self._sessions = sessions
        self._cache = cache

    async def write(self, rows: Sequence[NewMeasurement]) -> list[StoredMeasurement | ApiError]:
        """Store ``rows`` in one transaction; per row, the stored measurement or why it was refused.

        A refused row (its charge is gone or rejected) does not fail the others. Database errors
        raise and nothing is stored.
        """
        async with self._sessions.begin() as session:
            repository = MeasurementRepository(session)
            states = await repository.charge_states([row.charge_id for row in rows], lock=True)
            refusals = [charge_refusal(row.charge_id, states.get(row.charge_id)) for row in rows]
            accepted = [row for row, refusal in zip(rows, refusals, strict=True) if refusal is None]
            stored = await repository.insert_returning(accepted, utcnow()) if accepted else []
            await audit.record_many(
                session,
                [
                    audit.AuditEntry(
                        "charge",
                        row.charge_id,
                        "record_measurements",
                        after={"count": 1, "parameter": row.parameter, "measurement_id": measurement.id},
                        attribution=row.attribution,
                    )
                    for row, measurement in zip(accepted, stored, strict=True)
                ],
            )
        await self._invalidate({(row.charge_id, row.product_sku) for row in accepted})
        remaining = iter(stored)
        return [next(remaining) if refusal is None else refusal for refusal in refusals]

    async def write_batch(self, charge_id: int, items: Sequence[tuple[str, float, datetime]]) -> int:
        """Store (parameter, value, measured_at) items of one charge all or nothing.

        Raises NotFound or Conflict when the charge takes no measurements.
        """
        async with self._sessions.begin() as session:
            repository = MeasurementRepository(session)
            states = await repository.charge_states([charge_id], lock=True)
            refusal = charge_refusal(charge_id, states.get(charge_id))
            if refusal is not None:
                raise refusal
            product_sku = states[charge_id][0]
            now = utcnow()
            count = await repository.insert_bulk(
                [(charge_id, product_sku, parameter, value, at, now) for parameter, value, at in items]
            )
            await audit.record(
                session,
                entity="charge",
                entity_id=charge_id,
                action="record_measurements",
                after={"count": count, "parameters": sorted({parameter for parameter, _, _ in items})},
            )
        await self._invalidate({(charge_id, product_sku)})
        return count

    async def _invalidate(self, series: set[tuple[int, str]]) -> None:
        if not series:
            return
        if not await self._cache.invalidate_tags(quality_tags.tags_for_measurements(series)):
            # Committed all the same; the cache stops serving until it has caught up (cache/manager.py).
            log.warning("measurement_invalidation_missed", series=len(series))
