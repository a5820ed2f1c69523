"""A small in-process map whose entries expire after a TTL and whose size is bounded (LRU)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lookup(NamedTuple, Generic[V]):
    """What ``TTLCache.get`` found: ``hit`` and ``value``, and ``due`` for a refresh (a hit only)."""

    hit: bool
    value: V | None
    due: bool


_MISS: Lookup[Any] = Lookup(False, None, False)


class TTLCache(Generic[K, V]):
    """At most ``max_entries`` values, each served for ``ttl_seconds`` after it was read at its source.

    A hit in the last ``refresh_share`` of an entry's TTL is ``due``: the caller may refresh it
    ahead of its expiry. Storing a value again restarts its TTL from the moment it was read, never
    from when it arrived, so a refresh cannot serve a value longer than ``ttl_seconds`` after the
    source said it.

    Not shared between processes, and not locked: it is used from one event loop only.
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        refresh_share: float = 0.0,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._refresh_before = ttl_seconds * refresh_share
        # key -> (refresh from, expires, value)
        self._entries: OrderedDict[K, tuple[float, float, V]] = OrderedDict()

    def get(self, key: K) -> Lookup[V]:
        """A live entry's value (and whether it is due for a refresh); an expired entry is dropped."""
        entry = self._entries.get(key)
        if entry is None:
            return _MISS
        refresh_from, expires, value = entry
        now = self._clock()
        if expires <= now:
            del self._entries[key]
            return _MISS
        self._entries.move_to_end(key)
        return Lookup(True, value, now >= refresh_from)

    def put(self, key: K, value: V, *, read_at: float | None = None) -> None:
        """Store ``value`` as read from its source at ``read_at`` (this cache's clock; default now)."""
        if self._ttl <= 0:
            return
        expires = (self._clock() if read_at is None else read_at) + self._ttl
        if expires <= self._clock():
            return
        self._entries[key] = (expires - self._refresh_before, expires, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def discard_if(self, predicate: Callable[[V], bool]) -> int:
        """Drop every entry whose value satisfies ``predicate``; returns how many."""
        doomed = [key for key, (_refresh, _expires, value) in self._entries.items() if predicate(value)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
