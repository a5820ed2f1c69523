"""The reaper puts analyses nobody will finish back in line, or gives up on them, and never acts twice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.analyses.models import AnomalyAnalysis
from erp_api.analyses.reaper import AnalysisReaper, ReaperLimits
from erp_api.analyses.repository import AnalysisRepository
from erp_api.db import utcnow
from tests.database import NewAnalysis
from tests.jobs.fakes import RecordingTaskClient

LIMITS = ReaperLimits(stuck_after_seconds=300, requeue_after_seconds=60, max_attempts=3)


async def age(sessions: async_sessionmaker[AsyncSession], analysis_id: int, seconds: float) -> None:
    async with sessions.begin() as session:
        await session.execute(
            update(AnomalyAnalysis)
            .where(AnomalyAnalysis.id == analysis_id)
            .values(updated_at=utcnow() - timedelta(seconds=seconds))
        )


async def claimed(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis, attempts: int
) -> int:
    analysis_id = await new_analysis(attempts=attempts)
    async with sessions.begin() as session:
        await AnalysisRepository(session).claim(analysis_id, status="queued", attempts=attempts, token="lost")
    return analysis_id


async def state(sessions: async_sessionmaker[AsyncSession], analysis_id: int) -> tuple[str, int, str | None]:
    async with sessions() as session:
        row = await AnalysisRepository(session).get(analysis_id)
    assert row is not None
    return row.status, row.attempts, row.error


async def test_an_analysis_stuck_in_running_is_requeued_and_published(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    stuck = await claimed(sessions, new_analysis, attempts=0)
    fresh = await claimed(sessions, new_analysis, attempts=0)
    await age(sessions, stuck, LIMITS.stuck_after_seconds + 1)
    report = await AnalysisReaper(sessions, tasks, LIMITS).reap()
    assert report.requeued == [stuck]
    assert tasks.published == [stuck]
    assert (await state(sessions, stuck))[:2] == ("queued", 1)
    assert (await state(sessions, fresh))[0] == "running"


async def test_an_analysis_stuck_after_its_last_attempt_is_failed(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    stuck = await claimed(sessions, new_analysis, attempts=LIMITS.max_attempts - 1)
    await age(sessions, stuck, LIMITS.stuck_after_seconds + 1)
    report = await AnalysisReaper(sessions, tasks, LIMITS).reap()
    status, attempts, error = await state(sessions, stuck)
    assert report.failed == [stuck] and tasks.published == []
    assert (status, attempts) == ("failed", LIMITS.max_attempts)
    assert error is not None and error.startswith("gave up after 3 attempts")


async def test_a_queued_analysis_nobody_picked_up_is_published_again_once_per_interval(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    waiting = await new_analysis()
    recent = await new_analysis()
    await age(sessions, waiting, LIMITS.requeue_after_seconds + 1)
    reaper = AnalysisReaper(sessions, tasks, LIMITS)
    first = await reaper.reap()
    second = await reaper.reap()
    assert first.republished == [waiting]
    assert second.republished == []  # touched: not again before another interval has passed
    assert tasks.published == [waiting]
    assert recent not in tasks.published


async def test_a_requeue_the_broker_refuses_is_reported_and_tried_again_later(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    tasks.down = True
    waiting = await new_analysis()
    await age(sessions, waiting, LIMITS.requeue_after_seconds + 1)
    report = await AnalysisReaper(sessions, tasks, LIMITS).reap()
    assert report.unpublished == [waiting]
    assert (await state(sessions, waiting))[0] == "queued"
    tasks.down = False
    await age(sessions, waiting, LIMITS.requeue_after_seconds + 1)
    assert (await AnalysisReaper(sessions, tasks, LIMITS).reap()).republished == [waiting]
    assert tasks.published == [waiting]


async def test_finished_analyses_are_left_alone(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    done = await claimed(sessions, new_analysis, attempts=0)
    async with sessions.begin() as session:
        await AnalysisRepository(session).fail_claimed(done, token="lost", error="x")
    await age(sessions, done, 10 * LIMITS.stuck_after_seconds)
    report = await AnalysisReaper(sessions, tasks, LIMITS).reap()
    assert report.as_dict() == {"requeued": 0, "failed": 0, "republished": 0, "unpublished": 0}
