"""Run as ``python -m tests.cache.process_worker ROLE CONFIG_JSON``: one API worker's use of the cache.

Roles, as in a deployment where one process handles only writes and another only reads:

- ``writer`` never reads through the cache (unless ``read_own_writes``): every ``interval`` seconds
  it commits a new value to the database, then invalidates the value's tag. It stops writing at
  ``stop_writing_at`` and stays alive (its manager open, so its background repair can still run)
  until ``end_at``. Prints ``{"writes": [[value, committed, invalidated, ok], ...], ...}``.
  With ``read_own_writes`` it also reads before and after each write and counts reads after its
  own completed invalidation that return an older value (``own_stale``, must be 0).
- ``reader`` reads the value through the cache from ``readers`` coroutines until ``end_at`` and
  prints ``{"starts": [...], "values": [...], ...}``: when each read started and what it returned.

The "database" is a key in a Redis reached directly (``db_url``), so it stays up while the cache's
Redis (``cache_url``, maybe through a proxy) is frozen or restarted. Times are ``time.monotonic()``,
which all processes on the host share. Phases start at ``start_at`` so that processes line up.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import random
import sys
import time
from typing import Any

import redis.asyncio as aioredis

from cache import CacheManager, RedisBackend

TAGS = ["item"]
HANG_GUARD = 20.0  # seconds past end_at before a stuck worker reports its stacks and exits


def build_manager(config: dict[str, Any]) -> CacheManager:
    backend: Any = RedisBackend(
        config["cache_url"],
        socket_timeout=config["socket_timeout"],
        socket_connect_timeout=config["socket_timeout"],
    )
    if config.get("tiered"):
        from cache import TieredBackend

        backend = TieredBackend(
            backend,
            max_entries=1000,
            coherence_window=config["coherence_window"],
            channel_url=config.get("channel_url"),
        )
    options = {
        key: config[key] for key in ("failure_threshold", "reset_timeout", "repair_interval") if key in config
    }
    return CacheManager(backend, prefix=config["prefix"], default_ttl=600, **options)


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


async def write(config: dict[str, Any]) -> dict[str, Any]:
    db = aioredis.Redis.from_url(config["db_url"], socket_timeout=5)
    manager = build_manager(config)
    db_key = f"{config['prefix']}:db"
    writes: list[list[Any]] = []
    own_stale = 0

    async def load() -> int:
        return int(await db.get(db_key) or 0)

    try:
        await sleep_until(config["start_at"])
        value = int(await db.get(db_key) or 0)
        while time.monotonic() < config["stop_writing_at"]:
            if config.get("read_own_writes"):
                await manager.get_or_load("items", "the-item", load, tags=TAGS)
            value += 1
            await db.set(db_key, value)
            committed = time.monotonic()
            ok = await manager.invalidate_tags(TAGS)
            writes.append([value, committed, time.monotonic(), ok])
            if config.get("read_own_writes") and ok:
                own_stale += await manager.get_or_load("items", "the-item", load, tags=TAGS) < value
            await asyncio.sleep(random.uniform(0.5, 1.5) * config["interval"])
        await sleep_until(config["end_at"])
        return {
            "writes": writes,
            "own_stale": own_stale,
            "serving_from_cache": manager.serving_from_cache,
            "stats": manager.stats(),
            "backend": backend_stats(manager),
        }
    finally:
        await manager.close()
        await db.aclose()


async def read(config: dict[str, Any]) -> dict[str, Any]:
    db = aioredis.Redis.from_url(config["db_url"], socket_timeout=5)
    manager = build_manager(config)
    db_key = f"{config['prefix']}:db"
    starts: list[float] = []
    values: list[int] = []

    async def load() -> int:
        value = int(await db.get(db_key) or 0)
        await asyncio.sleep(random.uniform(0, config["load_delay"]))  # loads span the writer's writes
        return value

    async def reader() -> None:
        while (started := time.monotonic()) < config["end_at"]:
            value = await manager.get_or_load("items", "the-item", load, tags=TAGS)
            starts.append(started)
            values.append(value)
            await asyncio.sleep(config["pause"])

    try:
        await sleep_until(config["start_at"])
        await asyncio.gather(*(reader() for _ in range(config["readers"])))
        return {
            "starts": starts,
            "values": values,
            "serving_from_cache": manager.serving_from_cache,
            "stats": manager.stats(),
            "backend": backend_stats(manager),
        }
    finally:
        await manager.close()
        await db.aclose()


def backend_stats(manager: CacheManager) -> dict[str, int]:
    stats = getattr(manager._backend, "stats", None)
    return stats() if callable(stats) else {}


async def watchdog(deadline: float) -> None:
    """A hang guard: if still running at ``deadline``, show every task's stack on stderr and exit."""
    await sleep_until(deadline)
    for task in asyncio.all_tasks():
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()
    os._exit(3)


async def run(role: str, config: dict[str, Any]) -> dict[str, Any]:
    guard = asyncio.ensure_future(watchdog(config["end_at"] + HANG_GUARD))
    faulthandler.dump_traceback_later(config["end_at"] - time.monotonic() + 2 * HANG_GUARD, exit=True)
    try:
        return await {"writer": write, "reader": read}[role](config)
    finally:
        guard.cancel()
        faulthandler.cancel_dump_traceback_later()


def main() -> None:
    role, config = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(asyncio.run(run(role, config))))


if __name__ == "__main__":
    main()
