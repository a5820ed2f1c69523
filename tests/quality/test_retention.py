"""Retention deletes what is older than the configured age, and nothing else."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager, MemoryBackend
from erp_api.analyses.models import AnomalyAnalysis
from erp_api.analyses.repository import AnalysisRepository
from erp_api.analyses.states import AnalysisStatus
from erp_api.db import utcnow
from erp_api.quality import cache_tags as quality_tags
from erp_api.quality.models import Measurement
from erp_api.quality.repository import MeasurementRepository
from erp_api.quality.retention import RetentionCleanup
from tests.database import NewAnalysis


async def finished(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis, days_ago: float
) -> int:
    analysis_id = await new_analysis()
    async with sessions.begin() as session:
        await AnalysisRepository(session).claim(analysis_id, status="queued", attempts=0, token="t")
        await AnalysisRepository(session).finish(
            analysis_id, attempts=1, status=AnalysisStatus.SUCCEEDED, result="{}", error=None
        )
        await session.execute(
            update(AnomalyAnalysis)
            .where(AnomalyAnalysis.id == analysis_id)
            .values(finished_at=utcnow() - timedelta(days=days_ago))
        )
    return analysis_id


async def test_old_measurements_and_finished_analyses_are_deleted_recent_ones_kept(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis, charge_id: int
) -> None:
    now = utcnow()
    async with sessions.begin() as session:
        session.add_all(
            Measurement(
                charge_id=charge_id,
                product_sku="PUMP-A",
                parameter="diameter",
                value=float(days),
                measured_at=now - timedelta(days=days),
                created_at=now,
            )
            for days in (400, 380, 366, 300, 1)
        )
    old = await finished(sessions, new_analysis, days_ago=400)
    recent = await finished(sessions, new_analysis, days_ago=10)
    unfinished = await new_analysis()
    cache = CacheManager(MemoryBackend(max_entries=100, max_bytes=2**20), prefix="t", default_ttl=60)
    report = await RetentionCleanup(sessions, cache, max_age_days=365, budget_seconds=30).run()
    async with sessions() as session:
        values = sorted((await session.scalars(select(Measurement.value))).all())
        ids = set((await session.scalars(select(AnomalyAnalysis.id))).all())
        count = await session.scalar(select(func.count()).select_from(Measurement))
    assert (report.measurements_deleted, report.analyses_deleted, report.complete) == (3, 1, True)
    assert values == [1.0, 300.0] and count == 2
    assert ids == {recent, unfinished}
    assert old not in ids
    await cache.close()


async def test_a_run_out_of_time_reports_that_rows_are_left_for_the_next_run(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    await finished(sessions, new_analysis, days_ago=400)
    cache = CacheManager(MemoryBackend(max_entries=100, max_bytes=2**20), prefix="t", default_ttl=60)
    report = await RetentionCleanup(sessions, cache, max_age_days=365, budget_seconds=0).run()
    assert (report.analyses_deleted, report.complete) == (0, False)
    assert (await RetentionCleanup(sessions, cache, max_age_days=365, budget_seconds=30).run()).complete
    await cache.close()


async def store(sessions: async_sessionmaker[AsyncSession], charge_id: int, *days_ago: float) -> None:
    now = utcnow()
    async with sessions.begin() as session:
        session.add_all(
            Measurement(
                charge_id=charge_id,
                product_sku="PUMP-A",
                parameter="diameter",
                value=float(days),
                measured_at=now - timedelta(days=days),
                created_at=now,
            )
            for days in days_ago
        )


async def test_the_repository_deletes_at_most_a_batch_and_names_each_deleted_row(
    sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    await store(sessions, charge_id, 400, 390, 380, 1)
    cutoff = utcnow() - timedelta(days=365)
    batches = []
    for _ in range(3):
        async with sessions.begin() as session:
            batches.append(await MeasurementRepository(session).delete_measured_before(cutoff, 2))
    assert [len(batch) for batch in batches] == [2, 1, 0]
    assert {(row.charge_id, row.product_sku, row.parameter) for batch in batches for row in batch} == {
        (charge_id, "PUMP-A", "diameter")
    }
    async with sessions() as session:
        kept = (await session.scalars(select(Measurement.id))).all()
    assert len(kept) == 1 and kept[0] not in {row[0] for batch in batches for row in batch}


async def test_reads_that_included_deleted_points_are_recomputed(
    sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    await store(sessions, charge_id, 400)
    cache = CacheManager(MemoryBackend(max_entries=100, max_bytes=2**20), prefix="t", default_ttl=60)
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    series, summary = quality_tags.charge_series_tags(charge_id), quality_tags.summary_tags("PUMP-A")

    async def read(tags: list[str]) -> int:
        value: int = await cache.get_or_load("quality", key=tuple(tags), loader=load, tags=tags)
        return value

    assert (await read(series), await read(summary)) == (1, 2)
    assert (await read(series), await read(summary)) == (1, 2), "cached until something changes"
    await RetentionCleanup(sessions, cache, max_age_days=365, budget_seconds=30).run()
    assert (await read(series), await read(summary)) == (3, 4)
    await cache.close()
