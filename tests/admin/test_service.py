"""Cache administration: an invalidation reaches the cache first and is audited only once it has."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import BackendUnavailable, CacheManager, MemoryBackend
from erp_api.admin.service import CacheAdminService
from erp_api.audit.models import AuditEvent
from erp_api.errors import ServiceUnavailable


class UnreachableOnInvalidate(MemoryBackend):
    """Serves reads, but cannot take an invalidation (as a Redis that went away would)."""

    async def invalidate(self, clock_key: str, version_keys: tuple[str, ...]) -> None:
        raise BackendUnavailable("down")


def manager(backend: MemoryBackend) -> CacheManager:
    return CacheManager(backend, prefix="t", default_ttl=60)


async def audit_rows(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, object]]:
    async with sessions() as session:
        rows = (await session.scalars(select(AuditEvent).where(AuditEvent.entity == "cache"))).all()
    return [(row.action, row.entity_id, row.after) for row in rows]


async def test_invalidating_makes_tagged_entries_reload_and_is_audited_once_with_the_sorted_tags(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cache = manager(MemoryBackend())
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    service = CacheAdminService(sessions, cache)
    assert await cache.get_or_load("ns", key=("k",), loader=load, tags=["b"]) == 1
    assert await service.invalidate(["b", "a", "b"]) == ["a", "b"]
    assert await cache.get_or_load("ns", key=("k",), loader=load, tags=["b"]) == 2
    assert await audit_rows(sessions) == [("invalidate", "tags", {"tags": ["a", "b"]})]
    assert service.stats()["ns"]["misses"] == 2


async def test_an_unreachable_backend_is_a_503_and_nothing_is_audited(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    service = CacheAdminService(sessions, manager(UnreachableOnInvalidate()))
    with pytest.raises(ServiceUnavailable) as raised:
        await service.invalidate(["charge:1"])
    assert raised.value.status == 503
    assert await audit_rows(sessions) == []
