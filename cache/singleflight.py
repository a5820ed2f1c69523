"""Share work between concurrent callers in this process: loads (``SingleFlight``), reads (``SharedReads``).

``SingleFlight``: one load per key at a time; every concurrent caller shares it. The load runs in
its own task and callers wait on it through ``asyncio.shield``: a caller that is cancelled stops
waiting, but the load goes on for the others (and still fills the cache). A load that raises hands
the same exception to every waiter. A hit never gets here, so it takes no lock and creates no task.

``SharedReads``: concurrent backend reads of one key share round trips, but never one that was sent
before the caller arrived (it may have been answered before an invalidation the caller has already
seen complete). Callers arriving while a read is in flight share the *next* read, which starts when
the current one ends; so any number of concurrent readers of a hot key cost at most two round trips
at a time, and each gets a read that started after it arrived.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["SharedReads", "SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
R = TypeVar("R")

Read = Callable[[str, tuple[str, ...]], Awaitable[R]]
"""A backend read: ``read(key, version_keys)``."""


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


class _NextRead(Generic[R]):
    """The callers waiting for the read that starts when the one in flight ends."""

    __slots__ = ("future", "version_keys")

    def __init__(self, version_keys: tuple[str, ...]) -> None:
        self.version_keys = version_keys
        self.future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.future.add_done_callback(_retrieve)


class SharedReads(Generic[R]):
    """Coalesces concurrent reads per key (see the module docstring); bounded by the keys in flight.

    An uncontended read runs in the caller's task and allocates nothing but a dict slot.
    """

    __slots__ = ("_reads", "_tasks")

    def __init__(self) -> None:
        # key -> None while a read is in flight and nobody waits for the next; else the next read.
        self._reads: dict[str, _NextRead[R] | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._reads)

    async def read(self, key: str, version_keys: tuple[str, ...], read: Read[R]) -> R:
        """``await read(key, version_keys)``, or share a read of the same key that starts later."""
        reads = self._reads
        if key not in reads:
            reads[key] = None
            try:
                return await read(key, version_keys)
            finally:
                self._done(key, read)
        waiting = reads[key]
        if waiting is None:
            waiting = reads[key] = _NextRead(version_keys)
        elif waiting.version_keys != version_keys:
            return await read(key, version_keys)  # another read of that key (other tags): not shared
        return await asyncio.shield(waiting.future)

    def _done(self, key: str, read: Read[R]) -> None:
        waiting = self._reads.pop(key)
        if waiting is not None:
            self._reads[key] = None
            task = asyncio.get_running_loop().create_task(self._run(key, waiting, read))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, key: str, waiting: _NextRead[R], read: Read[R]) -> None:
        try:
            result = await read(key, waiting.version_keys)
        except asyncio.CancelledError:
            waiting.future.cancel()
            raise
        except Exception as exc:  # handed to every waiter
            waiting.future.set_exception(exc)
        else:
            waiting.future.set_result(result)
        finally:
            self._done(key, read)


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Waiters re-raise the exception, or nobody is left to care: never log it as unretrieved.
    if not future.cancelled():
        future.exception()
