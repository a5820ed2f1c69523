"""Whether the manager may use its backend right now, and how it gets back to using it.

Two things stop the manager from serving from the backend: an open circuit breaker (the backend
keeps failing), and a missed invalidation (one that failed or was skipped: the backend may hold
entries it should have invalidated). Recovery is one background probe at a time, so no caller waits
for it: if an invalidation was missed, the probe is the ``repair`` call (the manager bumps the epoch,
invalidating every entry of its prefix everywhere); otherwise it is a ``ping``. Only after the probe
succeeds is the backend used again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from cache.backends.base import BackendUnavailable
from cache.breaker import CircuitBreaker

__all__ = ["BackendGuard"]


class BackendGuard:
    """``ready`` is True while the backend may be used; read it on every call, it is a plain attribute."""

    __slots__ = (
        "_closed",
        "_enabled",
        "_missed",
        "_ping",
        "_recovery",
        "_repair",
        "_repaired",
        "breaker",
        "ready",
    )

    def __init__(
        self,
        *,
        enabled: bool,
        breaker: CircuitBreaker,
        repair: Callable[[], Awaitable[None]],
        ping: Callable[[], Awaitable[None]],
    ) -> None:
        self.breaker = breaker
        self._enabled = enabled
        self._repair = repair
        self._ping = ping
        self._missed = 0
        self._repaired = 0
        self._closed = False
        self._recovery: asyncio.Task[None] | None = None
        self.ready = enabled

    @property
    def may_call(self) -> bool:
        """True unless the circuit is open or probing (then calls would only wait for timeouts)."""
        return self._enabled and not self._closed and self.breaker.state == "closed"

    def succeeded(self) -> None:
        """A backend call succeeded."""
        self.breaker.record_success()
        self._refresh()

    def failed(self) -> None:
        """A backend call failed."""
        self.breaker.record_failure()
        self._refresh()

    def missed_invalidation(self) -> None:
        """An invalidation failed or was skipped: serve nothing from the backend until repaired."""
        self._missed += 1
        self._refresh()

    def maybe_recover(self) -> None:
        """Start the recovery probe in the background if it is due and not already running."""
        if not self._enabled or self._closed or self._recovery is not None:
            return
        if self.breaker.try_probe():
            self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def close(self) -> None:
        """Stop using the backend for good."""
        self._closed = True
        self._refresh()
        if self._recovery is not None:
            self._recovery.cancel()
            await asyncio.gather(self._recovery, return_exceptions=True)

    async def _recover(self) -> None:
        missed = self._missed
        try:
            await (self._repair() if missed != self._repaired else self._ping())
        except BackendUnavailable:
            self.breaker.record_failure()
        else:
            self._repaired = missed
            self.breaker.record_success()
        finally:
            self._recovery = None
            self._refresh()

    def _refresh(self) -> None:
        self.ready = self.may_call and self._missed == self._repaired
