"""Redis specifics: bounded pool, a timeout on every call, version key lifetimes, unreadable entries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from cache.backends.base import BackendUnavailable, Hit, Miss
from cache.backends.redis import RedisBackend
from cache.serializers import RAW
from testing.processes import free_port
from tests.tcp_proxy import BLACK_HOLE, TcpProxy

pytestmark = pytest.mark.redis


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    yield client
    await client.aclose()


@pytest.fixture
def hung_redis() -> Iterator[TcpProxy]:
    """A server that accepts connections and never answers (a proxy cut in black-hole mode)."""
    with TcpProxy(("127.0.0.1", free_port()), outage=BLACK_HOLE) as proxy:
        proxy.cut()
        yield proxy


@pytest.fixture
def unresponsive(hung_redis: TcpProxy) -> str:
    """The URL of ``hung_redis``."""
    return f"redis://127.0.0.1:{hung_redis.port}/0"


async def store(backend: RedisBackend, prefix: str, tag: str, data: bytes, ttl: float = 60.0) -> None:
    version_keys = (f"{prefix}:epoch", f"{prefix}:v:{tag}")
    versions = await backend.capture(f"{prefix}:clock", version_keys)
    await backend.set(
        namespace="ns",
        key=f"{prefix}:e:ns:k",
        version_keys=version_keys,
        versions=versions,
        value=Hit(RAW, data),
        ttl=ttl,
    )


async def read(backend: RedisBackend, prefix: str, tag: str) -> Hit | Miss:
    return await backend.get(f"{prefix}:e:ns:k", (f"{prefix}:epoch", f"{prefix}:v:{tag}"))


async def test_unresponsive_server_costs_one_socket_timeout_per_call(
    hung_redis: TcpProxy, unresponsive: str
) -> None:
    backend = RedisBackend(unresponsive, socket_timeout=0.2, socket_connect_timeout=0.2)
    try:
        calls = (backend.ping(), backend.get("k", ("v",)), backend.invalidate("c", ("v",)))
        for made, call in enumerate(calls, start=1):
            async with asyncio.timeout(30):  # a hang guard: the socket timeout ends each call
                with pytest.raises(BackendUnavailable) as failure:
                    await call
            assert isinstance(failure.value.__cause__, redis.exceptions.TimeoutError)  # it waited...
            assert hung_redis.black_holed == made  # ...once: one connection per call, no retries
    finally:
        await backend.close()


async def test_refused_connection_fails_fast() -> None:
    # Timeouts far beyond the hang guard: only a call that does not wait for them can pass.
    backend = RedisBackend(
        f"redis://127.0.0.1:{free_port()}/0", socket_timeout=600, socket_connect_timeout=600
    )
    try:
        async with asyncio.timeout(30):
            with pytest.raises(BackendUnavailable) as failure:
                await backend.get("k", ("v",))
        assert isinstance(failure.value.__cause__, redis.exceptions.ConnectionError)  # refused
    finally:
        await backend.close()


async def test_waiting_for_a_pooled_connection_is_bounded(hung_redis: TcpProxy, unresponsive: str) -> None:
    backend = RedisBackend(unresponsive, max_connections=1, socket_timeout=3.0, pool_timeout=0.1)
    try:
        hung = asyncio.ensure_future(backend.ping())  # holds the only connection until its timeout
        async with asyncio.timeout(30):  # hang guards only
            while not hung_redis.black_holed:  # noqa: ASYNC110 - polling a counter, no event to wait on
                await asyncio.sleep(0.01)
            with pytest.raises(BackendUnavailable, match="no free Redis connection"):
                await backend.ping()
            # The waiter gave up on the pool while the connection's holder was still waiting.
            assert not hung.done()
            with pytest.raises(BackendUnavailable):
                await hung
    finally:
        await backend.close()


async def test_entry_with_an_unknown_format_tag_is_a_miss(
    redis_url: str, prefix: str, raw: aioredis.Redis
) -> None:
    backend = RedisBackend(redis_url)
    try:
        await store(backend, prefix, "t", b"value")
        blob = await raw.get(f"{prefix}:e:ns:k")
        assert isinstance(blob, bytes)
        await raw.set(f"{prefix}:e:ns:k", bytes([99]) + blob[1:])

        assert isinstance(await read(backend, prefix, "t"), Miss)
    finally:
        await backend.close()


@pytest.mark.parametrize("garbage", [b"", b"\x01", b"\x01\xff\xff\xff\xff", b"not an entry at all"])
async def test_unreadable_entry_is_a_miss(
    redis_url: str, prefix: str, raw: aioredis.Redis, garbage: bytes
) -> None:
    backend = RedisBackend(redis_url)
    try:
        await store(backend, prefix, "t", b"value")
        await raw.set(f"{prefix}:e:ns:k", garbage)

        assert isinstance(await read(backend, prefix, "t"), Miss)
    finally:
        await backend.close()


async def test_version_keys_expire_later_than_entries_and_the_clock_never(
    redis_url: str, prefix: str, raw: aioredis.Redis
) -> None:
    backend = RedisBackend(redis_url, version_ttl=1000)
    try:
        await store(backend, prefix, "t", b"value", ttl=30)

        assert 0 < await raw.pttl(f"{prefix}:e:ns:k") <= 30_000
        assert 30_000 < await raw.pttl(f"{prefix}:v:t") <= 1_000_000
        assert await raw.pttl(f"{prefix}:clock") == -1
        assert backend.max_ttl < 1000
    finally:
        await backend.close()


async def test_lost_version_and_clock_keys_never_revive_a_stale_entry(
    redis_url: str, prefix: str, raw: aioredis.Redis
) -> None:
    backend = RedisBackend(redis_url)
    try:
        await store(backend, prefix, "t", b"stale")
        await backend.invalidate(f"{prefix}:clock", (f"{prefix}:v:t",))
        await raw.delete(f"{prefix}:v:t", f"{prefix}:clock")  # as if expired or evicted

        assert isinstance(await read(backend, prefix, "t"), Miss)
        await backend.capture(f"{prefix}:clock", (f"{prefix}:epoch", f"{prefix}:v:t"))  # re-created
        assert isinstance(await read(backend, prefix, "t"), Miss)
    finally:
        await backend.close()
