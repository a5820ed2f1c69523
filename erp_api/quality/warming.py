"""Cache warming: compute the quality summaries dashboards ask for before anyone asks.

Only worth doing with a shared cache (Redis): a worker's in-memory cache serves nobody else, so with
the memory backend the job does nothing and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.quality.models import QualitySpec
from erp_api.quality.schemas import SummaryQuery
from erp_api.quality.service import QualityService

MAX_PRODUCTS = 100


@dataclass(frozen=True)
class WarmReport:
    summaries: int
    skipped: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"summaries": self.summaries, "skipped": self.skipped}


class SummaryWarmer:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], quality: QualityService, *, shared_cache: bool
    ) -> None:
        self._sessions = sessions
        self._quality = quality
        self._shared_cache = shared_cache

    async def warm(self) -> WarmReport:
        """Load (on a miss) the all-products summary and each specified product's, at most 100."""
        if not self._shared_cache:
            return WarmReport(0, skipped="the cache is private to each process (ERP_CACHE_BACKEND)")
        async with self._sessions() as session:
            products = list(
                await session.scalars(
                    select(QualitySpec.product_sku)
                    .distinct()
                    .order_by(QualitySpec.product_sku)
                    .limit(MAX_PRODUCTS)
                )
            )
        await self._quality.summary(SummaryQuery())
        for product_sku in products:
            await self._quality.summary(SummaryQuery(product_sku=product_sku))
        return WarmReport(1 + len(products))
