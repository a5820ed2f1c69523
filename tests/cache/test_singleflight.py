"""Stampede protection: concurrent misses share one load, concurrent reads share round trips,
cancellation and errors behave."""

from __future__ import annotations

import asyncio

import pytest

from cache import CacheBackend, CacheManager, RedisBackend
from cache.singleflight import SharedReads, SingleFlight
from tests.conftest import eventually
from tests.services import require_redis


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


class GatedReads:
    """A backend read that blocks until released; records the arrival order of reads and callers."""

    def __init__(self) -> None:
        self.calls = 0
        self.gates: list[asyncio.Event] = []
        self.error: Exception | None = None

    async def __call__(self, key: str, version_keys: tuple[str, ...]) -> int:
        self.calls += 1
        number = self.calls
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if self.error is not None:
            raise self.error
        return number  # which read answered

    async def release_all(self) -> None:
        for gate in self.gates:
            gate.set()
        await asyncio.sleep(0)


async def wait_for_reads(reads: GatedReads, count: int) -> None:
    await eventually(lambda: reads.calls >= count)


async def test_concurrent_readers_share_the_next_read_never_one_already_sent() -> None:
    shared: SharedReads[int] = SharedReads()
    reads = GatedReads()
    first = asyncio.ensure_future(shared.read("k", ("v",), reads))
    await wait_for_reads(reads, 1)  # read 1 is on the wire

    later = [asyncio.ensure_future(shared.read("k", ("v",), reads)) for _ in range(31)]
    await asyncio.sleep(0.01)
    assert reads.calls == 1  # the latecomers wait; they do not send reads of their own
    reads.gates[0].set()
    await wait_for_reads(reads, 2)
    reads.gates[1].set()

    assert await first == 1
    assert await asyncio.gather(*later) == [2] * 31  # the read that started after they arrived
    assert reads.calls == 2
    assert len(shared) == 0


async def test_reads_of_other_keys_or_other_version_keys_are_not_shared() -> None:
    shared: SharedReads[int] = SharedReads()
    reads = GatedReads()
    first = asyncio.ensure_future(shared.read("k", ("v",), reads))
    await wait_for_reads(reads, 1)

    other_key = asyncio.ensure_future(shared.read("j", ("v",), reads))
    waiting = asyncio.ensure_future(shared.read("k", ("v",), reads))
    other_tags = asyncio.ensure_future(shared.read("k", ("w",), reads))
    await wait_for_reads(reads, 3)  # "j" and ("w",) were sent at once
    await reads.release_all()
    await wait_for_reads(reads, 4)
    await reads.release_all()

    assert sorted([await first, await other_key, await other_tags]) == [1, 2, 3]
    assert await waiting == 4


async def test_a_failed_shared_read_reaches_its_waiters_and_a_cancelled_waiter_stops_nobody() -> None:
    shared: SharedReads[int] = SharedReads()
    reads = GatedReads()
    first = asyncio.ensure_future(shared.read("k", ("v",), reads))
    await wait_for_reads(reads, 1)
    waiters = [asyncio.ensure_future(shared.read("k", ("v",), reads)) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    reads.gates[0].set()
    await wait_for_reads(reads, 2)
    reads.error = RuntimeError("redis down")
    reads.gates[1].set()

    assert await first == 1
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert [str(result) for result in results[1:]] == ["redis down", "redis down"]
    assert len(shared) == 0


@pytest.mark.redis
async def test_32_concurrent_readers_of_a_hot_key_on_redis_share_round_trips(prefix: str) -> None:
    url = require_redis()
    backend = RedisBackend(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    manager = CacheManager(backend, prefix=prefix)
    round_trips = 0
    mget = backend._client.mget

    async def counted_mget(*keys: str) -> object:
        nonlocal round_trips
        round_trips += 1
        return await mget(*keys)

    async def load() -> bytes:
        return b"hot"

    try:
        await manager.get_or_load("ns", "hot", load, tags=["t"])
        backend._client.mget = counted_mget  # type: ignore[method-assign,assignment]

        results = await asyncio.gather(
            *(manager.get_or_load("ns", "hot", load, tags=["t"]) for _ in range(32))
        )

        assert results == [b"hot"] * 32
        assert manager.stats()["ns"]["hits"] == 32
        assert round_trips <= 2  # the first reader's MGET, and one shared by everyone who came during it
    finally:
        await manager.close()
