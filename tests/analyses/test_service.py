"""AnalysisService as the API calls it, on the real database (SQLite and PostgreSQL).

The contract (``erp_api/analyses/service.py``): a submitted analysis is committed queued before it
is published, and published once; a repeated Idempotency-Key returns the first analysis; a broker
failure is never the client's problem: the analysis stays queued and the reaper publishes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager, MemoryBackend
from erp_api.analyses.models import AnomalyAnalysis
from erp_api.analyses.reaper import AnalysisReaper, ReaperLimits
from erp_api.analyses.repository import AnalysisRepository
from erp_api.analyses.schemas import AnalysisCreate, AnalysisListQuery, BaselineIn
from erp_api.analyses.service import AnalysisService
from erp_api.audit.models import AuditEvent
from erp_api.errors import NotFound, ValidationFailed
from erp_api.quality.schemas import MeasurementBatchIn, MeasurementIn, SpecBody
from erp_api.quality.service import QualityService
from tests.database import charge_row, store_charge
from tests.jobs.fakes import RecordingTaskClient

NELSON = AnalysisCreate(rules="nelson")


class CommitCheckingTaskClient(RecordingTaskClient):
    """Records, at publish time, the status another connection sees: proof the row was committed."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self._sessions = sessions
        self.seen_at_publish: list[str | None] = []

    async def enqueue_analysis(self, analysis_id: int) -> None:
        async with self._sessions() as session:
            row = await AnalysisRepository(session).get(analysis_id)
        self.seen_at_publish.append(None if row is None else row.status)
        await super().enqueue_analysis(analysis_id)


@pytest.fixture
def tasks(sessions: async_sessionmaker[AsyncSession]) -> CommitCheckingTaskClient:
    return CommitCheckingTaskClient(sessions)


