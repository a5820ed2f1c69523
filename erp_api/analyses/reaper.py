"""The reaper: finds analyses no worker is going to finish and puts them back in line (or gives up).

* ``running`` unchanged for longer than the stuck limit: its worker was lost or killed. Requeued, or
  failed once it has used up its attempts.
* ``queued`` unchanged for longer than the requeue limit: its message was never published (broker
  down at submit time) or was lost with a broker. Published again.

Every change is a conditional update that also touches ``updated_at``, so concurrent reapers (or a
worker claiming meanwhile) never act twice; a duplicate message is harmless because claims are
conditional too. Work per run is bounded by ``batch``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.analyses.repository import AnalysisRepository
from erp_api.analyses.states import AnalysisStatus
from erp_api.db import utcnow
from erp_api.jobs.dispatch import BrokerUnavailable, TaskClient

log = structlog.get_logger("erp_api.analyses.reaper")


@dataclass(frozen=True)
class ReaperLimits:
    stuck_after_seconds: float
    requeue_after_seconds: float
    max_attempts: int
    batch: int = 200


@dataclass
class ReapReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    republished: list[int] = field(default_factory=list)
    unpublished: list[int] = field(default_factory=list)
    """Requeued, but the broker did not take the message: the next run tries again."""

    def as_dict(self) -> dict[str, int]:
        return {name: len(ids) for name, ids in vars(self).items()}


class AnalysisReaper:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], tasks: TaskClient, limits: ReaperLimits
    ) -> None:
        self._sessions = sessions
        self._tasks = tasks
        self._limits = limits

    async def reap(self) -> ReapReport:
        report = ReapReport()
        now = utcnow()
        stuck_before = now - timedelta(seconds=self._limits.stuck_after_seconds)
        waiting_before = now - timedelta(seconds=self._limits.requeue_after_seconds)
        async with self._sessions.begin() as session:
            repository = AnalysisRepository(session)
            for analysis_id, attempts in await repository.stale(
                AnalysisStatus.RUNNING, stuck_before, self._limits.batch
            ):
                if attempts >= self._limits.max_attempts:
                    error = (
                        f"gave up after {attempts} attempts: the worker running it stopped without a "
                        f"result for more than {self._limits.stuck_after_seconds:g} s"
                    )
                    if await repository.fail_stale(
                        analysis_id,
                        status=AnalysisStatus.RUNNING,
                        attempts=attempts,
                        before=stuck_before,
                        error=error,
                    ):
                        report.failed.append(analysis_id)
                elif await repository.requeue_stale(
                    analysis_id, status=AnalysisStatus.RUNNING, attempts=attempts, before=stuck_before
                ):
                    report.requeued.append(analysis_id)
            for analysis_id, attempts in await repository.stale(
                AnalysisStatus.QUEUED, waiting_before, self._limits.batch
            ):
                if await repository.requeue_stale(
                    analysis_id, status=AnalysisStatus.QUEUED, attempts=attempts, before=waiting_before
                ):
                    report.republished.append(analysis_id)
        # Published after the commit: a worker must find the row queued when the message arrives.
        for analysis_id in [*report.requeued, *report.republished]:
            try:
                await self._tasks.enqueue_analysis(analysis_id)
            except BrokerUnavailable as exc:
                log.warning("reaper_publish_failed", analysis_id=analysis_id, error=str(exc))
                report.unpublished.append(analysis_id)
        if report.requeued or report.failed or report.republished:
            log.info("reaper_acted", **report.as_dict())
        return report
