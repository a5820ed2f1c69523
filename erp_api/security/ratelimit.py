"""Rate limits per caller: GCRA (a leaky bucket kept as one timestamp per caller), in Redis or memory.

A caller may make ``limit`` requests per ``window``, in a burst or spread out; each request pushes
its "theoretical arrival time" (TAT) forward by ``window / limit`` and is refused while that would
put the TAT more than a window ahead of now. One number per caller, no counters to reset, and an
exact ``Retry-After``.

With Redis (``RedisLimiter``) the check is one Lua script, so it is atomic across every worker and
host sharing the Redis. The script can take several places of the quota at once (and give back
unused ones): ``rate_lease.LeasedLimiter`` uses that to answer most requests of a busy key without
a round trip, within the bound stated there. If Redis fails or is slow, ``RateLimiter`` fails open
to the in-process limiter (logging one line) and tries Redis again after ``REDIS_RETRY_SECONDS``:
limits are then enforced per worker, never not at all, and a Redis outage never fails a request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

REDIS_RETRY_SECONDS: Final = 5.0
_EPSILON: Final = 1e-9

log = structlog.get_logger("erp_api.security.ratelimit")

# KEYS[1] the caller's TAT; ARGV[1] emission interval, ARGV[2] window (both microseconds), ARGV[3] places
# wanted, ARGV[4] places given back (taken earlier, never used). Grants as many of the wanted places as
# fit, like that many single requests in a row. Returns {granted, remaining, reset_us, retry_after_us}.
# Redis time, so all workers share one clock.
GCRA_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local given_back = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) - given_back * interval
if tat < now then tat = now end
local granted = math.min(tonumber(ARGV[3]), math.floor((now + window - tat) / interval))
if granted < 1 then
  if given_back > 0 then
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  end
  return {0, 0, tat - now, tat + interval - window - now}
end
local new_tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {granted, math.floor((now + window - new_tat) / interval), new_tat - now, 0}
"""


class Decision(NamedTuple):  # made for every request: a tuple is built in a third of a dataclass's time
    """The outcome of one request against its caller's limit, and what the headers tell the caller."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    """Until the whole quota is available again."""
    retry_after_seconds: float = 0.0

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``RateLimit-Limit``, ``-Remaining``, ``-Reset`` (delta seconds), and ``Retry-After`` if refused."""
        limit, remaining = self.limit, self.remaining
        reset = math.ceil(self.reset_seconds)
        headers = [
            _LIMIT_HEADERS.get(limit) or _rendered(_LIMIT_HEADERS, b"ratelimit-limit", limit),
            (b"ratelimit-remaining", str(0 if remaining < 0 else min(remaining, limit)).encode()),
            _RESET_HEADERS.get(reset) or _rendered(_RESET_HEADERS, b"ratelimit-reset", reset),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(max(1, math.ceil(self.retry_after_seconds))).encode()))
        return headers


# Every answer carries the first and the last of these, and they take few values (a limit per role,
# a reset of at most the window): rendered once each, they cost a dict look-up (the three headers in
# 0.42 µs instead of 0.59).
_LIMIT_HEADERS: dict[int, tuple[bytes, bytes]] = {}
_RESET_HEADERS: dict[int, tuple[bytes, bytes]] = {}
_MAX_RENDERED: Final = 4096


def _rendered(rendered: dict[int, tuple[bytes, bytes]], name: bytes, value: int) -> tuple[bytes, bytes]:
    """The header ``name: value``, kept in ``rendered`` while it holds fewer than ``_MAX_RENDERED``."""
    header = (name, str(value).encode())
    if len(rendered) < _MAX_RENDERED:
        rendered[value] = header
    return header


