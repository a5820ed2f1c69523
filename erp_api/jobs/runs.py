"""The bounded run history of background jobs: one summary row per job, updated in place.

Every finished task execution adds itself to its job's row with one atomic UPDATE (counters,
duration sum and maximum, the last run's details), so the table never grows with the number of runs
and concurrent workers never lose a count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import case, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.jobs.failures import MAX_ERROR_LENGTH
from erp_api.jobs.models import JobRun


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"


@dataclass(frozen=True)
class FinishedRun:
    job: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    error: str | None = None


class JobRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, run: FinishedRun) -> bool:
        """Fold ``run`` into its job's summary row; False if the row does not exist yet."""
        finished = run.status != RunStatus.RETRYING
        duration = run.duration_seconds
        stmt = (
            update(JobRun)
            .where(JobRun.name == run.job)
            .values(
                runs=JobRun.runs + (1 if finished else 0),
                successes=JobRun.successes + (1 if run.status == RunStatus.SUCCEEDED else 0),
                failures=JobRun.failures + (1 if run.status == RunStatus.FAILED else 0),
                retries=JobRun.retries + (1 if run.status == RunStatus.RETRYING else 0),
                total_duration_seconds=JobRun.total_duration_seconds + (duration if finished else 0.0),
                max_duration_seconds=case(
                    (JobRun.max_duration_seconds < duration, duration), else_=JobRun.max_duration_seconds
                )
                if finished
                else JobRun.max_duration_seconds,
                last_started_at=run.started_at,
                last_finished_at=run.finished_at,
                last_status=run.status.value,
                last_duration_seconds=duration,
                last_error=run.error[:MAX_ERROR_LENGTH] if run.error else None,
            )
        )
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def create(self, job: str) -> None:
        await self.session.execute(
            insert(JobRun).values(
                name=job,
                runs=0,
                successes=0,
                failures=0,
                retries=0,
                total_duration_seconds=0.0,
                max_duration_seconds=0.0,
            )
        )

    async def all(self, names: Sequence[str]) -> dict[str, JobRun]:
        rows = await self.session.scalars(select(JobRun).where(JobRun.name.in_(names)))
        return {row.name: row for row in rows}


async def record_run(sessions: async_sessionmaker[AsyncSession], run: FinishedRun) -> None:
    """Add one finished execution to its job's summary, creating the row on a job's first run."""
    async with sessions.begin() as session:
        if await JobRunRepository(session).add(run):
            return
    try:
        async with sessions.begin() as session:
            await JobRunRepository(session).create(run.job)
    except IntegrityError:
        pass  # another worker created it first; either way it exists now
    async with sessions.begin() as session:
        await JobRunRepository(session).add(run)
