"""Rate limits per caller: GCRA (a leaky bucket kept as one timestamp per caller), in Redis or memory.

A caller may make ``limit`` requests per ``window``, in a burst or spread out; each request pushes
its "theoretical arrival time" (TAT) forward by ``window / limit`` and is refused while that would
put the TAT more than a window ahead of now. One number per caller, no counters to reset, and an
exact ``Retry-After``.

With Redis (``RedisLimiter``) the check is one Lua script, so it is atomic across every worker and
host sharing the Redis, and costs one round trip under the Redis timeout. If Redis fails or is
slow, ``RateLimiter`` fails open to the in-process limiter (logging one line) and tries Redis again
after ``REDIS_RETRY_SECONDS``: limits are then enforced per worker, never not at all, and a Redis
outage never fails a request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

REDIS_RETRY_SECONDS: Final = 5.0
_EPSILON: Final = 1e-9

log = structlog.get_logger("erp_api.security.ratelimit")

# KEYS[1] the caller's TAT; ARGV[1] emission interval, ARGV[2] window (both microseconds).
# Returns {allowed, remaining, reset_us, retry_after_us}. Redis time, so all workers share one clock.
GCRA_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - window > now then
  return {0, 0, tat - now, new_tat - window - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now + window - new_tat) / interval), new_tat - now, 0}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one request against its caller's limit, and what the headers tell the caller."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    """Until the whole quota is available again."""
    retry_after_seconds: float = 0.0

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``RateLimit-Limit``, ``-Remaining``, ``-Reset`` (delta seconds), and ``Retry-After`` if refused."""
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(max(0, min(self.remaining, self.limit))).encode()),
            (b"ratelimit-reset", str(math.ceil(self.reset_seconds)).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(max(1, math.ceil(self.retry_after_seconds))).encode()))
        return headers


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


class RedisLimiter:
    """GCRA in Redis: one script call per request, shared by every process using ``prefix``."""

    def __init__(self, client: Redis, window_seconds: float, prefix: str) -> None:
        self._client = client
        self._window_us = round(window_seconds * 1_000_000)
        self._prefix = prefix
        self._script = client.register_script(GCRA_SCRIPT)

    async def hit(self, bucket: str, limit: int) -> Decision:
        # A whole number of microseconds, rounded down, so that ``limit`` requests fit in a window.
        interval = max(1, self._window_us // limit)
        result: Any = await self._script(keys=[f"{self._prefix}:{bucket}"], args=[interval, self._window_us])
        allowed, remaining, reset_us, retry_us = (int(value) for value in result)
        return Decision(bool(allowed), limit, remaining, reset_us / 1e6, retry_us / 1e6)


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
        redis: RedisLimiter | None = None,
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
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._redis.hit(bucket, limit)
            except (RedisError, OSError) as exc:  # TimeoutError is an OSError
                self._redis_retry_at = self._clock() + self._retry_after
                log.warning(
                    "rate_limit_redis_unavailable",
                    error=type(exc).__name__,
                    fallback="memory",
                    retry_in_seconds=self._retry_after,
                )
        return self._memory.hit(bucket, limit)
