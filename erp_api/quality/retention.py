"""Retention: delete measurements and finished analyses older than a configurable age (off by default).

Deletes in bounded batches, each its own short transaction, so a large backlog never holds a long
lock; a run stops at its time budget (within the task's time limit) and the next run continues.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.analyses.repository import AnalysisRepository
from erp_api.db import utcnow
from erp_api.quality import cache_tags as quality_tags
from erp_api.quality.repository import MeasurementRepository
from erp_api.quality.summaries.rollups import SeriesRollups
from erp_api.quality.summaries.series_stats import hour_of

BATCH = 1_000


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime
    measurements_deleted: int
    analyses_deleted: int
    complete: bool
    """False if the run stopped at its time budget with rows left; the next run continues."""

    def as_dict(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "measurements_deleted": self.measurements_deleted,
            "analyses_deleted": self.analyses_deleted,
            "complete": self.complete,
        }


class RetentionCleanup:
    """Deletes in batches of 1,000 until nothing older is left or ``budget_seconds`` have passed."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: CacheManager,
        *,
        max_age_days: int,
        budget_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._cache = cache
        self._max_age = timedelta(days=max_age_days)
        self._budget = budget_seconds

    async def run(self) -> RetentionReport:
        cutoff = utcnow() - self._max_age
        deadline = time.monotonic() + self._budget
        measurements, measurements_done = await self._delete_measurements(cutoff, deadline)
        analyses, analyses_done = 0, False
        while time.monotonic() < deadline:
            async with self._sessions.begin() as session:
                deleted = await AnalysisRepository(session).delete_finished_before(cutoff, BATCH)
            analyses += deleted
            if deleted < BATCH:
                analyses_done = True
                break
        return RetentionReport(cutoff, measurements, analyses, measurements_done and analyses_done)

    async def _delete_measurements(self, cutoff: datetime, deadline: float) -> tuple[int, bool]:
        total = 0
        while time.monotonic() < deadline:
            async with self._sessions.begin() as session:
                rows = await MeasurementRepository(session).delete_measured_before(cutoff, BATCH)
                await SeriesRollups(session).removed(
                    {(row.product_sku, row.parameter, hour_of(row.measured_at)) for row in rows}
                )
            total += len(rows)
            if rows:
                # Summaries and charts that included the deleted points must be recomputed.
                await self._cache.invalidate_tags(
                    quality_tags.tags_for_measurements({(row.charge_id, row.product_sku) for row in rows})
                )
            if len(rows) < BATCH:
                return total, True
        return total, False
