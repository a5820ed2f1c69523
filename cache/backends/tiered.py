"""A per-process first level (L1, a bounded ``MemoryBackend``) in front of Redis (L2).

Hits are served from this process's memory; invalidations reach every process's L1 over Redis
pub/sub (``cache.backends.invalidations``). The guarantees, on top of those of the Redis backend:

(a) A process never serves from its L1 a value older than an invalidation it completed itself: the
    invalidation is applied to the L1 before ``invalidate`` returns.
(b) Another process stops serving an invalidated entry within ``coherence_window`` seconds of the
    invalidation completing (measured: well under it; the window is the bound, not the typical lag).
    Once Redis has sent the message to a process, that process serves nothing from its L1 until it
    has applied it: a read finding channel bytes arrived and not handled yet skips the L1, unless
    they are only answers to heartbeats (``InvalidationChannel.unhandled``). So a read that reaches
    another process after the write's answer is not stale as long as Redis delivered the message
    before it: only a Redis stalled between answering the writer and writing to subscribers leaves
    the window alone to bound it.
(c) If the channel is down or lagging (no heartbeat answered within the window), the L1 is bypassed
    and reads go to Redis, where every read is version-checked as usual.
(d) A fill cannot resurrect old data: L1 entries carry *local* versions, captured before the L2 read
    that the value comes from. An invalidation message discards the local versions of its keys, so
    an entry (or a fill still in flight) that captured them before never matches again; a fill is
    also refused unless its L2 store succeeded, i.e. its L2 versions were still current.

The local versions are the L1's own version table (bounded, with the memory backend's forward clock:
forgetting one costs a reload, never a stale hit). Every (re)subscription to the channel clears the
L1, since messages may have been missed while it was down; an L1 copy made from an L2 hit expires
with the L2 entry (its remaining TTL is read in the same round trip).

``Versions`` handed to the manager are the L2 versions followed by the local ones.
"""

from __future__ import annotations

import time

from cache.backends.base import MISS, BackendUnavailable, CacheBackend, Hit, Miss, Versions
from cache.backends.invalidations import InvalidationChannel
from cache.backends.memory import MemoryBackend
from cache.backends.redis import RedisBackend

__all__ = ["TieredBackend"]

_monotonic = time.monotonic


class TieredBackend(CacheBackend):
    """An L1 of at most ``max_entries``/``max_bytes`` per process in front of ``l2``.

    ``coherence_window`` (seconds) bounds how long another process's completed invalidation may
    take to reach this L1 (see the module docstring). ``channel_url`` defaults to ``l2.url``; set it
    only to reach the *same* server another way (tests cut the channel alone): the guarantee relies
    on invalidations and heartbeats passing through one server.
    """

    def __init__(
        self,
        l2: RedisBackend,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 2**20,
        coherence_window: float = 0.05,
        channel_url: str | None = None,
    ) -> None:
        self.l2 = l2
        self.l1 = MemoryBackend(max_entries=max_entries, max_bytes=max_bytes)
        self.max_ttl = l2.max_ttl
        self.coherence_window = coherence_window
        self.channel = InvalidationChannel(
            channel_url or l2.url,
            window=coherence_window,
            socket_timeout=l2.socket_timeout,
            socket_connect_timeout=l2.socket_connect_timeout,
            on_invalidate=self.l1.discard_versions,
            on_reset=self.l1.clear,
            origin=l2.origin,
        )
        self.l1_hits = 0
        self.l1_misses = 0
        self.l1_bypassed = 0
        """Reads that skipped the L1: the channel not fresh, or bytes of it arrived and not handled."""

    def bind_prefix(self, prefix: str) -> None:
        self.l2.bind_prefix(prefix)

    async def get(self, key: str, version_keys: tuple[str, ...]) -> Hit | Miss:
        l1 = self.l1
        channel = self.channel
        if channel.fresh_until > _monotonic() and not channel.unhandled():
            found = l1.lookup(key, version_keys)
            if found is not None:
                self.l1_hits += 1
                return found
            self.l1_misses += 1
        else:
            self.l1_bypassed += 1
            if not channel.started and self.l2.channel:
                channel.start(self.l2.channel)
        local = l1.capture_now(version_keys)  # before the L2 read: see (d)
        read = await self.l2.read(key, version_keys)
        if read.versions is None:
            return MISS
        if read.hit is None:
            return Miss((*read.versions, *local))
        if read.ttl > 0:
            l1.store_now("", key, version_keys, local, read.hit, read.ttl)
        return read.hit

    async def capture(self, clock_key: str, version_keys: tuple[str, ...]) -> Versions:
        local = self.l1.capture_now(version_keys)
        return (*await self.l2.capture(clock_key, version_keys), *local)

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
        count = len(version_keys)
        if await self.l2.store(key, version_keys, versions[:count], value, ttl):
            self.l1.store_now(namespace, key, version_keys, versions[count:], value, ttl)

    async def invalidate(self, clock_key: str, version_keys: tuple[str, ...]) -> None:
        try:
            await self.l2.invalidate(clock_key, version_keys)
        except BackendUnavailable:
            self.l1.clear()  # it may or may not have happened: keep nothing it could have covered
            raise
        self.l1.discard_versions(version_keys)  # (a): before returning

    async def ping(self) -> None:
        await self.l2.ping()

    async def close(self) -> None:
        await self.channel.close()
        self.l1.clear()
        await self.l2.close()

    def stats(self) -> dict[str, int]:
        """L1 counters and the channel's: subscriptions made, connections lost, messages applied."""
        return {
            "l1_hits": self.l1_hits,
            "l1_misses": self.l1_misses,
            "l1_bypassed": self.l1_bypassed,
            "l1_entries": self.l1.size[0],
            "subscriptions": self.channel.subscriptions,
            "losses": self.channel.losses,
            "messages": self.channel.messages,
        }
