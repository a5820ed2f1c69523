"""The reaper puts analyses nobody will finish back in line, or gives up on them, and never acts twice."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.analyses.models import AnomalyAnalysis
from erp_api.analyses.reaper import AnalysisReaper, ReaperLimits
from erp_api.analyses.repository import AnalysisRepository
from erp_api.db import utcnow
from erp_api.jobs.dispatch import BrokerUnavailable
from tests.database import NewAnalysis
from tests.jobs.fakes import RecordingTaskClient

LIMITS = ReaperLimits(stuck_after_seconds=300, requeue_after_seconds=60, max_attempts=3)


async def backdate(
    sessions: async_sessionmaker[AsyncSession], analysis_id: int, column: str, seconds: float
) -> None:
    """Set the analysis's timestamp ``column`` to ``seconds`` ago."""
    async with sessions.begin() as session:
        await session.execute(
            update(AnomalyAnalysis)
            .where(AnomalyAnalysis.id == analysis_id)
            .values({column: utcnow() - timedelta(seconds=seconds)})
        )


async def age(sessions: async_sessionmaker[AsyncSession], analysis_id: int, seconds: float) -> None:
    await backdate(sessions, analysis_id, "updated_at", seconds)


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
    assert not any(report.as_dict().values())


HEARTBEATS = ReaperLimits(
    stuck_after_seconds=300, requeue_after_seconds=60, max_attempts=3, heartbeat_timeout_seconds=30
)


async def silence(sessions: async_sessionmaker[AsyncSession], analysis_id: int, seconds: float) -> None:
    """As if the worker running it died ``seconds`` ago: its last heartbeat is that old."""
    await backdate(sessions, analysis_id, "heartbeat_at", seconds)


async def published_at(sessions: async_sessionmaker[AsyncSession], analysis_id: int) -> object:
    async with sessions() as session:
        row = await AnalysisRepository(session).get(analysis_id)
    assert row is not None
    return row.published_at


