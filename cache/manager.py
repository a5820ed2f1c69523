"""The cache manager: get-or-load with tags, TTLs, namespaces, stampede protection and outage handling.

Correctness rule: a value computed from data read before an invalidation is never returned by a call
that starts after that invalidation has completed, in this process or any other sharing the backend.
It holds by construction: the versions of an entry's tags (and of this prefix's epoch) are captured
BEFORE its loader runs and stored with the value; a read returns the value only if they are all
still current, and an invalidation moves them to versions never used before. Concurrent misses share
one load only if they observed the same versions, so a caller that starts after an invalidation
never joins a load that started before it.

Backend outages (see ``cache.guard``): failures never reach ``get_or_load`` callers; they run the
loader instead. After ``failure_threshold`` consecutive failures a circuit breaker stops calling the
backend for ``reset_timeout`` seconds, then a background probe checks it. An invalidation that
fails (or is skipped while the circuit is open) returns False and marks the manager dirty: it then
serves nothing from the backend, and a background task (started by that failure, no read needed)
bumps the epoch as soon as the backend answers, trying every ``repair_interval`` seconds; the bump
invalidates every entry of the prefix in every process. Until it lands, other processes that can
reach the backend may serve entries that invalidation covered: it has not completed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple, ParamSpec, TypeVar, cast

from cache.backends.base import BackendUnavailable, CacheBackend, Hit, Versions
from cache.breaker import CircuitBreaker
from cache.decorator import CachedFunction
from cache.guard import BackendGuard
from cache.keys import encode_key
from cache.serializers import RAW, deserialize, serialize
from cache.singleflight import SingleFlight
from cache.stats import IDENTIFIER, INVALIDATION_STATS, EventHook, Namespaces, NamespaceStats
from cache.tags import validate_tags

__all__ = ["INVALIDATION_STATS", "CacheManager", "Entry"]

P = ParamSpec("P")
T = TypeVar("T")

_NO_KWARGS: dict[str, Any] = {}


class _Call(NamedTuple):
    """One call that missed the cache: what its load needs."""

    ns: NamespaceStats
    key: str
    version_keys: tuple[str, ...]
    ttl: float | None
    function: Callable[..., Awaitable[Any]]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class Entry(NamedTuple):
    """Where one cached value lives: its namespace, encoded key and version keys, worked out once
    (``CacheManager.entry``) for a caller that reads the same entry often (``peek_entry``)."""

    ns: NamespaceStats
    key: str
    version_keys: tuple[str, ...]


class CacheManager:
    """Caches loader results in a backend under ``prefix``, which isolates deployments and tests.

    ``default_ttl`` (seconds) applies when a call gives none; each stored TTL is shortened by a random
    fraction of up to ``jitter`` so that entries filled together do not expire together (an entry
    never outlives the TTL asked for). ``on_event(namespace, event)`` is called for every counted
    event (see ``cache.stats``). One manager per backend.

    Outages: ``failure_threshold`` consecutive backend failures open the circuit for
    ``reset_timeout`` seconds; after a missed invalidation the epoch bump is retried every
    ``repair_interval`` seconds until it lands (see ``cache.guard``).
    """

    def __init__(
        self,
        backend: CacheBackend,
        *,
        prefix: str = "cache",
        default_ttl: float = 60.0,
        jitter: float = 0.1,
        on_event: EventHook | None = None,
        failure_threshold: int = 3,
        reset_timeout: float = 5.0,
        repair_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not IDENTIFIER.match(prefix):
            raise ValueError(f"prefix must match {IDENTIFIER.pattern}, got {prefix!r}")
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")
        self._backend = backend
        self._default_ttl = self._checked_ttl(default_ttl, backend)
        self._jitter = jitter
        self._on_event = on_event
        self._clock_key = f"{prefix}:clock"
        self._epoch_key = f"{prefix}:epoch"
        self._tag_prefix = f"{prefix}:v:"
        self._entry_prefix = f"{prefix}:e:"
        self._guard = BackendGuard(
            enabled=backend.enabled,
            breaker=CircuitBreaker(
                failure_threshold=failure_threshold, reset_timeout=reset_timeout, clock=clock
            ),
            repair=lambda: backend.invalidate(self._clock_key, (self._epoch_key,)),
            ping=backend.ping,
            repair_interval=repair_interval,
            clock=clock,
        )
        self._namespaces = Namespaces(self._entry_prefix, on_event)
        self._flights: SingleFlight[tuple[str, tuple[str, ...], Versions], Hit] = SingleFlight()
        backend.set_eviction_listener(self._namespaces.evicted)
        backend.bind_prefix(prefix)

    # -- public API ---------------------------------------------------------------------------

    async def get_or_load(
        self,
        namespace: str,
        key: Any,
        loader: Callable[[], Awaitable[T]],
        *,
        tags: Iterable[str] = (),
        ttl: float | None = None,
    ) -> T:
        """Return the cached value for ``(namespace, key)``, or ``await loader()`` and cache it.

        ``key`` is any value ``cache.keys.encode_key`` accepts; ``tags`` name the data the value is
        computed from. Values are bytes (returned as stored) or JSON-compatible (each call gets fresh
        objects; tuples come back as lists). Backend failures are never raised: the loader runs.
        Loader exceptions propagate to every caller waiting for that load and nothing is cached.
        """
        ns = self._namespaces.get(namespace)
        value = await self._fetch(
            ns, ns.key_prefix + encode_key(key), self.version_keys(tags), ttl, loader, (), _NO_KWARGS
        )
        return cast(T, value)

    def cached(
        self, namespace: str, *, ttl: float | None = None, tags: Sequence[str] = ()
    ) -> Callable[[Callable[P, Awaitable[T]]], CachedFunction[P, T]]:
        """Decorate an async function so that its results are cached via ``get_or_load``.

        The key is the tuple of the call's arguments in parameter order, defaults applied; ``tags``
        are templates over the parameters, e.g. ``"charge:{charge_id}"``.
        """

        def decorate(function: Callable[P, Awaitable[T]]) -> CachedFunction[P, T]:
            return CachedFunction(self, function, namespace, ttl, tags)

        return decorate

    async def get_raw(self, namespace: str, key: Any, tags: Iterable[str] = ()) -> bytes | None:
        """The stored bytes of a current entry (for JSON values, their encoding), or None.

        Read-only: never loads, stores, or counts a hit or miss; meant for conditional requests.
        """
        ns = self._namespaces.get(namespace)
        found = await self._current(ns, ns.key_prefix + encode_key(key), self.version_keys(tags))
        return None if found is None else found.data

    async def peek(self, namespace: str, key: Any, tags: Iterable[str] = ()) -> Any | None:
        """The value ``get_or_load`` would return from the cache for these arguments, or None.

        Never loads or stores: for a caller that answers from the cache when it can and otherwise
        calls ``get_or_load``. A value found counts as a hit; None counts as nothing, since the
        ``get_or_load`` that follows counts the miss.
        """
        ns = self._namespaces.get(namespace)
        found = await self._current(ns, ns.key_prefix + encode_key(key), self.version_keys(tags))
        return None if found is None else self._hit(ns, found)

    def entry(self, namespace: str, key: Any, tags: Iterable[str] = ()) -> Entry:
        """The entry ``peek(namespace, key, tags)`` reads, for ``peek_entry``; raises as ``get_or_load``
        would for a bad namespace, key or tag. Holds names only, no versions: never goes stale."""
        ns = self._namespaces.get(namespace)
        return Entry(ns, ns.key_prefix + encode_key(key), self.version_keys(validate_tags(tags)))

    async def peek_entry(self, entry: Entry) -> Any | None:
        """``peek`` of a prepared entry (see ``entry``): the same answer, without encoding its key
        and version keys again."""
        found = await self._current(entry.ns, entry.key, entry.version_keys)
        return None if found is None else self._hit(entry.ns, found)

    async def invalidate_tags(self, tags: Iterable[str]) -> bool:
        """Invalidate every entry stored with any of ``tags``, in every process sharing the backend.

        Returns True once the invalidation has completed: no call starting afterwards returns a value
        loaded before (with a tiered backend: in this process at once, in others within its
        coherence window). Returns False if the backend could not be reached (never raises for
        that); this manager then serves nothing from the backend until its background repair has
        bumped the epoch there, which it retries until the backend answers; other processes that
        still reach the backend may serve affected entries until then.
        """
        version_keys = tuple(self._tag_prefix + tag for tag in validate_tags(tags))
        return await self._invalidate(version_keys) if version_keys else True

    async def invalidate_all(self) -> bool:
        """Invalidate every entry under this prefix (bump the epoch); same semantics as tags."""
        return await self._invalidate((self._epoch_key,))

    async def ping(self) -> bool:
        """True if the backend answers now (for readiness probes); a disabled backend always does."""
        try:
            await self._backend.ping()
        except BackendUnavailable:
            return False
        return True

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per namespace (see ``cache.stats.NamespaceStats``)."""
        return self._namespaces.stats()

    def backend_stats(self) -> dict[str, int]:
        """The backend's own counters, this process's (``CacheBackend.stats``; empty for most)."""
        return self._backend.stats()

    @property
    def serving_from_cache(self) -> bool:
        """False while the backend is disabled, unavailable, or awaiting an epoch bump."""
        return self._guard.ready

    async def close(self) -> None:
        """Stop using the backend and close it; later calls just run their loaders."""
        await self._guard.close()
        await self._backend.close()

    async def __aenter__(self) -> CacheManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def version_keys(self, tags: Iterable[str]) -> tuple[str, ...]:
        """The backend version keys an entry with ``tags`` depends on: the epoch, then one per tag."""
        if isinstance(tags, str):
            raise TypeError(f"tags must be a collection of tags, not the string {tags!r}")
        prefix = self._tag_prefix
        return (self._epoch_key, *[prefix + tag for tag in tags])

    # -- the read path --------------------------------------------------------------------------

    async def _fetch(  # noqa: PLR0917 - the hit path: positional arguments, nothing allocated per call
        self,
        ns: NamespaceStats,
        key: str,
        version_keys: tuple[str, ...],
        ttl: float | None,
        function: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        guard = self._guard
        if guard.ready:
            try:
                found = await self._backend.get(key, version_keys)
            except BackendUnavailable:
                self._failed(ns)
            else:
                if guard.breaker.consecutive_failures:
                    guard.succeeded()
                if isinstance(found, Hit):
                    return self._hit(ns, found)
                call = _Call(ns, key, version_keys, ttl, function, args, kwargs)
                return await self._miss(call, found.versions)
        else:
            guard.maybe_recover()
        return await self._bypass(_Call(ns, key, version_keys, ttl, function, args, kwargs))

    async def _current(self, ns: NamespaceStats, key: str, version_keys: tuple[str, ...]) -> Hit | None:
        """The current entry at the encoded ``key``, without loading; None if there is none or no backend."""
        guard = self._guard
        if not guard.ready:
            guard.maybe_recover()
            return None
        try:
            found = await self._backend.get(key, version_keys)
        except BackendUnavailable:
            self._failed(ns)
            return None
        if guard.breaker.consecutive_failures:
            guard.succeeded()
        return found if isinstance(found, Hit) else None

    def _hit(self, ns: NamespaceStats, found: Hit) -> Any:
        ns.hits += 1
        if self._on_event is not None:
            self._on_event(ns.name, "hit")
        return found.data if found.fmt == RAW else deserialize(found.fmt, found.data)

    async def _miss(self, call: _Call, versions: Versions | None) -> Any:
        validate_tags(version_key[len(self._tag_prefix) :] for version_key in call.version_keys[1:])
        ttl = self._default_ttl if call.ttl is None else self._checked_ttl(call.ttl, self._backend)
        if versions is None:
            try:
                versions = await self._backend.capture(self._clock_key, call.version_keys)
            except BackendUnavailable:
                self._failed(call.ns)
                return await self._bypass(call)
        # Same versions observed => no invalidation of these tags completed in between, so joining
        # a load that captured them cannot hand back data older than this call.
        flight_key = (call.key, call.version_keys, versions)
        task = self._flights.running(flight_key)
        if task is None:
            task = self._flights.start(flight_key, self._load(call, versions, ttl))
            self._namespaces.count(call.ns, "miss")
        else:
            self._namespaces.count(call.ns, "coalesced")
        value = await asyncio.shield(task)
        return value.data if value.fmt == RAW else deserialize(value.fmt, value.data)

    async def _load(self, call: _Call, versions: Versions, ttl: float) -> Hit:
        value = Hit(*serialize(await call.function(*call.args, **call.kwargs)))
        if self._guard.ready:
            try:
                await self._backend.set(
                    namespace=call.ns.name,
                    key=call.key,
                    version_keys=call.version_keys,
                    versions=versions,
                    value=value,
                    ttl=ttl * (1.0 - self._jitter * random.random()),
                )
            except BackendUnavailable:
                self._failed(call.ns)
        return value

    async def _bypass(self, call: _Call) -> Any:
        # Not coalesced: without the backend there is no way to tell whether another process
        # invalidated in the meantime. Round-tripped so callers see the same shapes as on a hit.
        self._namespaces.count(call.ns, "bypass")
        fmt, data = serialize(await call.function(*call.args, **call.kwargs))
        return data if fmt == RAW else deserialize(fmt, data)

    # -- invalidation and recovery --------------------------------------------------------------

    async def _invalidate(self, version_keys: tuple[str, ...]) -> bool:
        if not self._backend.enabled:
            return True
        if self._guard.may_call:
            try:
                await self._backend.invalidate(self._clock_key, version_keys)
            except BackendUnavailable:
                self._guard.failed()
            else:
                self._guard.succeeded()
                return True
        self._namespaces.count(self._namespaces.get(INVALIDATION_STATS), "error")
        self._guard.missed_invalidation()
        return False

    def _failed(self, ns: NamespaceStats) -> None:
        self._namespaces.count(ns, "error")
        self._guard.failed()

    @staticmethod
    def _checked_ttl(ttl: float, backend: CacheBackend) -> float:
        if not 0 < ttl <= backend.max_ttl:
            raise ValueError(f"ttl must be in (0, {backend.max_ttl}] seconds, got {ttl}")
        return float(ttl)
