"""Recovery after an outage happens in the background, on every path: no read is needed to repair a
missed invalidation or to close the circuit, one probe runs at a time, and ``close`` ends it."""

from __future__ import annotations

import asyncio

import pytest

from cache import CacheManager, MemoryBackend
from cache.backends.base import BackendUnavailable
from cache.breaker import CircuitBreaker
from cache.guard import BackendGuard
from tests.conftest import eventually


class Backend:
    """What the guard calls: ``repair`` and ``ping``, failing while ``down``; counts calls."""

    def __init__(self) -> None:
        self.down = False
        self.hang = False
        self.gate: asyncio.Event | None = None
        self.repairs = 0
        self.pings = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def _call(self) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.hang:
                await asyncio.Event().wait()
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(0)
            if self.down:
                raise BackendUnavailable("down")
        finally:
            self.in_flight -= 1

    async def repair(self) -> None:
        await self._call()
        self.repairs += 1

    async def ping(self) -> None:
        await self._call()
        self.pings += 1


def guard_for(
    backend: Backend, *, reset_timeout: float = 3600.0, repair_interval: float = 0.01
) -> BackendGuard:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=reset_timeout)
    return BackendGuard(
        enabled=True,
        breaker=breaker,
        repair=backend.repair,
        ping=backend.ping,
        repair_interval=repair_interval,
    )


async def test_a_missed_invalidation_is_repaired_in_the_background_without_any_call() -> None:
    backend = Backend()
    guard = guard_for(backend)

    guard.missed_invalidation()

    assert guard.ready is False
    await eventually(lambda: guard.ready)
    assert backend.repairs == 1
    assert guard.recovering is False  # the task ended once the backend was usable again
    await guard.close()


async def test_the_repair_is_retried_until_the_backend_answers_ignoring_the_breaker_cool_down() -> None:
    backend = Backend()
    backend.down = True
    guard = guard_for(backend, reset_timeout=3600.0)  # a probe after the cool-down would never come
    guard.failed()  # the circuit is open
    guard.missed_invalidation()

    await eventually(lambda: guard.breaker.consecutive_failures >= 3)  # several attempts, all failed
    assert guard.ready is False
    backend.down = False

    await eventually(lambda: guard.ready)
    assert backend.repairs == 1
    assert guard.breaker.state == "closed"
    await guard.close()


async def test_an_open_circuit_without_missed_invalidations_is_probed_with_a_ping() -> None:
    backend = Backend()
    guard = guard_for(backend, reset_timeout=0.05)

    guard.failed()  # e.g. a read timed out: the circuit opens, nothing was invalidated

    assert guard.ready is False
    await eventually(lambda: guard.ready)
    assert (backend.pings, backend.repairs) == (1, 0)
    await guard.close()


async def test_an_invalidation_missed_while_the_repair_runs_is_repaired_again() -> None:
    backend = Backend()
    backend.gate = asyncio.Event()
    guard = guard_for(backend)
    guard.missed_invalidation()
    await eventually(lambda: backend.in_flight == 1)

    guard.missed_invalidation()  # the repair in flight may have bumped the epoch before this write
    backend.gate.set()

    await eventually(lambda: guard.ready)
    assert backend.repairs == 2
    await guard.close()


async def test_one_probe_at_a_time_however_many_invalidations_are_missed() -> None:
    backend = Backend()
    backend.hang = True  # a hung Redis: every probe waits (for its timeout, in real life)
    guard = guard_for(backend)

    for _ in range(50):
        guard.missed_invalidation()
        await asyncio.sleep(0.001)

    assert backend.most_in_flight == 1
    await guard.close()


async def test_close_cancels_the_recovery_task() -> None:
    backend = Backend()
    backend.hang = True
    guard = guard_for(backend)
    guard.missed_invalidation()
    await eventually(lambda: backend.in_flight == 1)
    recovery = guard._recovery
    assert recovery is not None

    async with asyncio.timeout(10):  # a hang guard
        await guard.close()

    assert recovery.cancelled()
    assert backend.in_flight == 0
    assert guard.ready is False


class FlakyMemory(MemoryBackend):
    """A memory backend that can be switched off, like an unreachable Redis."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.epoch_bumps = 0

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailable("down")

    async def invalidate(self, clock_key: str, version_keys: tuple[str, ...]) -> None:
        self._check()
        self.epoch_bumps += any(key.endswith(":epoch") for key in version_keys)
        await super().invalidate(clock_key, version_keys)

    async def ping(self) -> None:
        self._check()


async def test_a_write_only_manager_bumps_the_epoch_once_the_backend_is_back() -> None:
    backend = FlakyMemory()
    manager = CacheManager(backend, prefix="p", failure_threshold=1, reset_timeout=3600, repair_interval=0.01)
    version_keys = manager.version_keys(["item"])
    before = await backend.capture("p:clock", version_keys)
    backend.down = True

    assert await manager.invalidate_tags(["item"]) is False
    assert await manager.invalidate_tags(["item"]) is False  # skipped: the circuit is open
    backend.down = False

    await eventually(lambda: manager.serving_from_cache)  # no read was made
    assert backend.epoch_bumps == 1
    assert await backend.capture("p:clock", version_keys) != before  # entries stored before are stale
    await manager.close()


@pytest.mark.parametrize("repair_interval", [0.0, -1.0])
def test_invalid_repair_interval_is_refused(repair_interval: float) -> None:
    with pytest.raises(ValueError):
        CacheManager(MemoryBackend(), repair_interval=repair_interval)
