"""Rate-limit leases: each process takes a busy key's quota from Redis in batches and counts it locally.

A request whose key has no usable lease here takes a *lease* of ``N = lease_size(limit)`` places of
the key's GCRA quota in one script call (fewer if fewer are left), and the next requests of that
key in this process are answered from it without a round trip, until it is used up or
``LEASE_SECONDS`` old. An expired lease's unused places are given back in the call that takes the
next one. Concurrent requests of one key share one call (one lease at a time per key and process);
a refusal is remembered until its ``Retry-After``, so a refused caller costs no round trips either.

``N`` is at most 1 % of the limit and at most ``ERP_RATE_LIMIT_LEASE_TOKENS`` (1,000); below a limit
of 200 it is 1, and each request is one call of the plain GCRA, exactly as without leases.

**The bound.** Every request admitted used a place the GCRA in Redis granted (and places given back
were never used), and a process holds at most ``N`` unused places of a key at any moment. Hence,
for one key across ``P`` processes, over any period of ``T`` seconds::

    admitted <= limit + T * limit / window + P * N

that is, at most ``P * N`` more than the GCRA alone would admit (``limit`` at once, then
``limit / window`` per second). A caller idle for ``LEASE_SECONDS`` holds no live lease anywhere, so
its burst gets at most ``limit`` plus what refills meanwhile: never more than without leases. The
other side: a request may be refused while up to ``(P - 1) * N`` places sit unused in other
processes' leases, for at most ``LEASE_SECONDS`` (or until those processes see the key again).

Headers stay meaningful: ``RateLimit-Remaining`` is what Redis had left after this process's lease
plus what is left of the lease, ``RateLimit-Reset`` and ``Retry-After`` come from the same call.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from erp_api.security.ratelimit import Decision, RedisLimiter

LEASE_SECONDS: Final = 1.0
LEASE_SHARE: Final = 100
"""A lease is at most ``limit // LEASE_SHARE`` places (1 %)."""


def lease_size(limit: int, max_tokens: int) -> int:
    """How many places of a ``limit`` one lease takes: 1 % of it, at least 1, at most ``max_tokens``."""
    return max(1, min(max_tokens, limit // LEASE_SHARE))


@dataclass(slots=True)
class Lease:
    """A process's share of one key's quota, and what Redis said when it was taken."""

    tokens: int = 0
    expires: float = 0.0
    remaining: int = 0
    """Places Redis had left after granting this lease."""
    reset_at: float = 0.0
    refused_until: float = 0.0
    renewal: asyncio.Task[None] | None = None

    def decide(self, now: float, limit: int) -> Decision | None:
        """Admit from the lease, or refuse while the last refusal holds; None if Redis must be asked."""
        if self.tokens > 0 and now < self.expires:
            self.tokens -= 1
            return Decision(True, limit, self.remaining + self.tokens, max(0.0, self.reset_at - now))
        if now < self.refused_until:
            return Decision(False, limit, 0, max(0.0, self.reset_at - now), self.refused_until - now)
        return None


class LeasedLimiter:
    """A ``SharedLimiter`` over ``RedisLimiter`` that answers most requests of a busy key locally."""

    def __init__(
        self,
        redis: RedisLimiter,
        *,
        max_lease_tokens: int,
        max_buckets: int,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._max_tokens = max_lease_tokens
        self._max_buckets = max_buckets
        self._lease_seconds = lease_seconds
        self._clock = clock
        # Least recently used first; forgetting a lease only forfeits its unused places.
        self._leases: OrderedDict[str, Lease] = OrderedDict()
        self._renewals: set[asyncio.Task[None]] = set()

    def local(self, bucket: str, limit: int) -> Decision | None:
        """The decision from this process's lease of ``bucket``, if it can give one."""
        lease = self._leases.get(bucket)
        if lease is None:
            return None
        self._leases.move_to_end(bucket)
        return lease.decide(self._clock(), limit)

    async def hit(self, bucket: str, limit: int) -> Decision:
        """Count one request: from the lease, else after taking a new one (one call per key at a time)."""
        size = lease_size(limit, self._max_tokens)
        if size == 1:
            return (await self._redis.take(bucket, limit)).decision(limit)
        while True:
            lease = self._lease(bucket)
            decision = lease.decide(self._clock(), limit)
            if decision is not None:
                return decision
            if lease.renewal is None:
                lease.renewal = asyncio.get_running_loop().create_task(
                    self._renew(bucket, lease, limit, size)
                )
                self._renewals.add(lease.renewal)
                lease.renewal.add_done_callback(_forget_renewal(self._renewals))
            await asyncio.shield(lease.renewal)

    def _lease(self, bucket: str) -> Lease:
        lease = self._leases.get(bucket)
        if lease is None:
            lease = self._leases[bucket] = Lease()
            if len(self._leases) > self._max_buckets:
                self._leases.popitem(last=False)
        return lease

    async def _renew(self, bucket: str, lease: Lease, limit: int, size: int) -> None:
        try:
            # Renewed only when used up or expired; an expired lease's places go back to the quota.
            given_back, lease.tokens = lease.tokens, 0
            grant = await self._redis.take(bucket, limit, size, given_back)
            now = self._clock()
            lease.tokens = grant.granted
            lease.expires = now + self._lease_seconds
            lease.remaining = grant.remaining
            lease.reset_at = now + grant.reset_seconds
            lease.refused_until = 0.0 if grant.granted else now + grant.retry_after_seconds
        finally:
            lease.renewal = None

    @property
    def leases(self) -> int:
        """How many keys this process holds a lease (or a remembered refusal) for."""
        return len(self._leases)

    async def close(self) -> None:
        """Cancel the calls still running; unused places are not given back (the quota refills)."""
        renewals = list(self._renewals)
        for renewal in renewals:
            renewal.cancel()
        await asyncio.gather(*renewals, return_exceptions=True)


def _forget_renewal(renewals: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def forget(task: asyncio.Task[None]) -> None:
        renewals.discard(task)
        if not task.cancelled():
            # Waiters re-raise a failure; if none is left, nobody needs to hear of it.
            task.exception()

    return forget
