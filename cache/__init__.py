"""An async caching library: versioned tags, stampede protection, Redis or in-memory storage.

Start with ``build_backend`` and ``CacheManager``; ``cache/README.md`` explains the design.
"""

from __future__ import annotations

from cache.backends import (
    BackendUnavailable,
    CacheBackend,
    MemoryBackend,
    NullBackend,
    RedisBackend,
    TieredBackend,
    build_backend,
)
from cache.breaker import CircuitBreaker
from cache.decorator import CachedFunction
from cache.keys import encode_key
from cache.manager import CacheManager, Entry
from cache.stats import EventHook, NamespaceStats

__all__ = [
    "BackendUnavailable",
    "CacheBackend",
    "CacheManager",
    "CachedFunction",
    "CircuitBreaker",
    "Entry",
    "EventHook",
    "MemoryBackend",
    "NamespaceStats",
    "NullBackend",
    "RedisBackend",
    "TieredBackend",
    "build_backend",
    "encode_key",
]
