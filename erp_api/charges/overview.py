"""The products and lines the charges name, each with its charges counted by status: what a UI
fills its filters and dashboards from, in one GROUP BY query, cached until any charge changes."""

from __future__ import annotations

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.charges import cache_tags as charge_tags
from erp_api.charges.repository import ChargeRepository, Facet
from erp_api.charges.states import ChargeStatus

NAMESPACE = "charges"
MAX_VALUES = 1_000
"""An overview lists at most this many products (lines); ``truncated`` says when there are more."""


class ChargeOverview:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: CacheManager) -> None:
        self._sessions = sessions
        self._cache = cache

    async def document(self, facet: Facet) -> bytes:
        """``{"items": [{<facet>: name, "charges": n, "by_status": {...}}], "truncated": bool}``:
        the first ``MAX_VALUES`` products (lines) in code point order, every status counted."""
        return await self._cache.get_or_load(
            NAMESPACE,
            key=("overview", facet),
            loader=lambda: self._load(facet),
            tags=charge_tags.overview_tags(),
        )

    async def _load(self, facet: Facet) -> bytes:
        async with self._sessions() as session:
            rows = await ChargeRepository(session).facet_counts(facet, MAX_VALUES)
        counts: dict[str, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(row.value, {status.value: 0 for status in ChargeStatus})[row.status] = row.count
        items = [
            {facet: value, "charges": sum(by_status.values()), "by_status": by_status}
            for value, by_status in list(counts.items())[:MAX_VALUES]
        ]
        return orjson.dumps({"items": items, "truncated": len(counts) > MAX_VALUES})
