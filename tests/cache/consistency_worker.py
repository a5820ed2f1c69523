"""Run as ``python -m tests.cache.consistency_worker URL PREFIX SECONDS``: a reader process.

Reads a value through the cache over and over while another process writes it. Before each read it
notes the newest value the writer has published as fully invalidated; the cache must never return
anything older. Prints ``{"reads", "violations", "hits", "coalesced"}`` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

import redis.asyncio as aioredis

from cache import CacheManager, RedisBackend


async def read_until(url: str, prefix: str, seconds: float) -> dict[str, int]:
    raw = aioredis.Redis.from_url(url, socket_timeout=5)
    manager = CacheManager(RedisBackend(url, socket_timeout=5), prefix=prefix, default_ttl=60)
    deadline = time.monotonic() + seconds
    reads = violations = 0

    async def load() -> int:
        value = int(await raw.get(f"{prefix}:db") or 0)
        await asyncio.sleep(random.uniform(0, 0.004))  # the load spans the writer's next write
        return value

    async def reader() -> None:
        nonlocal reads, violations
        while time.monotonic() < deadline:
            floor = int(await raw.get(f"{prefix}:published") or 0)
            value = await manager.get_or_load("items", "the-item", load, tags=["item"])
            reads += 1
            violations += value < floor

    try:
        await asyncio.gather(*(reader() for _ in range(8)))
        stats = manager.stats()["items"]
        return {
            "reads": reads,
            "violations": violations,
            "hits": stats["hits"],
            "coalesced": stats["coalesced"],
        }
    finally:
        await manager.close()
        await raw.aclose()


def main() -> None:
    url, prefix, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    print(json.dumps(asyncio.run(read_until(url, prefix, seconds))))


if __name__ == "__main__":
    main()
