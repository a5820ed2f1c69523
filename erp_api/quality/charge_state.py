"""A charge's product and status as the quality reads need them: cached under the charge's own tag.

Every read of one charge's quality data (measurements, inspections, charts) first asks whether the
charge exists and which product it makes; the answer is one cache entry per charge, shared by them all
and invalidated with the charge (``erp_api.charges.cache_tags.charge_tag``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.charges import cache_tags as charge_tags
from erp_api.charges.repository import ChargeRepository
from erp_api.errors import NotFound

NAMESPACE = "quality"


async def charge_state(
    sessions: async_sessionmaker[AsyncSession], cache: CacheManager, charge_id: int
) -> tuple[str, str]:
    """(product_sku, status) of a charge; NotFound if there is none."""

    async def load() -> list[str]:
        async with sessions() as session:
            state = (await ChargeRepository(session).states([charge_id])).get(charge_id)
        if state is None:
            raise NotFound(f"charge {charge_id} does not exist")
        return list(state)

    product_sku, status = await cache.get_or_load(
        NAMESPACE, key=("charge-state", charge_id), loader=load, tags=[charge_tags.charge_tag(charge_id)]
    )
    return product_sku, status
