"""Cache backends and ``build_backend``, the one place that picks one from configuration."""

from __future__ import annotations

from typing import Literal

from cache.backends.base import BackendUnavailable, CacheBackend, Hit, Miss, Versions
from cache.backends.memory import MemoryBackend
from cache.backends.null import NullBackend
from cache.backends.redis import RedisBackend
from cache.backends.tiered import TieredBackend

__all__ = [
    "BackendUnavailable",
    "CacheBackend",
    "Hit",
    "MemoryBackend",
    "Miss",
    "NullBackend",
    "RedisBackend",
    "TieredBackend",
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
    l1_max_entries: int = 0,
    coherence_window: float = 0.05,
) -> CacheBackend:
    """Create the backend named by ``kind``.

    ``"memory"`` uses ``max_entries``/``max_bytes`` (one worker process only); ``"redis"`` needs
    ``redis_url`` and uses the connection settings; ``"none"`` switches caching off. Options that do
    not apply to ``kind`` are ignored, so one settings object can configure any kind.

    ``"redis"`` with ``l1_max_entries`` > 0 is a ``TieredBackend``: a per-process L1 of that many
    entries (and at most ``max_bytes``) in front of Redis, kept coherent within ``coherence_window``
    seconds over pub/sub.
    """
    if kind == "memory":
        return MemoryBackend(max_entries=max_entries, max_bytes=max_bytes)
    if kind == "redis":
        if not redis_url:
            raise ValueError("the redis cache backend needs redis_url")
        l2 = RedisBackend(
            redis_url,
            max_connections=max_connections,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            pool_timeout=pool_timeout,
            version_ttl=version_ttl,
        )
        if l1_max_entries > 0:
            return TieredBackend(
                l2, max_entries=l1_max_entries, max_bytes=max_bytes, coherence_window=coherence_window
            )
        return l2
    if kind == "none":
        return NullBackend()
    raise ValueError(f"unknown cache backend {kind!r}; expected 'memory', 'redis' or 'none'")
