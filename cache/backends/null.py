"""The backend for caching switched off: nothing is stored, every call runs its loader."""

from __future__ import annotations

from cache.backends.base import MISS, CacheBackend, Hit, Miss, Versions

__all__ = ["NullBackend"]


class NullBackend(CacheBackend):
    """Stores nothing; the manager skips it entirely and calls loaders directly."""

    enabled = False

    async def get(self, key: str, version_keys: tuple[str, ...]) -> Hit | Miss:
        return MISS

    async def capture(self, clock_key: str, version_keys: tuple[str, ...]) -> Versions:
        return ()

    async def set(
        self,
        *,
        namespace: str,
        key: str,
        version_keys: tuple[str, ...],
        versions: Versions,
        value: Hit,
        ttl: float,
    ) -> None:
        return None

    async def invalidate(self, clock_key: str, version_keys: tuple[str, ...]) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
