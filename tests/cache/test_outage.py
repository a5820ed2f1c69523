"""Redis outages: calls keep succeeding, the breaker stops paying timeouts, caching comes back, and
an invalidation missed during the outage never lets a pre-outage entry be served afterwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from cache import CacheManager, RedisBackend
from tests.cache.private_redis import PrivateRedis
from tests.cache.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.redis, pytest.mark.slow]

TIMEOUT = 0.2


class Source:
    """The data behind the cache, counting loads."""

    def __init__(self) -> None:
        self.value = b"old"
        self.loads = 0

    async def load(self) -> bytes:
        self.loads += 1
        return self.value


def unreliable(url: str, prefix: str) -> CacheManager:
    backend = RedisBackend(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    return CacheManager(backend, prefix=prefix, failure_threshold=2, reset_timeout=0.4)


async def read(manager: CacheManager, source: Source) -> bytes:
    return await manager.get_or_load("items", "the-item", source.load, tags=["item"])


async def read_until_cache_serves(manager: CacheManager, source: Source, expected: bytes) -> None:
    """Keep reading (each read must be ``expected``) until the manager uses Redis again."""
    deadline = time.monotonic() + 10
    while not manager.serving_from_cache:
        assert await read(manager, source) == expected
        assert time.monotonic() < deadline, "caching did not resume"
        await asyncio.sleep(0.05)


@pytest.fixture
async def proxy(redis_url: str, prefix: str) -> AsyncIterator[TcpProxy]:
    """A proxy to the shared Redis, closed before the test's keys are deleted (hence ``prefix``)."""
    parts = urlsplit(redis_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await proxy.start()
    yield proxy
    await proxy.close()


async def test_hung_redis_that_keeps_its_data(proxy: TcpProxy, redis_url: str, prefix: str) -> None:
    source = Source()
    manager = unreliable(f"redis://127.0.0.1:{proxy.port}/0", prefix)
    other_process = CacheManager(RedisBackend(redis_url), prefix=prefix)  # reaches Redis throughout
    try:
        assert await read(manager, source) == b"old"
        assert await read(other_process, source) == b"old"
        assert source.loads == 1

        proxy.cut()
        durations = []
        for _ in range(6):
            started = time.monotonic()
            assert await read(manager, source) == b"old"  # nothing was invalidated: still correct
            durations.append(time.monotonic() - started)
        # At most failure_threshold calls wait for a timeout, then the breaker is open: no more waits.
        assert sum(duration >= TIMEOUT * 0.75 for duration in durations) >= 1, durations
        assert all(duration < TIMEOUT * 2.5 for duration in durations[:2]), durations  # no retries
        assert all(duration < TIMEOUT / 4 for duration in durations[2:]), durations
        assert manager.stats()["items"]["errors"] == 2

        source.value = b"new"
        assert await manager.invalidate_tags(["item"]) is False  # missed; Redis still holds "old"
        assert await read(manager, source) == b"new"

        proxy.restore()
        await read_until_cache_serves(manager, source, b"new")

        # The epoch bump made the entry stale everywhere before this manager served from Redis.
        assert await read(manager, source) == b"new"
        assert await read(other_process, source) == b"new"
        loads = source.loads
        assert await read(manager, source) == b"new"
        assert source.loads == loads  # caching resumed
    finally:
        await manager.close()
        await other_process.close()


async def test_redis_restarted_empty(prefix: str) -> None:
    server = PrivateRedis()
    server.start()
    source = Source()
    manager = unreliable(server.url, prefix)
    try:
        assert await read(manager, source) == b"old"
        assert await read(manager, source) == b"old"
        assert source.loads == 1

        server.stop()
        source.value = b"new"
        assert await manager.invalidate_tags(["item"]) is False
        for _ in range(5):
            assert await read(manager, source) == b"new"
        assert manager.serving_from_cache is False
        assert await manager.ping() is False

        server.start()
        await read_until_cache_serves(manager, source, b"new")

        assert await read(manager, source) == b"new"
        loads = source.loads
        assert await read(manager, source) == b"new"
        assert source.loads == loads
        assert await manager.ping() is True
        stats = manager.stats()
        assert stats["_invalidation"]["errors"] == 1
        assert stats["items"]["bypassed"] >= 5
    finally:
        await manager.close()
        server.stop()


async def test_failed_invalidation_stops_serving_until_the_epoch_is_bumped(
    proxy: TcpProxy, redis_url: str, prefix: str
) -> None:
    source = Source()
    manager = unreliable(f"redis://127.0.0.1:{proxy.port}/0", prefix)
    try:
        assert await read(manager, source) == b"old"
        proxy.cut()
        source.value = b"new"

        assert await manager.invalidate_tags(["item"]) is False  # one failure: breaker still closed
        proxy.restore()

        await read_until_cache_serves(manager, source, b"new")
        assert await read(manager, source) == b"new"
    finally:
        await manager.close()
