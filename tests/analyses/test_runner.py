"""Running an analysis in a worker: one claim at a time, exactly one stored outcome, readable failures."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.analyses.models import AnomalyAnalysis
from erp_api.analyses.repository import AnalysisRepository
from erp_api.analyses.runner import AnalysisRunner, BaselineMap, Outcome, RunnerLimits
from erp_api.db import utcnow
from erp_api.errors import NotFound
from tests.database import NewAnalysis

LIMITS = RunnerLimits(time_limit_seconds=5.0, stale_after_seconds=60.0, max_attempts=3)


def result_of(charge_id: int, anomalies: int = 2) -> dict[str, Any]:
    return {"charge_id": charge_id, "parameters": [{"parameter": "diameter"}], "anomaly_count": anomalies}


async def analyze(charge_id: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
    return result_of(charge_id)


async def row(sessions: async_sessionmaker[AsyncSession], analysis_id: int) -> AnomalyAnalysis:
    async with sessions() as session:
        found = await AnalysisRepository(session).get(analysis_id)
    assert found is not None
    return found


async def test_a_run_stores_the_result_and_marks_it_succeeded(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis, charge_id: int
) -> None:
    seen: list[tuple[int, str, Any]] = []

    async def recording(charge: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
        seen.append((charge, rules, baseline))
        return result_of(charge)

    analysis_id = await new_analysis(
        rules="western_electric", baseline='{"diameter":{"center":10.0,"sigma":0.5}}'
    )
    report = await AnalysisRunner(sessions, recording, LIMITS).run(analysis_id, "delivery-1")
    stored = await row(sessions, analysis_id)
    assert report.outcome == Outcome.SUCCEEDED
    assert seen == [(charge_id, "western_electric", {"diameter": {"center": 10.0, "sigma": 0.5}})]
    assert stored.status == "succeeded"
    assert stored.attempts == 1
    assert stored.started_at is not None and stored.finished_at is not None
    assert stored.started_at <= stored.finished_at
    assert stored.result is not None and '"anomaly_count":2' in stored.result
    assert stored.error is None


async def test_a_redelivered_task_for_a_succeeded_analysis_does_nothing(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    calls = 0

    async def counting(charge: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        return result_of(charge, anomalies=calls)

    runner = AnalysisRunner(sessions, counting, LIMITS)
    analysis_id = await new_analysis()
    await runner.run(analysis_id, "delivery-1")
    first = await row(sessions, analysis_id)
    again = await runner.run(analysis_id, "delivery-1")
    assert again.outcome == Outcome.SKIPPED
    assert calls == 1
    after = await row(sessions, analysis_id)
    assert (after.result, after.attempts, after.finished_at) == (
        first.result,
        first.attempts,
        first.finished_at,
    )


async def test_a_duplicate_message_leaves_a_fresh_running_claim_to_its_holder(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    analysis_id = await new_analysis()
    async with sessions.begin() as session:
        await AnalysisRepository(session).claim(analysis_id, status="queued", attempts=0, token="delivery-1")
    report = await AnalysisRunner(sessions, analyze, LIMITS).run(analysis_id, "delivery-2")
    stored = await row(sessions, analysis_id)
    assert report.outcome == Outcome.SKIPPED
    assert (stored.status, stored.attempts, stored.claimed_by) == ("running", 1, "delivery-1")


async def test_a_redelivery_of_the_claiming_task_takes_the_analysis_over(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    # The worker died after claiming; the broker redelivers the same task (same id) elsewhere.
    analysis_id = await new_analysis()
    async with sessions.begin() as session:
        await AnalysisRepository(session).claim(analysis_id, status="queued", attempts=0, token="delivery-1")
    report = await AnalysisRunner(sessions, analyze, LIMITS).run(analysis_id, "delivery-1")
    stored = await row(sessions, analysis_id)
    assert report.outcome == Outcome.SUCCEEDED
    assert (stored.status, stored.attempts) == ("succeeded", 2)


async def test_a_stale_running_claim_of_another_delivery_is_taken_over(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    analysis_id = await new_analysis()
    async with sessions.begin() as session:
        await AnalysisRepository(session).claim(analysis_id, status="queued", attempts=0, token="delivery-1")
        await session.execute(
            update(AnomalyAnalysis)
            .where(AnomalyAnalysis.id == analysis_id)
            .values(updated_at=utcnow() - timedelta(seconds=LIMITS.stale_after_seconds + 5))
        )
    report = await AnalysisRunner(sessions, analyze, LIMITS).run(analysis_id, "delivery-2")
    assert report.outcome == Outcome.SUCCEEDED
    assert (await row(sessions, analysis_id)).attempts == 2


async def test_only_the_latest_claim_can_store_a_result(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    # Delivery 1 is slow; meanwhile its redelivery claims and finishes. Delivery 1's late result is dropped.
    analysis_id = await new_analysis()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(charge: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
        started.set()
        await release.wait()
        return result_of(charge, anomalies=111)

    slow_run = asyncio.create_task(AnalysisRunner(sessions, slow, LIMITS).run(analysis_id, "delivery-1"))
    await started.wait()
    fast = await AnalysisRunner(sessions, analyze, LIMITS).run(analysis_id, "delivery-1")
    release.set()
    late = await slow_run
    stored = await row(sessions, analysis_id)
    assert fast.outcome == Outcome.SUCCEEDED
    assert late.outcome == Outcome.SUPERSEDED
    assert stored.result is not None and '"anomaly_count":2' in stored.result


async def test_concurrent_deliveries_of_a_queued_analysis_run_it_once(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    analysis_id = await new_analysis()
    runner = AnalysisRunner(sessions, analyze, LIMITS)
    reports = await asyncio.gather(*(runner.run(analysis_id, f"delivery-{i}") for i in range(6)))
    outcomes = sorted(report.outcome.value for report in reports)
    assert outcomes.count("succeeded") == 1
    assert outcomes.count("skipped") == 5
    assert (await row(sessions, analysis_id)).attempts == 1


async def test_a_permanent_failure_marks_the_analysis_failed_with_a_readable_error(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    async def broken(charge: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
        raise NotFound(f"charge {charge} does not exist")

    analysis_id = await new_analysis()
    report = await AnalysisRunner(sessions, broken, LIMITS).run(analysis_id, "delivery-1")
    stored = await row(sessions, analysis_id)
    assert report.outcome == Outcome.FAILED
    assert stored.status == "failed"
    assert stored.error is not None and stored.error.endswith("does not exist")
    assert "Traceback" not in stored.error
    assert stored.result is None


async def test_a_transient_failure_propagates_and_leaves_the_claim_for_the_retry(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    async def database_down(charge: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    analysis_id = await new_analysis()
    with pytest.raises(OperationalError):
        await AnalysisRunner(sessions, database_down, LIMITS).run(analysis_id, "delivery-1")
    stored = await row(sessions, analysis_id)
    assert (stored.status, stored.claimed_by) == ("running", "delivery-1")
    retried = await AnalysisRunner(sessions, analyze, LIMITS).run(analysis_id, "delivery-1")
    assert retried.outcome == Outcome.SUCCEEDED


async def test_an_analysis_past_its_time_limit_fails(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    async def endless(charge: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
        await asyncio.sleep(30)
        return result_of(charge)

    limits = RunnerLimits(time_limit_seconds=0.05, stale_after_seconds=60.0, max_attempts=3)
    analysis_id = await new_analysis()
    report = await AnalysisRunner(sessions, endless, limits).run(analysis_id, "delivery-1")
    stored = await row(sessions, analysis_id)
    assert report.outcome == Outcome.FAILED
    assert stored.error == "AnalysisTimedOut: the analysis took longer than its limit of 0.05 s"


async def test_an_analysis_that_used_up_its_attempts_is_failed_instead_of_run_again(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    # E.g. it crashed its worker each time (killed at the hard limit, out of memory).
    analysis_id = await new_analysis(attempts=LIMITS.max_attempts)
    report = await AnalysisRunner(sessions, analyze, LIMITS).run(analysis_id, "delivery-9")
    stored = await row(sessions, analysis_id)
    assert report.outcome == Outcome.SKIPPED
    assert stored.status == "failed"
    assert stored.error == "gave up after 3 attempts that ended without a result"


async def test_give_up_fails_the_analysis_only_for_the_delivery_holding_it(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    analysis_id = await new_analysis()
    async with sessions.begin() as session:
        await AnalysisRepository(session).claim(analysis_id, status="queued", attempts=0, token="delivery-1")
    runner = AnalysisRunner(sessions, analyze, LIMITS)
    assert not await runner.give_up(analysis_id, "delivery-2", "database unavailable")
    assert await runner.give_up(analysis_id, "delivery-1", "database unavailable")
    stored = await row(sessions, analysis_id)
    assert (stored.status, stored.error) == ("failed", "database unavailable")


async def test_a_running_analysis_renews_its_heartbeat_until_it_finishes(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    analysis_id = await new_analysis()
    beats: list[Any] = []
    renewed: set[Any] = set()

    async def watched(charge: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
        claimed_at = (await row(sessions, analysis_id)).started_at
        assert claimed_at is not None
        # Until three renewals after the claim were seen (however slow a loaded machine makes them);
        # the runner's time limit below fails the run if they never come.
        while len(renewed) < 3:
            await asyncio.sleep(0.05)
            beat = (await row(sessions, analysis_id)).heartbeat_at
            beats.append(beat)
            if beat is not None and beat > claimed_at:
                renewed.add(beat)
        return result_of(charge)

    limits = RunnerLimits(
        time_limit_seconds=10.0, stale_after_seconds=60.0, max_attempts=3, heartbeat_interval_seconds=0.05
    )
    report = await AnalysisRunner(sessions, watched, limits).run(analysis_id, "delivery-1")
    assert report.outcome == Outcome.SUCCEEDED, report
    assert len(renewed) == 3  # the claim set it, the run kept it fresh
    assert None not in beats and beats == sorted(beats)


async def test_a_heartbeat_reports_a_claim_taken_over_meanwhile(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    analysis_id = await new_analysis()
    async with sessions.begin() as session:
        repository = AnalysisRepository(session)
        await repository.claim(analysis_id, status="queued", attempts=0, token="delivery-1")
        assert await repository.beat(analysis_id, attempts=1)
        later = utcnow() + timedelta(seconds=1)
        assert await repository.requeue_abandoned(
            analysis_id, attempts=1, unchanged_before=later, silent_before=later
        )
        assert not await repository.beat(analysis_id, attempts=1)
    stored = await row(sessions, analysis_id)
    assert (stored.status, stored.claimed_by, stored.heartbeat_at) == ("queued", None, None)
