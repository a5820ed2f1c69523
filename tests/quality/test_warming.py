"""Cache warming loads the summaries dashboards ask for, and skips a cache no other process shares."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager, MemoryBackend
from erp_api.quality.models import QualitySpec
from erp_api.quality.schemas import SummaryQuery
from erp_api.quality.service import QualityService
from erp_api.quality.warming import SummaryWarmer


async def test_warming_loads_each_products_summary_so_the_next_read_is_a_hit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        session.add_all(
            QualitySpec(product_sku=sku, parameter="diameter", unit="mm", lsl=9.0, usl=11.0)
            for sku in ("PUMP-A", "VALVE-B")
        )
    cache = CacheManager(MemoryBackend(max_entries=100, max_bytes=2**20), prefix="t", default_ttl=60)
    quality = QualityService(sessions, cache)
    report = await SummaryWarmer(sessions, quality, shared_cache=True).warm()
    assert report.summaries == 3  # all products, then each of the two
    misses = cache.stats()["quality"]["misses"]
    await quality.summary(SummaryQuery(product_sku="VALVE-B"))
    await quality.summary(SummaryQuery())
    assert cache.stats()["quality"]["hits"] == 2
    assert cache.stats()["quality"]["misses"] == misses
    await cache.close()


async def test_warming_a_cache_private_to_the_worker_is_skipped(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cache = CacheManager(MemoryBackend(max_entries=100, max_bytes=2**20), prefix="t", default_ttl=60)
    report = await SummaryWarmer(sessions, QualityService(sessions, cache), shared_cache=False).warm()
    assert report.summaries == 0 and report.skipped
    assert "quality" not in cache.stats()
    await cache.close()
