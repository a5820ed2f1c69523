"""Stampede protection: concurrent misses share one load, cancellation and errors behave."""

from __future__ import annotations

import asyncio

import pytest

from cache import CacheBackend, CacheManager
from cache.singleflight import SingleFlight


class GatedLoader:
    """A loader that blocks until released, counting its calls."""

    def __init__(self, value: bytes = b"loaded") -> None:
        self.value = value
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def __call__(self) -> bytes:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.value


@pytest.fixture
async def manager(backend: CacheBackend, prefix: str) -> CacheManager:
    return CacheManager(backend, prefix=prefix)


async def test_concurrent_misses_run_the_loader_once(manager: CacheManager) -> None:
    loader = GatedLoader()
    callers = [asyncio.ensure_future(manager.get_or_load("ns", "k", loader, tags=["t"])) for _ in range(50)]
    await loader.started.wait()
    await asyncio.sleep(0.05)
    loader.release.set()

    assert await asyncio.gather(*callers) == [b"loaded"] * 50
    assert loader.calls == 1
    stats = manager.stats()["ns"]
    assert (stats["misses"], stats["coalesced"]) == (1, 49)


async def test_cancelled_caller_does_not_cancel_the_load_for_the_others(manager: CacheManager) -> None:
    loader = GatedLoader()
    first = asyncio.ensure_future(manager.get_or_load("ns", "k", loader))  # starts the load
    await loader.started.wait()
    others = [asyncio.ensure_future(manager.get_or_load("ns", "k", loader)) for _ in range(5)]
    await asyncio.sleep(0.05)

    first.cancel()
    await asyncio.sleep(0)
    loader.release.set()

    assert await asyncio.gather(*others) == [b"loaded"] * 5
    assert first.cancelled()
    assert loader.calls == 1
    assert await manager.get_raw("ns", "k") == b"loaded"  # and it was still cached


async def test_loader_error_reaches_every_waiter_and_is_not_cached(manager: CacheManager) -> None:
    loader = GatedLoader()
    loader.error = RuntimeError("database down")
    callers = [asyncio.ensure_future(manager.get_or_load("ns", "k", loader)) for _ in range(10)]
    await loader.started.wait()
    await asyncio.sleep(0.05)
    loader.release.set()

    results = await asyncio.gather(*callers, return_exceptions=True)

    assert all(isinstance(result, RuntimeError) and str(result) == "database down" for result in results)
    assert loader.calls == 1
    assert await manager.get_raw("ns", "k") is None
    loader.error = None
    assert await manager.get_or_load("ns", "k", loader) == b"loaded"
    assert loader.calls == 2


async def test_caller_arriving_after_an_invalidation_does_not_join_an_older_load(
    manager: CacheManager,
) -> None:
    old = GatedLoader(b"old")
    before = asyncio.ensure_future(manager.get_or_load("ns", "k", old, tags=["t"]))
    await old.started.wait()  # the load has read the old data

    assert await manager.invalidate_tags(["t"]) is True
    new = GatedLoader(b"new")
    new.release.set()
    # Joining the older load would wait for it (and return b"old"): it is still blocked.
    after = await asyncio.wait_for(manager.get_or_load("ns", "k", new, tags=["t"]), timeout=2)

    assert after == b"new"
    old.release.set()
    assert await before == b"old"  # it started before the invalidation, so that is allowed
    assert await manager.get_or_load("ns", "k", new, tags=["t"]) == b"new"  # the old one was not stored


async def test_singleflight_forgets_finished_loads() -> None:
    flights: SingleFlight[str, int] = SingleFlight()

    async def load(value: int) -> int:
        await asyncio.sleep(0.01)
        return value

    results = await asyncio.gather(flights.run("k", load(1)), flights.run("k", load(2)))

    assert list(results) == [(1, False), (1, True)]
    assert len(flights) == 0
    assert await flights.run("k", load(3)) == (3, False)
