"""The worker's recovery loop: analyses of dead workers go back in line without beat.

Every worker's main process runs the analysis reaper (``erp_api/analyses/reaper.py``) on a daemon
thread every ``ERP_ANALYSIS_RECOVERY_INTERVAL_SECONDS`` (once at start, then on the interval): a
running analysis whose heartbeat is older than ``ERP_ANALYSIS_HEARTBEAT_TIMEOUT_SECONDS`` is
requeued and published, a queued one never published is published, and a queued one whose message
a dead worker took without claiming it (``ERP_ANALYSIS_REDELIVER_AFTER_SECONDS``) is published again.
A queued one whose message may still wait in the broker's queue is left alone. Each worker doing it is safe:
the reaper's changes are conditional updates, so of several workers exactly one acts on an analysis.

The thread has its own event loop, engine and publisher (a Celery app of its own) and one pass at a
time, bounded by the reaper's batch and by a timeout, so it never holds up the worker's tasks.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import structlog

from erp_api.analyses.reaper import AnalysisReaper
from erp_api.db import create_engine, create_session_factory
from erp_api.jobs.client import build_task_client
from erp_api.jobs.failures import describe_failure
from erp_api.settings import Settings
from tasks.runtime import reaper_limits

MIN_PASS_TIMEOUT_SECONDS = 10.0
log = structlog.get_logger("tasks.recovery")


class RecoveryLoop:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._interval = settings.analysis_recovery_interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop (once); does nothing when the recovery interval is 0."""
        if self._interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="erp-analysis-recovery", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        with asyncio.Runner() as runner:
            runner.run(self._loop())

    async def _loop(self) -> None:
        engine = create_engine(self._settings)
        tasks = build_task_client(self._settings)
        # On a stopped heartbeat only: it proves the worker is gone. The stuck limit (rows claimed
        # before heartbeats existed) stays with beat's job.
        limits = replace(reaper_limits(self._settings), stuck_after_seconds=None)
        reaper = AnalysisReaper(create_session_factory(engine), tasks, limits)
        try:
            while not self._stop.is_set():
                await self._pass(reaper)
                await asyncio.to_thread(self._stop.wait, self._interval)
        finally:
            await tasks.close()
            await engine.dispose()

    async def _pass(self, reaper: AnalysisReaper) -> None:
        try:
            async with asyncio.timeout(max(MIN_PASS_TIMEOUT_SECONDS, self._interval)):
                await reaper.reap()  # logs what it did
        except Exception as exc:  # the loop must outlive a database or broker outage
            log.warning("analysis_recovery_failed", error=describe_failure(exc))
