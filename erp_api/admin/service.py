"""Cache administration as a use case: read the counters, invalidate tags by hand (audited)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.audit import trail as audit
from erp_api.errors import ServiceUnavailable

AUDIT_ENTITY = "cache"


class CacheAdminService:
    """What an admin may do to the cache of the running processes."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: CacheManager) -> None:
        self._sessions = sessions
        self._cache = cache

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per namespace (hits, misses, loads, errors, ...) of this process's cache."""
        return self._cache.stats()

    async def invalidate(self, tags: Iterable[str]) -> list[str]:
        """Invalidate ``tags`` in every process, then record it in the audit trail; returns the tags sorted.

        Raises ServiceUnavailable (nothing recorded) when the cache backend cannot be reached.
        """
        unique = sorted(set(tags))
        if not await self._cache.invalidate_tags(unique):
            raise ServiceUnavailable("the cache backend is unreachable; entries expire within their TTL")
        async with self._sessions.begin() as session:
            await audit.record(
                session, entity=AUDIT_ENTITY, entity_id="tags", action="invalidate", after={"tags": unique}
            )
        return unique
