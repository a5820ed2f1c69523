"""The reaper: finds analyses no worker is going to finish and puts them back in line (or gives up).

* ``running`` whose worker is gone: its heartbeat (renewed by the runner every few seconds while it
  runs) is older than the heartbeat timeout, or the row is unchanged for longer than the stuck limit
  (the only sign for a row claimed before heartbeats existed). Requeued and published again, or
  failed once it has used up its attempts.
* ``queued`` that was never published (broker down at submit time, or a requeue whose publish
  failed), unchanged for longer than the requeue limit: published.
* ``queued`` whose message a worker took and never ran: the worker died between receiving the
  message and claiming the analysis (or while holding it for a retry's countdown). The message is
  in that worker's unacknowledged set, which the broker gives back only after its visibility
  timeout (an hour). The broker's queue is first in, first out: of the queued analyses published
  before the reaper asked for the queue's length ``n``, only the ``n`` published last can still be
  in it; an older one published longer ago than the redeliver limit is published again. A queued
  analysis whose message may still be waiting in line is never sent twice, however long the backlog.

Every worker runs the reaper on a short timer (``tasks/recovery.py``) with the heartbeat timeout
only, so recovery needs no beat: with the defaults an analysis of a killed worker is back in line
within 90 s (heartbeat timeout 60 s + recovery interval 30 s). Beat's ``reap_analyses`` job also
applies the stuck limit, the only sign of a lost worker for rows claimed before heartbeats existed.

Every change is a conditional update that also touches ``updated_at``, so concurrent reapers (or a
worker claiming meanwhile) never act twice; a duplicate message is harmless because claims are
conditional too, and only the latest claim can store an outcome. Work per run is bounded by ``batch``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.analyses.repository import AnalysisRepository
from erp_api.analyses.states import AnalysisStatus
from erp_api.db import utcnow
from erp_api.jobs.dispatch import ANALYSIS_JOB, BrokerUnavailable, TaskClient

log = structlog.get_logger("erp_api.analyses.reaper")


@dataclass(frozen=True)
class ReaperLimits:
    stuck_after_seconds: float | None
    """A running analysis unchanged for this long is abandoned; None: its heartbeat only."""
    requeue_after_seconds: float
    max_attempts: int
    batch: int = 200
    heartbeat_timeout_seconds: float | None = None
    """A running analysis without a heartbeat for this long is abandoned; None: the stuck limit only."""
    redeliver_after_seconds: float | None = None
    """A queued analysis published this long ago whose message has left the queue unclaimed is
    published again; None: a published message is left to the broker's visibility timeout."""


@dataclass
class ReapReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    republished: list[int] = field(default_factory=list)
    redelivered: list[int] = field(default_factory=list)
    """Queued, published, gone from the queue and never claimed: published again."""
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
        limits = self._limits
        unchanged_before = (
            now - timedelta(seconds=limits.stuck_after_seconds)
            if limits.stuck_after_seconds is not None
            else None
        )
        silent_before = (
            now - timedelta(seconds=limits.heartbeat_timeout_seconds)
            if limits.heartbeat_timeout_seconds is not None
            else None
        )
        waiting_before = now - timedelta(seconds=limits.requeue_after_seconds)
        in_queue = await self._queue_length() if limits.redeliver_after_seconds is not None else None
        to_publish: dict[int, int] = {}
        async with self._sessions.begin() as session:
            repository = AnalysisRepository(session)
            for analysis_id, attempts in await repository.abandoned(
                unchanged_before=unchanged_before, silent_before=silent_before, limit=limits.batch
            ):
                if attempts >= limits.max_attempts:
                    error = (
                        f"gave up after {attempts} attempts: the worker running it stopped without a result"
                    )
                    if await repository.fail_abandoned(
                        analysis_id,
                        attempts=attempts,
                        unchanged_before=unchanged_before,
                        silent_before=silent_before,
                        error=error,
                    ):
                        report.failed.append(analysis_id)
                elif await repository.requeue_abandoned(
                    analysis_id,
                    attempts=attempts,
                    unchanged_before=unchanged_before,
                    silent_before=silent_before,
                ):
                    report.requeued.append(analysis_id)
                    to_publish[analysis_id] = attempts
            for analysis_id, attempts in await repository.unpublished(waiting_before, limits.batch):
                if await repository.requeue_stale(
                    analysis_id, status=AnalysisStatus.QUEUED, attempts=attempts, before=waiting_before
                ):
                    report.republished.append(analysis_id)
                    to_publish[analysis_id] = attempts
            if in_queue is not None and limits.redeliver_after_seconds is not None:
                asked_at, waiting = in_queue
                lost_before = now - timedelta(seconds=limits.redeliver_after_seconds)
                for analysis_id, attempts, published_at in await repository.published_behind(
                    asked_at, newest=waiting, limit=limits.batch
                ):
                    if published_at < lost_before and await repository.withdraw_publication(
                        analysis_id, attempts=attempts, published_before=lost_before
                    ):
                        report.redelivered.append(analysis_id)
                        to_publish[analysis_id] = attempts
        # Published after the commit: a worker must find the row queued when the message arrives.
        published: list[tuple[int, int]] = []
        for analysis_id, attempts in to_publish.items():
            try:
                await self._tasks.enqueue_analysis(analysis_id)
            except BrokerUnavailable as exc:
                log.warning("reaper_publish_failed", analysis_id=analysis_id, error=str(exc))
                report.unpublished.append(analysis_id)
            else:
                published.append((analysis_id, attempts))
        if published:
            async with self._sessions.begin() as session:
                repository = AnalysisRepository(session)
                for analysis_id, attempts in published:
                    await repository.mark_published(analysis_id, attempts=attempts)
        if report.requeued or report.failed or report.republished or report.redelivered:
            log.info("reaper_acted", **report.as_dict())
        return report

    async def _queue_length(self) -> tuple[datetime, int] | None:
        """(when it was asked, messages waiting in the analyses' queue), or None if the broker cannot
        tell: then no message counts as lost.

        Asked after ``when``: a message published before then is counted if it is still in line.
        """
        queue = next(job.queue for job in self._tasks.jobs() if job.name == ANALYSIS_JOB)
        asked_at = utcnow()
        try:
            lengths = await self._tasks.queue_lengths()
        except BrokerUnavailable as exc:
            log.warning("reaper_queue_length_unknown", error=str(exc))
            return None
        return asked_at, lengths.get(queue, 0)
