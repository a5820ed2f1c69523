"""Durable writes of measurements: one transaction per call, committed, then the cache invalidated.

The charge of every row is read and share-locked in the same transaction as the insert, so a row is
never stored for a charge that is gone, released or rejected at commit time, whatever was checked before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.audit import trail as audit
from erp_api.charges.repository import ChargeRepository
from erp_api.charges.states import ChargeStatus, is_immutable
from erp_api.db import utcnow
from erp_api.errors import ApiError, Conflict, NotFound
from erp_api.events.log import EventType, record_event
from erp_api.quality import cache_tags as quality_tags
from erp_api.quality.alerts.rule_checks import RuleCheckRepository, SeriesCommit, series_commits
from erp_api.quality.records import NewMeasurement, StoredMeasurement
from erp_api.quality.repository import MeasurementRepository, SpecRepository
from erp_api.quality.summaries.rollups import SeriesRollups
from erp_api.quality.summaries.series_stats import Limits, Point
from erp_api.quality.validation import batch_refusal, measurement_refusal

log = structlog.get_logger("erp_api.quality")


def charge_refusal(charge_id: int, state: tuple[str, str] | None) -> ApiError | None:
    """Why a charge takes no measurements (it does not exist, or it is released or rejected), or None."""
    if state is None:
        return NotFound(f"charge {charge_id} does not exist")
    if is_immutable(ChargeStatus(state[1])):
        return Conflict(
            f"charge {charge_id} is {state[1]}; it takes no more measurements", extra={"current": state[1]}
        )
    return None


def _row_refusal(
    row: NewMeasurement, state: tuple[str, str] | None, known: Mapping[str, Collection[str]], now: datetime
) -> ApiError | None:
    refusal = charge_refusal(row.charge_id, state)
    if refusal is not None or state is None:
        return refusal
    product_sku = state[0]
    return measurement_refusal(
        row.parameter, row.measured_at, product_sku=product_sku, known=known[product_sku], now=now
    )


def _limits(known: Mapping[str, Mapping[str, Limits]]) -> dict[tuple[str, str], Limits]:
    return {(sku, parameter): limits for sku, specs in known.items() for parameter, limits in specs.items()}


async def _record_added(session: AsyncSession, counts: Counter[tuple[int, str, str]]) -> None:
    """One ``measurements.added`` event for the commit, counting rows per (charge, parameter)."""
    if not counts:
        return
    charge_ids = sorted({charge_id for charge_id, _, _ in counts})
    skus = sorted({sku for _, sku, _ in counts})
    await record_event(
        session,
        EventType.MEASUREMENTS_ADDED,
        {
            "count": sum(counts.values()),
            "series": [
                {"charge_id": charge_id, "product_sku": sku, "parameter": parameter, "count": n}
                for (charge_id, sku, parameter), n in sorted(counts.items())
            ],
            "charge_ids": charge_ids,
            "product_skus": skus,
        },
        charge_id=charge_ids[0] if len(charge_ids) == 1 else None,
        product_sku=skus[0] if len(skus) == 1 else None,
    )


class MeasurementWriter:
    """Writes measurements and invalidates what they change; used by the ingestor and the service."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: CacheManager,
        *,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._cache = cache
        # Called after each commit that stored measurements: wakes the rule checker (rule_check_runner.py).
        self._on_commit = on_commit

    async def write(self, rows: Sequence[NewMeasurement]) -> list[StoredMeasurement | ApiError]:
        """Store ``rows`` in one transaction; per row, the stored measurement or why it was refused.

        A refused row (its charge is gone or takes no measurements, its parameter has no spec, it is
        measured in the future: ``erp_api.quality.validation``) does not fail the others. Database errors
        raise and nothing is stored.
        """
        async with self._sessions.begin() as session:
            repository = MeasurementRepository(session)
            # FOR SHARE: a status change (FOR UPDATE) waits until the measurements are committed.
            states = await ChargeRepository(session).states([row.charge_id for row in rows], lock=True)
            # The specs of every product involved in one query: a row for a parameter without one is refused.
            known = await SpecRepository(session).parameters_by_product([sku for sku, _ in states.values()])
            now = utcnow()
            refusals = [_row_refusal(row, states.get(row.charge_id), known, now) for row in rows]
            accepted = [row for row, refusal in zip(rows, refusals, strict=True) if refusal is None]
            stored = await repository.insert_returning(accepted, now) if accepted else []
            # The outbox of the rule check, committed with the rows it names (rule_checks.py).
            await RuleCheckRepository(session).enqueue(
                series_commits(
                    (
                        (row.product_sku, row.parameter, measurement.id)
                        for row, measurement in zip(accepted, stored, strict=True)
                    ),
                    now,
                )
            )
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
            # Last before the commit: the series' rollup row stays locked only until then (rollups.py).
            await SeriesRollups(session).added(
                (
                    (
                        row.product_sku,
                        row.parameter,
                        Point(measurement.measured_at, measurement.id, measurement.value),
                    )
                    for row, measurement in zip(accepted, stored, strict=True)
                ),
                limits=_limits(known),
            )
            await _record_added(
                session, Counter((row.charge_id, row.product_sku, row.parameter) for row in accepted)
            )
        if stored:
            self._committed()
        await self._invalidate({(row.charge_id, row.product_sku) for row in accepted})
        remaining = iter(stored)
        return [next(remaining) if refusal is None else refusal for refusal in refusals]

    async def write_batch(self, charge_id: int, items: Sequence[tuple[str, float, datetime]]) -> int:
        """Store (parameter, value, measured_at) items of one charge all or nothing.

        Raises NotFound or Conflict when the charge takes no measurements, ValidationFailed naming the
        items refused by ``erp_api.quality.validation``.
        """
        async with self._sessions.begin() as session:
            repository = MeasurementRepository(session)
            states = await ChargeRepository(session).states([charge_id], lock=True)
            refusal = charge_refusal(charge_id, states.get(charge_id))
            if refusal is not None:
                raise refusal
            product_sku = states[charge_id][0]
            now = utcnow()
            known = await SpecRepository(session).parameters_by_product([product_sku])
            invalid = batch_refusal(items, product_sku=product_sku, known=known[product_sku], now=now)
            if invalid is not None:
                raise invalid
            # COPY returns no ids: every id it assigns is above the highest one stored before it.
            id_floor = await repository.max_id()
            count = await repository.insert_bulk(
                [(charge_id, product_sku, parameter, value, at, now) for parameter, value, at in items]
            )
            counts = Counter(parameter for parameter, _, _ in items)
            # Read back with their ids (the primary key from id_floor on): the rollups then take them as
            # they take single writes, appending to each hour without reading the hour's history.
            added = await repository.added_since(id_floor, charge_id, now)
            first_ids: dict[str, int] = {}
            for parameter, _at, point_id, _value in added:
                first_ids[parameter] = min(point_id, first_ids.get(parameter, point_id))
            await RuleCheckRepository(session).enqueue(
                SeriesCommit(product_sku, parameter, first_ids[parameter], n, now)
                for parameter, n in sorted(counts.items())
            )
            await audit.record(
                session,
                entity="charge",
                entity_id=charge_id,
                action="record_measurements",
                after={"count": count, "parameters": sorted({parameter for parameter, _, _ in items})},
            )
            await SeriesRollups(session).added(
                (
                    (product_sku, parameter, Point(measured_at, point_id, value))
                    for parameter, measured_at, point_id, value in added
                ),
                limits=_limits(known),
            )
            await _record_added(
                session, Counter({(charge_id, product_sku, parameter): n for parameter, n in counts.items()})
            )
        self._committed()
        await self._invalidate({(charge_id, product_sku)})
        return count

    def _committed(self) -> None:
        if self._on_commit is not None:
            self._on_commit()

    async def _invalidate(self, series: set[tuple[int, str]]) -> None:
        if not series:
            return
        if not await self._cache.invalidate_tags(quality_tags.tags_for_measurements(series)):
            # Committed all the same; the cache stops serving until it has caught up (cache/manager.py).
            log.warning("measurement_invalidation_missed", series=len(series))
