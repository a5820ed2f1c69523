"""Namespaces: their names, their per-namespace counters, and the hook that exports them as metrics."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, TypeAlias

__all__ = ["EVENTS", "IDENTIFIER", "INVALIDATION_STATS", "Event", "EventHook", "NamespaceStats", "Namespaces"]

Event = Literal["hit", "miss", "coalesced", "bypass", "error", "eviction"]
EVENTS: tuple[Event, ...] = ("hit", "miss", "coalesced", "bypass", "error", "eviction")

EventHook: TypeAlias = Callable[[str, str], None]
"""Called as ``hook(namespace, event)`` for every counted event; must be fast and must not raise."""

IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")
"""What a namespace or a key prefix may look like (no ``:``, which separates key parts)."""

INVALIDATION_STATS = "_invalidation"
"""Pseudo-namespace under which failed or skipped invalidations are counted as errors."""

MAX_NAMESPACES = 1024

_COUNTERS: dict[str, str] = {
    "hit": "hits",
    "miss": "misses",
    "coalesced": "coalesced",
    "bypass": "bypassed",
    "error": "errors",
    "eviction": "evictions",
}


class NamespaceStats:
    """One namespace: its entry key prefix and its counters.

    Every call ends as exactly one of ``hits`` (served from the cache), ``misses`` (ran the loader
    and filled the cache), ``coalesced`` (waited for a load another caller started) or ``bypassed``
    (ran the loader without the cache: caching off, or the backend unavailable). ``errors`` counts
    backend failures, ``evictions`` entries a bounded backend dropped to make room.
    """

    __slots__ = ("bypassed", "coalesced", "errors", "evictions", "hits", "key_prefix", "misses", "name")

    def __init__(self, name: str, key_prefix: str) -> None:
        self.name = name
        self.key_prefix = key_prefix
        self.hits = 0
        self.misses = 0
        self.coalesced = 0
        self.bypassed = 0
        self.errors = 0
        self.evictions = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "coalesced": self.coalesced,
            "bypassed": self.bypassed,
            "errors": self.errors,
            "evictions": self.evictions,
        }


class Namespaces:
    """The namespaces a manager has met: a bounded set of fixed names, each with its counters."""

    __slots__ = ("_entry_prefix", "_on_event", "by_name")

    def __init__(self, entry_prefix: str, on_event: EventHook | None) -> None:
        self._entry_prefix = entry_prefix
        self._on_event = on_event
        self.by_name: dict[str, NamespaceStats] = {}

    def get(self, name: str) -> NamespaceStats:
        """The namespace called ``name``, registered on first use (``ValueError`` for a bad name)."""
        ns = self.by_name.get(name)
        if ns is None:
            if name != INVALIDATION_STATS and not IDENTIFIER.match(name):
                raise ValueError(f"namespace must match {IDENTIFIER.pattern}, got {name!r}")
            if len(self.by_name) >= MAX_NAMESPACES:
                raise ValueError(f"more than {MAX_NAMESPACES} namespaces: namespaces must be fixed names")
            ns = self.by_name[name] = NamespaceStats(name, f"{self._entry_prefix}{name}:")
        return ns

    def count(self, ns: NamespaceStats, event: Event) -> None:
        """Count ``event`` in ``ns`` and report it to the hook (hits are counted inline instead)."""
        attribute = _COUNTERS[event]
        setattr(ns, attribute, getattr(ns, attribute) + 1)
        if self._on_event is not None:
            self._on_event(ns.name, event)

    def evicted(self, name: str) -> None:
        """Eviction listener for bounded backends."""
        ns = self.by_name.get(name)
        if ns is not None:
            self.count(ns, "eviction")

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per namespace."""
        return {name: ns.as_dict() for name, ns in self.by_name.items()}
