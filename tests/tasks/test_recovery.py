"""The worker's recovery loop: on its own thread, it requeues an analysis whose heartbeat stopped."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery import Celery
from sqlalchemy import update

from erp_api.analyses.models import AnomalyAnalysis
from erp_api.analyses.repository import AnalysisRepository
from erp_api.db import utcnow
from erp_api.jobs.client import broker_queue_lengths
from erp_api.settings import Settings, SettingsError, load_settings
from tasks.recovery import RecoveryLoop
from tasks.runtime import runtime_for


def _silent_claim(app: Celery, analysis_id: int, seconds: float) -> None:
    """Claimed by a worker that stopped beating ``seconds`` ago."""
    runtime = runtime_for(app)

    async def claim() -> None:
        async with runtime.sessions.begin() as session:
            await AnalysisRepository(session).claim(analysis_id, status="queued", attempts=0, token="lost")
            await session.execute(
                update(AnomalyAnalysis)
                .where(AnomalyAnalysis.id == analysis_id)
                .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
            )

    runtime.run(claim())


def _row(app: Celery, analysis_id: int) -> AnomalyAnalysis:
    runtime = runtime_for(app)

    async def read() -> AnomalyAnalysis | None:
        async with runtime.sessions() as session:
            return await AnalysisRepository(session).get(analysis_id)

    found = runtime.run(read())
    assert found is not None
    return found


def test_the_loop_requeues_and_publishes_an_analysis_whose_heartbeat_stopped(
    settings: Settings, celery_app: Celery, analysis_id: int
) -> None:
    _silent_claim(celery_app, analysis_id, seconds=settings.analysis_heartbeat_timeout_seconds + 1)
    quick = settings.model_copy(update={"analysis_recovery_interval_seconds": 0.1})
    loop = RecoveryLoop(quick)
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while _row(celery_app, analysis_id).published_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # several more passes: none may publish it again
    finally:
        loop.stop()
    row = _row(celery_app, analysis_id)
    assert (row.status, row.attempts, row.claimed_by) == ("queued", 1, None)
    assert row.published_at is not None
    assert broker_queue_lengths(celery_app, 2.0)["high_priority"] == 1


def test_a_beating_analysis_is_left_running(settings: Settings, celery_app: Celery, analysis_id: int) -> None:
    _silent_claim(celery_app, analysis_id, seconds=1)
    loop = RecoveryLoop(settings.model_copy(update={"analysis_recovery_interval_seconds": 0.1}))
    loop.start()
    assert loop.running
    time.sleep(0.5)
    loop.stop()
    assert not loop.running
    assert _row(celery_app, analysis_id).status == "running"
    assert broker_queue_lengths(celery_app, 2.0)["high_priority"] == 0


def test_an_interval_of_zero_turns_the_loop_off(settings: Settings) -> None:
    loop = RecoveryLoop(settings.model_copy(update={"analysis_recovery_interval_seconds": 0.0}))
    loop.start()
    assert not loop.running
    loop.stop()


def test_a_heartbeat_timeout_shorter_than_three_heartbeats_is_refused() -> None:
    with pytest.raises(SettingsError, match="ANALYSIS_HEARTBEAT_TIMEOUT_SECONDS"):
        load_settings(analysis_heartbeat_interval_seconds=10, analysis_heartbeat_timeout_seconds=20)
