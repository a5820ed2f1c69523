"""Whether the manager may use its backend right now, and how it gets back to using it.

Two things stop the manager from serving from the backend: an open circuit breaker (the backend
keeps failing), and a missed invalidation (one that failed or was skipped: the backend may hold
entries it should have invalidated). Either starts one background recovery task, so recovery needs
no read: a process that only writes recovers as well as one that only reads.

- After a missed invalidation the task runs ``repair`` (the manager bumps the epoch, invalidating
  every entry of its prefix in every process) at once and then every ``repair_interval`` seconds
  until it succeeds, ignoring the breaker's cool-down: until the repair lands, other processes may
  serve entries that invalidation covered, so it must land as soon as the backend answers again.
- Otherwise (the circuit opened on failed reads) it ``ping``s once the breaker's cool-down is over.

Only after the probe succeeds is the backend used again. The task is bounded: one per guard, one
probe in flight (each bounded by the backend's own timeouts), probes spaced by ``repair_interval``
or the breaker's cool-down; it ends when the backend is usable again and is cancelled by ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from cache.backends.base import BackendUnavailable
from cache.breaker import CircuitBreaker

__all__ = ["BackendGuard"]


class BackendGuard:
    """``ready`` is True while the backend may be used; read it on every call, it is a plain attribute."""

    __slots__ = (
        "_clock",
        "_closed",
        "_enabled",
        "_missed",
        "_next_repair",
        "_ping",
        "_recovery",
        "_repair",
        "_repair_interval",
        "_repaired",
        "_wake",
        "breaker",
        "ready",
        "repairs",
    )

    def __init__(
        self,
        *,
        enabled: bool,
        breaker: CircuitBreaker,
        repair: Callable[[], Awaitable[None]],
        ping: Callable[[], Awaitable[None]],
        repair_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if repair_interval <= 0:
            raise ValueError("repair_interval must be positive")
        self.breaker = breaker
        self._enabled = enabled
        self._repair = repair
        self._ping = ping
        self._repair_interval = repair_interval
        self._clock = clock
        self._missed = 0
        self._repaired = 0
        self._next_repair = 0.0
        self._closed = False
        self._recovery: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None  # created by the task, in its event loop
        self.repairs = 0
        """Completed repairs (epoch bumps after missed invalidations)."""
        self.ready = enabled

    @property
    def may_call(self) -> bool:
        """True unless the circuit is open or probing (then calls would only wait for timeouts)."""
        return self._enabled and not self._closed and self.breaker.state == "closed"

    @property
    def recovering(self) -> bool:
        """True while the background recovery task runs."""
        return self._recovery is not None

    def succeeded(self) -> None:
        """A backend call succeeded."""
        self.breaker.record_success()
        self._refresh()

    def failed(self) -> None:
        """A backend call failed; an open circuit starts the recovery task."""
        self.breaker.record_failure()
        self._refresh()
        if self.breaker.state != "closed":
            self.maybe_recover()

    def missed_invalidation(self) -> None:
        """An invalidation failed or was skipped: serve nothing from the backend until repaired."""
        self._missed += 1
        self._refresh()
        if self._wake is not None:
            self._wake.set()  # the task may be waiting out the breaker's cool-down: repair sooner
        self.maybe_recover()

    def maybe_recover(self) -> None:
        """Start the recovery task if the backend is not usable and it is not running yet."""
        if self._recovery is None and self._enabled and not self._closed and not self.ready:
            self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def close(self) -> None:
        """Stop using the backend for good; cancels the recovery task."""
        self._closed = True
        self._refresh()
        recovery = self._recovery
        if recovery is not None:
            recovery.cancel()
            await asyncio.gather(recovery, return_exceptions=True)

    async def _recover(self) -> None:
        self._wake = asyncio.Event()
        try:
            while not self._closed:
                dirty = self._missed != self._repaired
                if not dirty and self.breaker.state == "closed":
                    return
                wait = self._next_repair - self._clock() if dirty else self.breaker.probe_due_in()
                if wait > 0:
                    await self._sleep(wait)
                elif dirty:
                    await self._probe_repair()
                elif self.breaker.try_probe():
                    await self._probe_ping()
                else:  # another caller's probe is in flight: look again later
                    await self._sleep(self._repair_interval)
        finally:
            self._recovery = self._wake = None
            self._refresh()

    async def _probe_repair(self) -> None:
        missed = self._missed
        self._next_repair = self._clock() + self._repair_interval
        self.breaker.force_probe()
        try:
            await self._repair()
        except BackendUnavailable:
            self.breaker.record_failure()
        else:
            # Invalidations missed while the repair ran are not known to be covered by it: repair
            # again, at once (the backend just answered).
            self._repaired = missed
            self._next_repair = 0.0
            self.repairs += 1
            self.breaker.record_success()
        self._refresh()

    async def _probe_ping(self) -> None:
        try:
            await self._ping()
        except BackendUnavailable:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()
        self._refresh()

    async def _sleep(self, seconds: float) -> None:
        wake = self._wake
        if wake is None:  # pragma: no cover - only the task sleeps, and it has created the event
            return
        wake.clear()
        # asyncio.timeout, not wait_for: on Python 3.11, wait_for can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await wake.wait()

    def _refresh(self) -> None:
        self.ready = self.may_call and self._missed == self._repaired
