"""Run one load per key at a time in this process and let every concurrent caller share it.

The load runs in its own task and callers wait on it through ``asyncio.shield``: a caller that is
cancelled stops waiting, but the load goes on for the others (and still fills the cache). A load
that raises hands the same exception to every waiter. A hit never gets here, so it takes no lock
and creates no task.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Coroutine, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """The loads running right now, by key; bounded by the number of concurrent callers."""

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def running(self, key: K) -> asyncio.Task[V] | None:
        """The load for ``key`` that is still running, if any."""
        return self._flights.get(key)

    def start(self, key: K, load: Coroutine[Any, Any, V]) -> asyncio.Task[V]:
        """Run ``load`` as the load for ``key``; wait for it with ``asyncio.shield``."""
        task = asyncio.get_running_loop().create_task(load)
        self._flights[key] = task
        task.add_done_callback(functools.partial(self._finished, key))
        return task

    async def run(self, key: K, load: Coroutine[Any, Any, V]) -> tuple[V, bool]:
        """Join the running load for ``key`` or start ``load``; returns ``(result, joined)``.

        ``load`` is closed unused when joining.
        """
        task = self._flights.get(key)
        joined = task is not None
        if task is None:
            task = self.start(key, load)
        else:
            load.close()
        return await asyncio.shield(task), joined

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            # Mark the exception as retrieved: waiters re-raise it, or nobody is left to care.
            task.exception()
