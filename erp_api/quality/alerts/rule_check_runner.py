"""The background task of the web app that runs the on-ingest rule check.

The measurement writer calls ``notify()`` after each commit; the runner then checks every waiting
outbox row (``RuleChecker.check``, in batches of ``batch_size``) at once, so an alert is visible
well within a second of the 201. Every ``sweep_seconds`` it also takes the rows older than
``SWEEP_AGE`` from any process, which covers a process that died between its commit and its check
(its rows are still in the outbox). A failing check never ends the loop: it is logged, the loop
backs off exponentially, and the rows that failed are retried alone, later, so they hold no one
else up. ``stop()`` lets the current check finish (or cancels it after a timeout; its transaction
rolls back and its rows stay for the next start).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Final

import structlog

from erp_api.db import utcnow
from erp_api.quality.alerts.rule_checker import CheckFailed, RuleChecker

BATCH_SIZE: Final = 100
"""Outbox rows per check transaction."""
BATCHES_PER_ROUND: Final = 50
"""Batches one wake-up drains before the loop looks at stop requests and the sweep clock again."""
SWEEP_AGE: Final = timedelta(seconds=1)
"""The sweep takes rows at least this old: younger ones are their own process's to check."""
FIRST_SWEEP_SECONDS: Final = 1.0
"""How long after start the first sweep runs (or after ``sweep_seconds``, if shorter)."""
GAUGE_INTERVAL_SECONDS: Final = 2.0
"""The open-alert gauges are counted at most this often (and at every sweep)."""
BACKOFF_FIRST_SECONDS: Final = 0.1
BACKOFF_MAX_SECONDS: Final = 30.0
MAX_DEFERRED: Final = 10_000
"""At most this many failed rows are remembered for a later retry alone; beyond, all just wait."""

log = structlog.get_logger("erp_api.quality.alerts.rule_check_runner")


class RuleCheckRunner:
    """Runs ``checker`` whenever notified and every ``sweep_seconds``; ``start``/``stop`` it in the lifespan."""

    def __init__(
        self,
        checker: RuleChecker,
        *,
        sweep_seconds: float,
        refresh_gauges: Callable[[], Awaitable[None]] | None = None,
        delay_seconds: float = 0.0,
        batch_size: int = BATCH_SIZE,
        stop_timeout_seconds: float = 30.0,
    ) -> None:
        if sweep_seconds <= 0 or batch_size < 1:
            raise ValueError("sweep_seconds must be > 0 and batch_size >= 1")
        self._checker = checker
        self._sweep_seconds = sweep_seconds
        self._refresh_gauges = refresh_gauges
        self._delay = delay_seconds
        self._batch = batch_size
        self._stop_timeout = stop_timeout_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._gauges_stale = True
        # outbox row id -> (failures so far, monotonic time of its next retry)
        self._deferred: dict[int, tuple[int, float]] = {}

    def notify(self) -> None:
        """Measurements were committed: check soon. Safe to call from the event loop at any time."""
        self._wake.set()

    def alerts_changed(self) -> None:
        """An alert moved: count the open-alert gauges again soon."""
        self._gauges_stale = True
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rule-checker")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._wake.set()
        try:
            async with asyncio.timeout(self._stop_timeout):
                await asyncio.shield(task)
        except TimeoutError:
            log.error("rule_checker_stop_timeout")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # The loop -------------------------------------------------------------------------------------

    async def _run(self) -> None:
        # The first sweep (rows a previous process left behind) and count come soon, not while the
        # app is still starting: a second's grace lets the workers of a restart not all sweep at once.
        next_sweep = next_gauges = time.monotonic() + min(self._sweep_seconds, FIRST_SWEEP_SECONDS)
        failures = 0
        while not self._stopping.is_set():
            deadlines = [next_sweep, *(due for _, due in self._deferred.values())]
            if self._gauges_stale:
                deadlines.append(next_gauges)
            woken = await self._wait(min(deadlines) - time.monotonic())
            self._wake.clear()
            if self._stopping.is_set() or not await self._pause(self._delay):
                break
            try:
                sweeping = time.monotonic() >= next_sweep
                if sweeping:
                    next_sweep = time.monotonic() + self._sweep_seconds
                    self._gauges_stale = True
                    if await self._drain(sweep=True):
                        self._wake.set()  # more than a round's worth waiting: come back at once
                if woken and await self._drain(sweep=False):
                    self._wake.set()
                await self._retry_deferred()
                if self._gauges_stale and time.monotonic() >= next_gauges:
                    await self._gauges()
                    next_gauges = time.monotonic() + GAUGE_INTERVAL_SECONDS
                failures = 0
            except Exception as exc:
                failures += 1
                backoff = min(BACKOFF_FIRST_SECONDS * 2 ** (failures - 1), BACKOFF_MAX_SECONDS)
                log.error("rule_check_failed", failures=failures, retry_in=backoff, exc_info=exc)
                self._wake.set()  # retry what was waiting once the backoff is over
                if not await self._pause(backoff):
                    break

    async def _drain(self, *, sweep: bool) -> bool:
        """Check waiting rows in batches; True if a full round ran (more may be waiting)."""
        for _ in range(BATCHES_PER_ROUND):
            if self._stopping.is_set():
                return False
            created_before = utcnow() - SWEEP_AGE if sweep else None
            try:
                outcome = await self._checker.check(
                    self._batch, created_before=created_before, skip=self._deferred.keys()
                )
            except CheckFailed as exc:
                self._defer(exc.claimed)
                raise
            if outcome.opened:
                self._gauges_stale = True
            if len(outcome.claimed) < self._batch:
                return False
        return True

    async def _retry_deferred(self) -> None:
        """Retry each failed row whose time has come, alone."""
        now = time.monotonic()
        for row_id, (_failures, due) in sorted(self._deferred.items()):
            if due > now or self._stopping.is_set():
                continue
            try:
                outcome = await self._checker.check(1, only=[row_id])
            except CheckFailed as exc:
                self._defer(exc.claimed)
                raise
            del self._deferred[row_id]  # checked now, or gone (another process checked it)
            if outcome.opened:
                self._gauges_stale = True

    def _defer(self, row_ids: list[int]) -> None:
        now = time.monotonic()
        for row_id in row_ids:
            failures = self._deferred.get(row_id, (0, now))[0] + 1
            if row_id in self._deferred or len(self._deferred) < MAX_DEFERRED:
                delay = min(BACKOFF_FIRST_SECONDS * 2**failures, BACKOFF_MAX_SECONDS)
                self._deferred[row_id] = (failures, now + delay)

    async def _gauges(self) -> None:
        self._gauges_stale = False
        if self._refresh_gauges is not None:
            await self._refresh_gauges()

    async def _wait(self, seconds: float) -> bool:
        """Until notified (True), stopped, or ``seconds`` passed (False)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.0)):
                await self._wake.wait()
                return True
        return False

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopped meanwhile; False if stopped."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._stopping.wait()
        return not self._stopping.is_set()
