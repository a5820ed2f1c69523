"""An in-process backend: LRU, bounded by entry count and by bytes, storing only immutable bytes.

For ONE worker process: each process has its own copy, and an invalidation in one process does not
reach another. Deployments with several workers must use the Redis backend.

Version keys live in a table bounded by ``max_versions`` (LRU as well). Forgetting a version key is
safe because versions come from one counter that only moves forward: a forgotten key is re-created at
the counter's current value, which is at least as new as anything it held before and strictly newer
than every version captured before its last invalidation. Entries still holding a forgotten key's old
version therefore stay invalid; at worst they cost a reload.

Not thread-safe: use it from one event loop (no method awaits, so no locks are needed there). The
synchronous twins of the backend methods (``lookup``, ``capture_now``, ``store_now``) and
``discard_versions``/``clear`` let the tiered backend use it as its per-process first level.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from cache.backends.base import MISS, CacheBackend, EvictionListener, Hit, Miss, Versions

__all__ = ["MemoryBackend"]

_MIN_VERSIONS = 64


class _Entry:
    __slots__ = ("expires_at", "hit", "namespace", "size", "version_keys", "versions")

    def __init__(
        self,
        *,
        hit: Hit,
        version_keys: tuple[str, ...],
        versions: Versions,
        expires_at: float,
        size: int,
        namespace: str,
    ) -> None:
        self.hit = hit
        self.version_keys = version_keys
        self.versions = versions
        self.expires_at = expires_at
        self.size = size
        self.namespace = namespace


class MemoryBackend(CacheBackend):
    """LRU cache of bytes within ``max_entries`` entries and ``max_bytes`` bytes.

    An entry's size is the length of its value, its key and its version keys; Python's own per-object
    overhead is not counted. A value larger than ``max_bytes`` is not stored. ``time_source`` exists
    for tests that need to move time forward.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 2**20,
        max_versions: int | None = None,
        time_source: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        versions_bound = max(_MIN_VERSIONS, 4 * max_entries) if max_versions is None else max_versions
        if versions_bound < _MIN_VERSIONS:
            raise ValueError(f"max_versions must be at least {_MIN_VERSIONS}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_versions = versions_bound
        self._time = time_source
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._versions: OrderedDict[str, int] = OrderedDict()
        self._clock = 0
        self._bytes = 0
        self._on_evict: EvictionListener | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(entries, bytes)`` currently held."""
        return len(self._entries), self._bytes

    def set_eviction_listener(self, listener: EvictionListener | None) -> None:
        self._on_evict = listener

    async def get(self, key: str, version_keys: tuple[str, ...]) -> Hit | Miss:
        found = self.lookup(key, version_keys)
        return MISS if found is None else found

    def lookup(self, key: str, version_keys: tuple[str, ...]) -> Hit | None:
        """``get`` without a coroutine: the entry if present, unexpired and current, else None."""
        entry = self._entries.get(key)
        if entry is None or entry.version_keys != version_keys:
            return None
        if self._time() >= entry.expires_at:
            self._drop(key, entry)
            return None
        if tuple(map(self._versions.get, version_keys)) != entry.versions:
            self._drop(key, entry)  # invalidated, or a version was forgotten: at worst a reload
            return None
        self._entries.move_to_end(key)
        return entry.hit

    async def capture(self, clock_key: str, version_keys: tuple[str, ...]) -> Versions:
        return self.capture_now(version_keys)

    def capture_now(self, version_keys: tuple[str, ...]) -> tuple[int, ...]:
        """``capture`` without a coroutine."""
        table = self._versions
        captured: list[int] = []
        for version_key in version_keys:
            version = table.get(version_key)
            if version is None:
                version = table[version_key] = self._clock
            else:
                table.move_to_end(version_key)
            captured.append(version)
        self._trim_versions()
        return tuple(captured)

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
        self.store_now(namespace, key, version_keys, versions, value, ttl)

    def store_now(  # noqa: PLR0917 - the backend's set, positional for the tiered hot path
        self,
        namespace: str,
        key: str,
        version_keys: tuple[str, ...],
        versions: Versions,
        value: Hit,
        ttl: float,
    ) -> bool:
        """``set`` without a coroutine; True if stored (the versions were still current)."""
        table = self._versions
        for version_key, version in zip(version_keys, versions, strict=True):
            if table.get(version_key) != version:
                return False  # invalidated while the value was loading: storing it would only waste space
            table.move_to_end(version_key)
        size = len(value.data) + len(key) + sum(map(len, version_keys))
        if size > self.max_bytes:
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._entries[key] = _Entry(
            hit=value,
            version_keys=version_keys,
            versions=versions,
            expires_at=self._time() + ttl,
            size=size,
            namespace=namespace,
        )
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size
            if self._on_evict is not None:
                self._on_evict(evicted.namespace)
        return True

    async def invalidate(self, clock_key: str, version_keys: tuple[str, ...]) -> None:
        self._clock += 1
        table = self._versions
        for version_key in version_keys:
            table[version_key] = self._clock
            table.move_to_end(version_key)
        self._trim_versions()

    def discard_versions(self, version_keys: Iterable[str]) -> None:
        """Forget these version keys (those not held are skipped): entries and captures that use them
        stop matching, and re-creating one takes a clock value newer than any captured before."""
        self._clock += 1
        table = self._versions
        for version_key in version_keys:
            table.pop(version_key, None)

    def clear(self) -> None:
        """Drop every entry and version key; captures taken before never match again."""
        self._clock += 1
        self._entries.clear()
        self._versions.clear()
        self._bytes = 0

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self.clear()

    def _drop(self, key: str, entry: _Entry) -> None:
        del self._entries[key]
        self._bytes -= entry.size

    def _trim_versions(self) -> None:
        while len(self._versions) > self.max_versions:
            self._versions.popitem(last=False)
