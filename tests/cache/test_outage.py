"""Redis outages: calls keep succeeding, the breaker stops paying timeouts, caching comes back, and
an invalidation missed during the outage never lets a pre-outage entry be served afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from cache import CacheManager, RedisBackend
from tests.cache.private_redis import PrivateRedis
from tests.tcp_proxy import BLACK_HOLE, TcpProxy

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
    try:
        async with asyncio.timeout(30):  # a hang guard; the breaker retries after 0.4 s
            while not manager.serving_from_cache:
                assert await read(manager, source) == expected
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError("caching did not resume") from None


@pytest.fixture
def proxy(redis_url: str, prefix: str) -> Iterator[TcpProxy]:
    """A proxy to the shared Redis whose outage is a hung Redis (black hole), closed before the
    test's keys are deleted (hence ``prefix``)."""
    parts = urlsplit(redis_url)
    with TcpProxy((parts.hostname or "127.0.0.1", parts.port or 6379), outage=BLACK_HOLE) as proxy:
        yield proxy


async def test_hung_redis_that_keeps_its_data(proxy: TcpProxy, redis_url: str, prefix: str) -> None:
    source = Source()
    manager = unreliable(f"redis://127.0.0.1:{proxy.port}/0", prefix)
    other_process = CacheManager(RedisBackend(redis_url), prefix=prefix)  # reaches Redis throughout
    try:
        assert await read(manager, source) == b"old"
        assert await read(other_process, source) == b"old"
        assert source.loads == 1

        proxy.cut()
        async with asyncio.timeout(30):  # a hang guard only: each read must return, and does
            for _ in range(6):
                assert await read(manager, source) == b"old"  # nothing was invalidated: still correct
        # failure_threshold (2) calls reach Redis, each on at most one connection that waits for its
        # timeout (no retries); then the breaker is open and the other reads never try Redis.
        assert manager.stats()["items"]["errors"] == 2
        assert 1 <= proxy.black_holed <= 2
        assert manager.serving_from_cache is False

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