class MemoryLimiter:
    """GCRA in this process only, for at most ``max_buckets`` callers (least recently seen go first:
    forgetting one only forgives it its debt)."""

    def __init__(
        self, window_seconds: float, max_buckets: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window_seconds
        self._max = max_buckets
        self._clock = clock
        self._tats: OrderedDict[str, float] = OrderedDict()

    def hit(self, bucket: str, limit: int) -> Decision:
        now = self._clock()
        interval = self._window / limit
        tat = max(self._tats.get(bucket, now), now)
        new_tat = tat + interval
        if new_tat - self._window > now + _EPSILON:
            return Decision(False, limit, 0, tat - now, new_tat - self._window - now)
        self._tats[bucket] = new_tat
        self._tats.move_to_end(bucket)
        if len(self._tats) > self._max:
            self._tats.popitem(last=False)
        remaining = math.floor((now + self._window - new_tat) / interval + _EPSILON)
        return Decision(True, limit, remaining, new_tat - now)


@dataclass(frozen=True, slots=True)
class Grant:
    """Places of a caller's quota taken from Redis at once (0: refused), and the quota after that."""

    granted: int
    remaining: int
    reset_seconds: float
    retry_after_seconds: float

    def decision(self, limit: int) -> Decision:
        """The decision on one request that took this grant."""
        return Decision(self.granted > 0, limit, self.remaining, self.reset_seconds, self.retry_after_seconds)


class SharedLimiter(Protocol):
    """A limiter shared by every process, which may answer some requests without a round trip."""

    def local(self, bucket: str, limit: int) -> Decision | None:
        """The decision if it needs no I/O, else None (then ``hit`` asks the shared store)."""

    async def hit(self, bucket: str, limit: int) -> Decision: ...

    async def close(self) -> None: ...


class RedisLimiter:
    """GCRA in Redis: one script call per request, shared by every process using ``prefix``."""

    def __init__(self, client: Redis, window_seconds: float, prefix: str) -> None:
        self._client = client
        self._window_us = round(window_seconds * 1_000_000)
        self._prefix = prefix
        self._script = client.register_script(GCRA_SCRIPT)

    def local(self, bucket: str, limit: int) -> Decision | None:
        return None

    async def hit(self, bucket: str, limit: int) -> Decision:
        return (await self.take(bucket, limit)).decision(limit)

    async def take(self, bucket: str, limit: int, wanted: int = 1, given_back: int = 0) -> Grant:
        """Take up to ``wanted`` places of ``bucket``'s quota, after returning ``given_back`` unused ones."""
        # A whole number of microseconds, rounded down, so that ``limit`` requests fit in a window.
        interval = max(1, self._window_us // limit)
        result: Any = await self._script(
            keys=[f"{self._prefix}:{bucket}"], args=[interval, self._window_us, wanted, given_back]
        )
        granted, remaining, reset_us, retry_us = (int(value) for value in result)
        return Grant(granted, remaining, reset_us / 1e6, retry_us / 1e6)

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever made it."""


def redis_client(url: str, *, timeout_seconds: float, max_connections: int) -> Redis:
    """A client whose every call is bounded by ``timeout_seconds`` and never retried."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 0),
    )
    return Redis.from_pool(pool)


class RateLimiter:
    """Redis when there is one, else memory; while Redis fails, memory (fail open, one log line)."""

    def __init__(
        self,
        memory: MemoryLimiter,
        redis: SharedLimiter | None = None,
        *,
        timeout_seconds: float = 0.25,
        retry_redis_after_seconds: float = REDIS_RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._memory = memory
        self._redis = redis
        self._timeout = timeout_seconds
        self._retry_after = retry_redis_after_seconds
        self._clock = clock
        self._redis_retry_at = 0.0

    @property
    def using_redis(self) -> bool:
        """True unless there is no Redis or it failed within the last retry interval."""
        return self._redis is not None and self._clock() >= self._redis_retry_at

    async def hit(self, bucket: str, limit: int) -> Decision:
        """Count one request of ``bucket`` against ``limit`` per window."""
        if self._redis is not None and self.using_redis:
            decision = self._redis.local(bucket, limit)
            if decision is not None:
                return decision
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._redis.hit(bucket, limit)
            except (RedisError, OSError) as exc:  # TimeoutError is an OSError
                # Requests waiting on the same failed call all land here: the first one tells.
                if self.using_redis:
                    self._redis_retry_at = self._clock() + self._retry_after
                    log.warning(
                        "rate_limit_redis_unavailable",
                        error=type(exc).__name__,
                        fallback="memory",
                        retry_in_seconds=self._retry_after,
                    )
        return self._memory.hit(bucket, limit)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.close()
