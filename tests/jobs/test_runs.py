"""Job run summaries: one row per job, counters that concurrent workers never lose."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.db import utcnow
from erp_api.jobs.runs import FinishedRun, JobRunRepository, RunStatus, record_run
from erp_api.jobs.status import JobStatusService
from tests.jobs.fakes import RecordingTaskClient


def run(
    status: RunStatus, seconds: float, error: str | None = None, job: str = "reap_analyses"
) -> FinishedRun:
    finished = utcnow()
    return FinishedRun(job, status, finished - timedelta(seconds=seconds), finished, seconds, error)


async def test_runs_are_summed_into_counts_durations_and_the_last_run(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await record_run(sessions, run(RunStatus.SUCCEEDED, 1.0))
    await record_run(sessions, run(RunStatus.RETRYING, 9.0, "database error (OperationalError)"))
    await record_run(sessions, run(RunStatus.FAILED, 3.0, "boom"))
    status = await JobStatusService(sessions, RecordingTaskClient()).status()
    job = next(job for job in status["jobs"] if job["name"] == "reap_analyses")
    assert (job["runs"], job["successes"], job["failures"], job["retries"]) == (2, 1, 1, 1)
    assert job["success_rate"] == 0.5
    assert job["average_duration_seconds"] == 2.0  # retried executions are not finished runs
    assert job["max_duration_seconds"] == 3.0
    assert job["last_status"] == "failed"
    assert job["last_error"] == "boom"
    assert job["last_duration_seconds"] == 3.0
    assert job["last_run"] is not None


async def test_concurrent_recordings_lose_no_run(sessions: async_sessionmaker[AsyncSession]) -> None:
    await asyncio.gather(*(record_run(sessions, run(RunStatus.SUCCEEDED, 0.1 * i)) for i in range(1, 11)))
    async with sessions() as session:
        row = (await JobRunRepository(session).all(["reap_analyses"]))["reap_analyses"]
    assert (row.runs, row.successes) == (10, 10)
    assert abs(row.max_duration_seconds - 1.0) < 1e-9


async def test_job_status_samples_queue_lengths_and_survives_a_down_broker(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tasks = RecordingTaskClient()
    await tasks.enqueue_analysis(1)
    service = JobStatusService(sessions, tasks)
    assert (await service.status())["queues"] == {"high_priority": 1, "maintenance": 0}
    tasks.down = True
    down = await service.status()
    assert down["queues"] == {"high_priority": None, "maintenance": None}
    assert down["broker_error"] == "the broker is unavailable (test)"