async def test_a_running_analysis_whose_heartbeat_stopped_is_requeued_long_before_the_stuck_limit(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    silent = await claimed(sessions, new_analysis, attempts=0)
    beating = await claimed(sessions, new_analysis, attempts=0)
    await silence(sessions, silent, 31)
    await silence(sessions, beating, 5)
    report = await AnalysisReaper(sessions, tasks, HEARTBEATS).reap()
    assert report.requeued == [silent]
    assert tasks.published == [silent]
    assert (await state(sessions, silent))[:2] == ("queued", 1)
    assert await published_at(sessions, silent) is not None  # the broker has it: not sent again
    assert (await state(sessions, beating))[0] == "running"


async def test_a_silent_analysis_after_its_last_attempt_is_failed(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    silent = await claimed(sessions, new_analysis, attempts=HEARTBEATS.max_attempts - 1)
    await silence(sessions, silent, 31)
    report = await AnalysisReaper(sessions, tasks, HEARTBEATS).reap()
    status, attempts, error = await state(sessions, silent)
    assert report.failed == [silent] and tasks.published == []
    assert (status, attempts) == ("failed", HEARTBEATS.max_attempts)
    assert error is not None and error.startswith("gave up after 3 attempts")


async def test_concurrent_reapers_requeue_and_publish_a_silent_analysis_once(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    silent = await claimed(sessions, new_analysis, attempts=0)
    await silence(sessions, silent, 31)
    reports = await asyncio.gather(*(AnalysisReaper(sessions, tasks, HEARTBEATS).reap() for _ in range(4)))
    assert sorted(analysis_id for report in reports for analysis_id in report.requeued) == [silent]
    assert tasks.published == [silent]
    assert (await state(sessions, silent))[:2] == ("queued", 1)


async def test_a_requeued_analysis_waiting_in_the_broker_is_not_published_again(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    silent = await claimed(sessions, new_analysis, attempts=0)
    await silence(sessions, silent, 31)
    assert (await AnalysisReaper(sessions, tasks, HEARTBEATS).reap()).requeued == [silent]
    await age(sessions, silent, 10 * HEARTBEATS.requeue_after_seconds)  # a long backlog
    later = await AnalysisReaper(sessions, tasks, HEARTBEATS).reap()
    assert not any(later.as_dict().values())
    assert tasks.published == [silent]


async def test_a_requeue_whose_publish_failed_is_published_by_a_later_run(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    tasks.down = True
    silent = await claimed(sessions, new_analysis, attempts=0)
    await silence(sessions, silent, 31)
    first = await AnalysisReaper(sessions, tasks, HEARTBEATS).reap()
    assert (first.requeued, first.unpublished) == ([silent], [silent])
    assert await published_at(sessions, silent) is None
    tasks.down = False
    await age(sessions, silent, HEARTBEATS.requeue_after_seconds + 1)
    assert (await AnalysisReaper(sessions, tasks, HEARTBEATS).reap()).republished == [silent]
    assert tasks.published == [silent]
    assert await published_at(sessions, silent) is not None


async def test_on_the_heartbeat_alone_a_long_unchanged_but_beating_analysis_is_left_running(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    limits = ReaperLimits(
        stuck_after_seconds=None, requeue_after_seconds=60, max_attempts=3, heartbeat_timeout_seconds=30
    )
    beating = await claimed(sessions, new_analysis, attempts=0)
    silent = await claimed(sessions, new_analysis, attempts=0)
    await age(sessions, beating, 10 * 300)
    await silence(sessions, silent, 31)
    report = await AnalysisReaper(sessions, tasks, limits).reap()
    assert report.requeued == [silent]
    assert (await state(sessions, beating))[0] == "running"


# A worker that received an analysis's message and died before claiming it took the message along:
# the broker gives it back only after its visibility timeout (an hour).
REDELIVER = ReaperLimits(
    stuck_after_seconds=None, requeue_after_seconds=60, max_attempts=3, redeliver_after_seconds=30
)


async def published(sessions: async_sessionmaker[AsyncSession], analysis_id: int, seconds_ago: float) -> None:
    """As if the analysis's message reached the broker ``seconds_ago``."""
    await backdate(sessions, analysis_id, "published_at", seconds_ago)


async def taken_from_the_queue(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis, seconds_ago: float
) -> tuple[RecordingTaskClient, int]:
    """A queued analysis published ``seconds_ago`` whose message has left the (now empty) queue."""
    tasks = RecordingTaskClient()
    tasks.in_queue = 0
    analysis_id = await new_analysis()
    await published(sessions, analysis_id, seconds_ago)
    return tasks, analysis_id


async def test_a_queued_analysis_whose_message_left_the_queue_unclaimed_is_published_again_once(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks, lost = await taken_from_the_queue(sessions, new_analysis, REDELIVER.redeliver_after_seconds + 1)
    reaper = AnalysisReaper(sessions, tasks, REDELIVER)
    first = await reaper.reap()
    second = await reaper.reap()
    assert first.as_dict() == {
        "requeued": 0,
        "failed": 0,
        "republished": 0,
        "redelivered": 1,
        "unpublished": 0,
    }
    assert first.redelivered == [lost]
    assert second.redelivered == []  # published just now: it may be in a worker's hands again
    assert tasks.published == [lost]
    assert (await state(sessions, lost))[:2] == ("queued", 0)  # a delivery, not an attempt
    assert await published_at(sessions, lost) is not None


async def test_a_message_taken_moments_ago_may_be_about_to_be_claimed_and_is_left_alone(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks, _ = await taken_from_the_queue(sessions, new_analysis, REDELIVER.redeliver_after_seconds - 5)
    report = await AnalysisReaper(sessions, tasks, REDELIVER).reap()
    assert report.redelivered == [] and tasks.published == []


async def test_of_a_long_backlog_only_analyses_older_than_every_message_in_the_queue_are_published_again(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    """The queue is first in, first out: with ``n`` messages waiting, they are the ``n`` published last."""
    tasks = RecordingTaskClient()
    backlog = [await new_analysis() for _ in range(4)]
    for position, analysis_id in enumerate(backlog):  # the first published longest ago
        await published(sessions, analysis_id, 10 * REDELIVER.redeliver_after_seconds - position)
    tasks.in_queue = 4
    assert (await AnalysisReaper(sessions, tasks, REDELIVER).reap()).redelivered == []
    tasks.in_queue = 2  # two were taken from the front of the line; neither was claimed
    report = await AnalysisReaper(sessions, tasks, REDELIVER).reap()
    assert sorted(report.redelivered) == sorted(backlog[:2])
    assert sorted(tasks.published) == sorted(backlog[:2])


async def test_a_message_published_while_the_queue_was_measured_is_not_taken_for_lost(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    """Only analyses published before the queue's length was asked are ranked against it."""
    tasks = RecordingTaskClient()
    old = await new_analysis()
    await published(sessions, old, 10 * REDELIVER.redeliver_after_seconds)
    tasks.in_queue = 1  # the old one's message, still in line
    late = await new_analysis()
    original = tasks.queue_lengths

    async def measured_then_published() -> Mapping[str, int]:
        lengths = await original()
        await published(sessions, late, -1)  # published just after the length was read
        return lengths

    tasks.queue_lengths = measured_then_published  # type: ignore[method-assign]
    report = await AnalysisReaper(sessions, tasks, REDELIVER).reap()
    assert report.redelivered == []


async def test_without_the_queue_length_no_message_is_taken_for_lost(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks = RecordingTaskClient()
    tasks.down = True
    lost = await new_analysis()
    await published(sessions, lost, 10 * REDELIVER.redeliver_after_seconds)
    report = await AnalysisReaper(sessions, tasks, REDELIVER).reap()
    assert not any(report.as_dict().values())
    assert await published_at(sessions, lost) is not None


async def test_concurrent_reapers_publish_a_lost_message_again_once(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks, lost = await taken_from_the_queue(sessions, new_analysis, REDELIVER.redeliver_after_seconds + 1)
    reports = await asyncio.gather(*(AnalysisReaper(sessions, tasks, REDELIVER).reap() for _ in range(4)))
    assert [analysis_id for report in reports for analysis_id in report.redelivered] == [lost]
    assert tasks.published == [lost]


async def test_a_redelivery_the_broker_refuses_falls_back_to_the_never_published_path(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    tasks, lost = await taken_from_the_queue(sessions, new_analysis, REDELIVER.redeliver_after_seconds + 1)
    original = tasks.enqueue_analysis

    async def refused(analysis_id: int) -> None:
        raise BrokerUnavailable("the broker is unavailable (test)")

    tasks.enqueue_analysis = refused  # type: ignore[method-assign]
    first = await AnalysisReaper(sessions, tasks, REDELIVER).reap()
    assert (first.redelivered, first.unpublished) == ([lost], [lost])
    assert await published_at(sessions, lost) is None
    tasks.enqueue_analysis = original  # type: ignore[method-assign]
    await age(sessions, lost, REDELIVER.requeue_after_seconds + 1)
    assert (await AnalysisReaper(sessions, tasks, REDELIVER).reap()).republished == [lost]
    assert tasks.published == [lost]
