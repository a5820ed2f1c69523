"""The contract every cache backend fulfils: versioned entries over plain keys.

A backend stores entries under keys and keeps one version number per *version key* (the manager
passes its epoch key first, then one key per tag). The rules that make invalidation race-free:

- ``capture(version_keys)`` returns the current versions, creating a missing version key at the
  backend's current clock value; the manager calls it BEFORE running a loader.
- ``set(...)`` stores an entry together with the versions captured for it.
- ``get(key, version_keys)`` returns a ``Hit`` only if the entry was stored with exactly these
  version keys and every one of them still holds the captured version; a missing version key never
  matches.
- ``invalidate(version_keys)`` gives each key a new version from a clock that only moves forward,
  so it is greater than any version that key (or any other) held before. A version key that was
  evicted and is re-created therefore never returns to an older value.

A stale value thus cannot come back after an invalidation: its entry holds a version the key can
never take again. Backend failures are raised as ``BackendUnavailable`` and nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NamedTuple, TypeAlias

__all__ = ["MISS", "BackendUnavailable", "CacheBackend", "EvictionListener", "Hit", "Miss", "Versions"]

Versions: TypeAlias = tuple[object, ...]
"""Opaque, hashable version numbers as a backend returns them from ``capture``/``get``."""

EvictionListener: TypeAlias = Callable[[str], None]
"""Called with the namespace of each entry a backend evicts to stay within its bounds."""


class Hit(NamedTuple):
    """A valid entry: the value's format tag and its serialized bytes."""

    fmt: int
    data: bytes


class Miss(NamedTuple):
    """No valid entry; ``versions`` are the current versions if the read observed all of them."""

    versions: Versions | None


MISS = Miss(None)


class BackendUnavailable(Exception):
    """The backend could not be reached or did not answer in time."""


class CacheBackend(ABC):
    """Storage for versioned cache entries (see the module docstring for the invariants)."""

    enabled: bool = True
    """False for a backend that never stores anything; the manager then just runs loaders."""

    max_ttl: float = float("inf")
    """Longest entry TTL, in seconds, this backend accepts."""

    @abstractmethod
    async def get(self, key: str, version_keys: tuple[str, ...]) -> Hit | Miss:
        """One read: the entry if present, unexpired and current; otherwise a ``Miss``."""

    @abstractmethod
    async def capture(self, clock_key: str, version_keys: tuple[str, ...]) -> Versions:
        """Current versions of ``version_keys``, creating missing ones at the current clock value."""

    @abstractmethod
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
        """Store ``value`` for ``ttl`` seconds unless ``versions`` are no longer current."""

    @abstractmethod
    async def invalidate(self, clock_key: str, version_keys: tuple[str, ...]) -> None:
        """Move every key in ``version_keys`` to a new, never used version, atomically."""

    @abstractmethod
    async def ping(self) -> None:
        """Return if the backend answers; raise ``BackendUnavailable`` otherwise."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the backend is not used afterwards."""

    def stats(self) -> dict[str, int]:
        """The backend's own counters (a tiered backend's: its L1 and its invalidation channel)."""
        return {}

    def set_eviction_listener(self, listener: EvictionListener | None) -> None:
        """Register a callback for evictions (backends that evict on their own may ignore it)."""
        del listener

    def bind_prefix(self, prefix: str) -> None:
        """Called once by the manager that owns this backend, with its key prefix.

        Backends shared between processes name their per-prefix invalidation channel after it.
        """
        del prefix
