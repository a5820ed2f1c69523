"""Cache backends and ``build_backend``, the one place that picks one from configuration."""

from __future__ import annotations

from typing import Literal

from cache.backends.base import BackendUnavailable, CacheBackend, Hit, Miss, Versions
from cache.backends.memory import MemoryBackend
from cache.backends.null import NullBackend
from cache.backends.redis import RedisBackend

__all__ = [
    "BackendUnavailable",
    "CacheBackend",
    "Hit",
    "MemoryBackend",
    "Miss",
    "NullBackend",
    "RedisBackend",
    "Versions",
    "build_backend",
]

BackendKind = Literal["memory", "redis", "none"]


def build_backend(
    kind: BackendKind,
    *,
    redis_url: str | None = None,
    max_entries: int = 10_000,
    max_bytes: int = 64 * 2**20,
    max_connections: int = 50,
    socket_timeout: float = 0.25,
    socket_connect_timeout: float = 0.25,
    pool_timeout: float | None = None,
    version_ttl: float = 7 * 86_400.0,
) -> CacheBackend:
    """Create the backend named by ``kind``.

    ``"memory"`` uses ``max_entries``/``max_bytes`` (one worker process only); ``"redis"`` needs
    ``redis_url`` and uses the connection settings; ``"none"`` switches caching off. Options that do
    not apply to ``kind`` are ignored, so one settings object can configure any kind.
    """
    if kind == "memory":
        return MemoryBackend(max_entries=max_entries, max_bytes=max_bytes)
    if kind == "redis":
        if not redis_url:
            raise ValueError("the redis cache backend needs redis_url")
        return RedisBackend(
            redis_url,
            max_connections=max_connections,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            pool_timeout=pool_timeout,
            version_ttl=version_ttl,
        )
    if kind == "none":
        return NullBackend()
    raise ValueError(f"unknown cache backend {kind!r}; expected 'memory', 'redis' or 'none'")
