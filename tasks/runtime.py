"""What one worker process needs to run tasks: one event loop, one engine, the services.

Tasks are synchronous functions; they run the async services on a loop kept for the life of the
process (``asyncio.Runner``) with one engine and connection pool, instead of ``asyncio.run`` and a
new engine per task (see ``benchmarks/bench_analysis.py`` for the difference). The runtime is built
after the pool forks (``worker_process_init``) or lazily on first use, and belongs to one process
id: a forked child never reuses its parent's connections.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar, cast

import structlog
from celery import Celery

from erp_api.analyses.reaper import AnalysisReaper, ReaperLimits
from erp_api.analyses.runner import AnalysisRunner, BaselineMap, RunnerLimits
from erp_api.jobs.client import CeleryTaskClient
from erp_api.quality.retention import RetentionCleanup
from erp_api.quality.spc.series import Baseline, RuleSet
from erp_api.quality.warming import SummaryWarmer
from erp_api.resources import open_resources
from erp_api.settings import Settings
from erp_api.webhooks.delivery import WebhookDeliverer
from erp_api.webhooks.policy import DeliveryPolicy
from erp_api.webhooks.sweeper import WebhookSweeper

T = TypeVar("T")
log = structlog.get_logger("tasks.runtime")


class WorkerRuntime:
    def __init__(self, settings: Settings, app: Celery) -> None:
        self.pid = os.getpid()
        self.settings = settings
        self._loop = asyncio.Runner()
        # The same composition root as the web app: one engine, one cache, the same services.
        self.resources = self._loop.run(open_resources(settings, tasks=CeleryTaskClient(app, settings)))
        self.sessions = self.resources.sessions
        self.cache = self.resources.cache
        self.tasks = self.resources.tasks
        self.quality = self.resources.quality
        self.analyses = AnalysisRunner(
            self.sessions,
            self._analyze,
            RunnerLimits(
                time_limit_seconds=settings.analysis_soft_time_limit_seconds,
                stale_after_seconds=settings.analysis_stuck_after_seconds,
                max_attempts=settings.analysis_max_attempts,
                delay_seconds=settings.analysis_task_delay_seconds,
                pause_after_commit_seconds=settings.analysis_task_pause_after_commit_seconds,
                heartbeat_interval_seconds=settings.analysis_heartbeat_interval_seconds,
            ),
        )
        self.reaper = AnalysisReaper(self.sessions, self.tasks, reaper_limits(settings))
        self.retention = RetentionCleanup(
            self.sessions,
            self.cache,
            max_age_days=settings.retention_max_age_days,
            # Well within the task's soft time limit; what is left waits for the next run.
            budget_seconds=settings.analysis_soft_time_limit_seconds * 0.8,
        )
        self.warmer = SummaryWarmer(
            self.sessions, self.quality, shared_cache=settings.cache_backend == "redis"
        )
        webhook_policy = DeliveryPolicy.from_settings(settings)
        self.webhooks = WebhookDeliverer(self.sessions, self.tasks, webhook_policy)
        self.webhook_sweeper = WebhookSweeper(self.sessions, self.tasks, webhook_policy)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` to completion on this process's loop, in the caller's context.

        The copy carries the task's request id and log bindings into the coroutine; by default a
        Runner would use the context it was created in.
        """
        return self._loop.run(coroutine, context=contextvars.copy_context())

    async def _analyze(self, charge_id: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
        known = (
            {name: Baseline(center=b["center"], sigma=b["sigma"]) for name, b in baseline.items()}
            if baseline
            else None
        )
        return await self.quality.analyze_charge(charge_id, cast(RuleSet, rules), known)

    async def _close(self) -> None:
        try:
            await self.webhooks.close()
        finally:
            await self.resources.close()

    def close(self) -> None:
        try:
            self._loop.run(self._close())
        except Exception as exc:  # closing must not hide why the process is going away
            log.warning("runtime_close_failed", error=repr(exc))
        finally:
            self._loop.close()


def reaper_limits(settings: Settings) -> ReaperLimits:
    """The reaper's limits, the same for beat's job and every worker's recovery loop."""
    return ReaperLimits(
        stuck_after_seconds=settings.analysis_stuck_after_seconds,
        requeue_after_seconds=settings.analysis_requeue_after_seconds,
        max_attempts=settings.analysis_max_attempts,
        heartbeat_timeout_seconds=settings.analysis_heartbeat_timeout_seconds,
        redeliver_after_seconds=settings.analysis_redeliver_after_seconds,
    )


def runtime_for(app: Celery) -> WorkerRuntime:
    """This process's runtime for ``app``, built on first use (and again after a fork)."""
    runtime: WorkerRuntime | None = getattr(app, "erp_runtime", None)
    if runtime is None or runtime.pid != os.getpid():
        runtime = WorkerRuntime(app.erp_settings, app)
        app.erp_runtime = runtime
    return runtime


def discard_runtime(app: Celery) -> None:
    """Close and forget this process's runtime (at shutdown, or when its loop may be broken)."""
    runtime: WorkerRuntime | None = getattr(app, "erp_runtime", None)
    app.erp_runtime = None
    if runtime is not None and runtime.pid == os.getpid():
        runtime.close()
