"""No read that starts after an invalidation has completed returns data from before it.

A writer keeps changing a value, invalidating its tag, then publishing the value as "done"; readers
note the published value before each read and check the cache never returns anything older, while
their loads read the value and then sleep, so loads routinely span writes.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from cache import CacheBackend, CacheManager, MemoryBackend, RedisBackend

REPO = Path(__file__).resolve().parents[2]


class CapturesAfterLoading(MemoryBackend):
    """The classic race, for the control test: versions taken when storing, after the load ran."""

    async def set(self, **kwargs: Any) -> None:
        kwargs["versions"] = await self.capture("clock", kwargs["version_keys"])
        await super().set(**kwargs)


async def hammer(manager: CacheManager, writes: int = 100, readers: int = 20) -> list[tuple[int, int]]:
    """Run writer and readers together; returns ``(published, returned)`` for every stale read."""
    database = {"value": 0}
    published = 0
    done = False
    stale: list[tuple[int, int]] = []

    async def load() -> int:
        value = database["value"]
        await asyncio.sleep(random.uniform(0, 0.003))
        return value

    async def writer() -> None:
        nonlocal published, done
        for value in range(1, writes + 1):
            database["value"] = value
            assert await manager.invalidate_tags(["item"]) is True
            published = value
            await asyncio.sleep(random.uniform(0, 0.008))
        done = True

    async def reader() -> None:
        while not done:
            floor = published
            value = await manager.get_or_load("items", "the-item", load, tags=["item"])
            if value < floor:
                stale.append((floor, value))
            await asyncio.sleep(0)  # a memory hit never yields; real request handlers do

    await asyncio.gather(writer(), *(reader() for _ in range(readers)))
    return stale


async def test_no_stale_read_after_invalidation_in_one_process(backend: CacheBackend, prefix: str) -> None:
    manager = CacheManager(backend, prefix=prefix)

    assert await hammer(manager) == []
    stats = manager.stats()["items"]
    assert stats["hits"] > 0
    assert stats["coalesced"] > 0


async def test_the_hammer_catches_a_cache_that_captures_versions_too_late(prefix: str) -> None:
    manager = CacheManager(CapturesAfterLoading(), prefix=prefix)

    assert await hammer(manager) != []


@pytest.mark.redis
@pytest.mark.slow
async def test_no_stale_read_after_invalidation_across_processes(redis_url: str, prefix: str) -> None:
    raw = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    writer = CacheManager(RedisBackend(redis_url, socket_timeout=5), prefix=prefix)
    readers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.cache.consistency_worker",
            redis_url,
            prefix,
            "3",
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    waiting = [asyncio.ensure_future(reader.communicate()) for reader in readers]
    try:
        value = 0
        while not all(task.done() for task in waiting):
            value += 1
            await raw.set(f"{prefix}:db", value)
            assert await writer.invalidate_tags(["item"]) is True
            await raw.set(f"{prefix}:published", value)
            await asyncio.sleep(random.uniform(0.002, 0.012))
        results = [json.loads(stdout) for stdout, _ in await asyncio.gather(*waiting)]
    finally:
        await writer.close()
        await raw.aclose()

    assert [reader.returncode for reader in readers] == [0, 0]
    assert value > 100
    for result in results:
        assert result["violations"] == 0, result
        assert result["reads"] > 100
        assert result["hits"] > 0
