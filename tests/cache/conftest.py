"""Fixtures for the cache tests: a unique Redis prefix that is cleaned up, and backends to run on."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
import redis

from cache import CacheBackend, MemoryBackend, RedisBackend
from tests.cache.relay import StallingRelay
from tests.services import REDIS_URL, delete_redis_keys, require_redis, unique_name


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under the cache prefix ``prefix`` (its keys are ``prefix:...``)."""
    delete_redis_keys(url, f"{prefix}:*")


@pytest.fixture
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix no other test run uses; its Redis keys are deleted afterwards if Redis is up."""
    name = unique_name("cachetest")
    yield name
    with contextlib.suppress(redis.RedisError):  # no Redis here: nothing was written to it
        delete_prefix(REDIS_URL, name)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[CacheBackend]:
    """Each backend that stores entries: in-process memory, and a real Redis.

    Depends on ``prefix`` so that it is closed before the prefix's keys are deleted.
    """
    store: CacheBackend
    if request.param == "memory":
        store = MemoryBackend(max_entries=1000, max_bytes=2**20)
    else:
        store = RedisBackend(require_redis(), socket_timeout=2.0, socket_connect_timeout=2.0)
    yield store
    await store.close()


@pytest.fixture
async def channel_relay(redis_url: str) -> AsyncIterator[StallingRelay]:
    """A relay to the shared Redis whose replies the test can hold back (a lagging channel)."""
    parts = urlsplit(redis_url)
    relay = StallingRelay((parts.hostname or "127.0.0.1", parts.port or 6379))
    await relay.start()
    yield relay
    await relay.close()