@pytest.fixture
async def quality(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[QualityService]:
    cache = CacheManager(MemoryBackend(max_entries=100, max_bytes=2**20), prefix="t", default_ttl=60)
    yield QualityService(sessions, cache)
    await cache.close()


@pytest.fixture
def service(
    sessions: async_sessionmaker[AsyncSession], tasks: CommitCheckingTaskClient, quality: QualityService
) -> AnalysisService:
    return AnalysisService(sessions, tasks, quality)


async def measure_diameter(quality: QualityService, charge_id: int) -> None:
    """Two measurements of ``diameter`` on the charge (a baseline names only measured parameters)."""
    await quality.put_spec("PUMP-A", "diameter", SpecBody(unit="mm", lsl=9.0, usl=11.0))
    items = [MeasurementIn(parameter="diameter", value=value) for value in (10.0, 10.1)]
    await quality.record_batch(charge_id, MeasurementBatchIn(items=items))


async def stored(sessions: async_sessionmaker[AsyncSession]) -> list[AnomalyAnalysis]:
    async with sessions() as session:
        return list((await session.scalars(select(AnomalyAnalysis).order_by(AnomalyAnalysis.id))).all())


async def another_charge(sessions: async_sessionmaker[AsyncSession]) -> int:
    return await store_charge(
        sessions,
        charge_row("CH-2026-000002", quantity=Decimal(5), produced_at=datetime(2026, 3, 2, tzinfo=UTC)),
    )


# Submit -----------------------------------------------------------------------------------------


async def test_submit_commits_a_queued_analysis_then_publishes_it_once(
    service: AnalysisService,
    tasks: CommitCheckingTaskClient,
    sessions: async_sessionmaker[AsyncSession],
    quality: QualityService,
    charge_id: int,
) -> None:
    await measure_diameter(quality, charge_id)
    request = AnalysisCreate(
        rules="western_electric", baseline={"diameter": BaselineIn(center=10.0, sigma=0.5)}
    )
    submission = await service.submit(charge_id, request, request_id="req-1")
    analysis = submission.analysis
    assert submission.created
    assert tasks.published == [analysis.id]
    assert tasks.seen_at_publish == ["queued"]  # visible to another connection: committed first
    (row,) = await stored(sessions)
    assert (row.id, row.charge_id, row.status, row.attempts) == (analysis.id, charge_id, "queued", 0)
    assert row.rules == "western_electric"
    assert row.baseline is not None
    assert orjson.loads(row.baseline) == {"diameter": {"center": 10.0, "sigma": 0.5}}
    assert row.request_id == "req-1"
    assert (row.result, row.error, row.started_at, row.finished_at) == (None, None, None, None)
    async with sessions() as session:
        actions = (
            await session.scalars(select(AuditEvent.action).where(AuditEvent.entity == "analysis"))
        ).all()
    assert actions == ["create"]


async def test_a_baseline_for_an_unmeasured_parameter_is_refused_and_nothing_is_stored(
    service: AnalysisService,
    tasks: CommitCheckingTaskClient,
    sessions: async_sessionmaker[AsyncSession],
    quality: QualityService,
    charge_id: int,
) -> None:
    await measure_diameter(quality, charge_id)
    request = AnalysisCreate(rules="nelson", baseline={"bore": BaselineIn(center=5.0, sigma=0.1)})
    with pytest.raises(ValidationFailed) as refused:
        await service.submit(charge_id, request)
    assert [error["field"] for error in refused.value.extra["errors"]] == ["body.baseline.bore"]
    assert await stored(sessions) == []
    assert tasks.published == []


async def test_submit_without_publishing_leaves_it_to_the_caller(
    service: AnalysisService, tasks: CommitCheckingTaskClient, charge_id: int
) -> None:
    submission = await service.submit(charge_id, NELSON, publish=False)
    assert tasks.published == []
    await service.publish(submission.analysis.id)
    assert tasks.published == [submission.analysis.id]
    assert tasks.seen_at_publish == ["queued"]


async def test_submit_for_a_missing_charge_is_not_found_and_stores_and_publishes_nothing(
    service: AnalysisService, tasks: CommitCheckingTaskClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    with pytest.raises(NotFound):
        await service.submit(999_999, NELSON, idempotency_key="key-1")
    assert await stored(sessions) == []
    assert tasks.published == []


# Idempotency ------------------------------------------------------------------------------------


async def test_a_repeated_idempotency_key_returns_the_first_analysis_without_publishing_again(
    service: AnalysisService,
    tasks: CommitCheckingTaskClient,
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
) -> None:
    first = await service.submit(charge_id, NELSON, idempotency_key="key-1")
    again = await service.submit(charge_id, AnalysisCreate(rules="nelson"), idempotency_key="key-1")
    assert (first.created, again.created) == (True, False)
    assert again.analysis.id == first.analysis.id
    assert tasks.published == [first.analysis.id]
    assert len(await stored(sessions)) == 1
    other = await service.submit(charge_id, NELSON, idempotency_key="key-2")
    assert other.created and other.analysis.id != first.analysis.id


async def test_an_idempotency_key_reused_for_a_different_request_is_refused(
    service: AnalysisService, sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    await service.submit(charge_id, NELSON, idempotency_key="key-1")
    with pytest.raises(ValidationFailed) as refused:
        await service.submit(charge_id, AnalysisCreate(rules="western_electric"), idempotency_key="key-1")
    assert refused.value.extra["errors"][0]["type"] == "idempotency_key_reused"
    other_charge = await another_charge(sessions)
    with pytest.raises(ValidationFailed):
        await service.submit(other_charge, NELSON, idempotency_key="key-1")
    assert len(await stored(sessions)) == 1


async def test_concurrent_submissions_with_one_idempotency_key_create_one_analysis(
    service: AnalysisService,
    tasks: CommitCheckingTaskClient,
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
) -> None:
    submissions = await asyncio.gather(
        *(service.submit(charge_id, NELSON, idempotency_key="key-1") for _ in range(4))
    )
    assert sum(submission.created for submission in submissions) == 1
    assert len({submission.analysis.id for submission in submissions}) == 1
    assert len(await stored(sessions)) == 1
    assert tasks.published == [submissions[0].analysis.id]


# Broker down ------------------------------------------------------------------------------------


async def test_with_the_broker_down_the_analysis_stays_queued_and_the_reaper_publishes_it_later(
    service: AnalysisService,
    tasks: CommitCheckingTaskClient,
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
) -> None:
    tasks.down = True
    submission = await service.submit(charge_id, NELSON)  # does not raise: the client gets its 202
    assert submission.created
    assert tasks.published == []
    (row,) = await stored(sessions)
    assert (row.status, row.attempts) == ("queued", 0)

    tasks.down = False
    reaper = AnalysisReaper(
        sessions, tasks, ReaperLimits(stuck_after_seconds=60, requeue_after_seconds=0, max_attempts=3)
    )
    report = await reaper.reap()
    assert report.republished == [submission.analysis.id]
    assert tasks.published == [submission.analysis.id]
    assert (await service.get(submission.analysis.id)).status == "queued"


async def test_a_published_analysis_waiting_in_the_broker_is_not_sent_again_by_the_reaper(
    service: AnalysisService,
    tasks: CommitCheckingTaskClient,
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
) -> None:
    waiting = (await service.submit(charge_id, NELSON)).analysis.id
    tasks.down = True
    unpublished = (await service.submit(charge_id, NELSON)).analysis.id
    tasks.down = False
    assert (await service.get(waiting)).published_at is not None
    assert (await service.get(unpublished)).published_at is None
    reaper = AnalysisReaper(
        sessions, tasks, ReaperLimits(stuck_after_seconds=60, requeue_after_seconds=0, max_attempts=3)
    )
    first, second = await reaper.reap(), await reaper.reap()
    assert first.republished == [unpublished]
    assert second.republished == []  # published now: it waits in line like the other one
    assert tasks.published == [waiting, unpublished]


# Reads ------------------------------------------------------------------------------------------


async def test_get_returns_the_stored_analysis_and_a_missing_one_is_not_found(
    service: AnalysisService, charge_id: int
) -> None:
    submission = await service.submit(charge_id, NELSON)
    found = await service.get(submission.analysis.id)
    assert (found.id, found.charge_id, found.status) == (submission.analysis.id, charge_id, "queued")
    with pytest.raises(NotFound):
        await service.get(999_999)


async def test_pages_list_only_the_charges_analyses_newest_first_through_next_cursor(
    service: AnalysisService, sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    mine = [(await service.submit(charge_id, NELSON)).analysis.id for _ in range(5)]
    other_charge = await another_charge(sessions)
    await service.submit(other_charge, NELSON)
    seen: list[int] = []
    cursor: str | None = None
    while True:
        page: dict[str, Any] = await service.page(charge_id, AnalysisListQuery(limit=2, cursor=cursor))
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(mine, reverse=True)
    with pytest.raises(NotFound):
        await service.page(999_999, AnalysisListQuery())


async def test_submissions_without_an_idempotency_key_are_separate_analyses(
    service: AnalysisService,
    tasks: CommitCheckingTaskClient,
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
) -> None:
    ids = [(await service.submit(charge_id, NELSON)).analysis.id for _ in range(3)]
    assert len(set(ids)) == 3
    assert tasks.published == ids
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(AnomalyAnalysis))
    assert count == 3
