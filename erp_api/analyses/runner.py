"""Running one anomaly analysis inside a worker: claim it, analyse, store exactly one outcome.

A task delivery claims the analysis with a conditional update on (status, attempts); only the
delivery holding the latest claim can store a result, so redeliveries and duplicate messages never
store two. Transient failures (database, network) propagate for the task to retry; anything else
marks the analysis failed with a readable error.

While an analysis runs, the runner renews its heartbeat (``heartbeat_at``) every
``heartbeat_interval_seconds`` on the same event loop. A worker that dies (killed, out of memory,
machine lost) stops beating, and the reaper (run by every worker, see ``reaper.py``) requeues the
analysis once the heartbeat is older than the heartbeat timeout. A run whose heartbeat finds the
analysis taken over keeps going but cannot store its outcome (``SUPERSEDED``): one result still.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from time import perf_counter
from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.analyses.models import AnomalyAnalysis
from erp_api.analyses.repository import AnalysisRepository
from erp_api.analyses.states import AnalysisStatus, is_terminal
from erp_api.db import utcnow
from erp_api.events.log import EventType, record_event
from erp_api.jobs.failures import AnalysisTimedOut, describe_failure, is_transient
from erp_api.observability.metrics import observe_analysis

log = structlog.get_logger("erp_api.analyses.runner")

BaselineMap = Mapping[str, Mapping[str, float]]
Analyzer = Callable[[int, str, BaselineMap | None], Awaitable[Mapping[str, Any]]]
"""``analyze_charge(charge_id, rules, baseline)`` -> ``{"parameters": [...], "anomaly_count": n}``."""


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Nothing to do: finished already, gone, or held by another delivery."""
    SUPERSEDED = "superseded"
    """Ran, but another delivery took the analysis over meanwhile; its outcome counts, not this one."""


@dataclass(frozen=True)
class RunReport:
    analysis_id: int
    outcome: Outcome
    attempts: int = 0
    anomaly_count: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class RunnerLimits:
    time_limit_seconds: float
    stale_after_seconds: float
    max_attempts: int
    delay_seconds: float = 0.0
    """Only for tests and demonstrations: sleep this long inside each run."""
    pause_after_commit_seconds: float = 0.0
    """Only for tests: sleep this long after an outcome is committed, before the task returns and
    its message is acknowledged, so that a test can kill the worker in between."""
    heartbeat_interval_seconds: float | None = None
    """Renew the running analysis's heartbeat this often; None: no heartbeat (the stuck limit only)."""


class AnalysisRunner:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], analyze: Analyzer, limits: RunnerLimits
    ) -> None:
        self._sessions = sessions
        self._analyze = analyze
        self._limits = limits

    async def run(self, analysis_id: int, token: str) -> RunReport:
        """Run the analysis for the task delivery ``token``; transient failures propagate."""
        claim = await self._claim(analysis_id, token)
        if claim is None:
            return RunReport(analysis_id, Outcome.SKIPPED)
        started = perf_counter()
        try:
            async with self._beating(claim):
                result = await self._analyze_within_limit(claim)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning("analysis_failed", analysis_id=analysis_id, exc_info=exc)
            error = describe_failure(exc)
            stored = await self._store(claim, AnalysisStatus.FAILED, None, error)
            observe_analysis("error", perf_counter() - started)
            outcome = Outcome.FAILED if stored else Outcome.SUPERSEDED
            return RunReport(analysis_id, outcome, claim.attempts, error=error)
        anomalies = int(result.get("anomaly_count", 0))
        stored = await self._store(claim, AnalysisStatus.SUCCEEDED, orjson.dumps(result).decode(), None)
        observe_analysis("anomaly" if anomalies else "ok", perf_counter() - started)
        outcome = Outcome.SUCCEEDED if stored else Outcome.SUPERSEDED
        return RunReport(analysis_id, outcome, claim.attempts, anomaly_count=anomalies)

    async def give_up(self, analysis_id: int, token: str, error: str) -> bool:
        """Mark the analysis failed if ``token`` still holds it (after the last retry); False if not."""
        async with self._sessions.begin() as session:
            repository = AnalysisRepository(session)
            failed = await repository.fail_claimed(analysis_id, token=token, error=error)
            row = await repository.get(analysis_id) if failed else None
            if row is not None:
                await _record_finished(
                    session,
                    analysis_id,
                    charge_id=row.charge_id,
                    status=AnalysisStatus.FAILED,
                    result=None,
                    error=error,
                )
            return failed

    async def _claim(self, analysis_id: int, token: str) -> AnomalyAnalysis | None:
        async with self._sessions.begin() as session:
            repository = AnalysisRepository(session)
            row = await repository.get(analysis_id)
            if row is None or is_terminal(row.status):
                return None
            stale = row.updated_at < utcnow() - timedelta(seconds=self._limits.stale_after_seconds)
            if row.status == AnalysisStatus.RUNNING and row.claimed_by != token and not stale:
                # Another delivery runs it right now (a duplicate message): leave it to that one.
                return None
            if row.attempts >= self._limits.max_attempts:
                # Each attempt so far ended without an outcome (worker lost, killed at the hard limit):
                # running it again would most likely end the same way.
                await repository.fail_stale(
                    analysis_id,
                    status=AnalysisStatus(row.status),
                    attempts=row.attempts,
                    before=utcnow() + timedelta(seconds=1),
                    error=f"gave up after {row.attempts} attempts that ended without a result",
                )
                return None
            return await repository.claim(analysis_id, status=row.status, attempts=row.attempts, token=token)

    @contextlib.asynccontextmanager
    async def _beating(self, claim: AnomalyAnalysis) -> AsyncIterator[None]:
        interval = self._limits.heartbeat_interval_seconds
        if interval is None:
            yield
            return
        beats = asyncio.create_task(self._beat(claim, interval), name=f"analysis-{claim.id}-heartbeat")
        try:
            yield
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats

    async def _beat(self, claim: AnomalyAnalysis, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                async with self._sessions.begin() as session:
                    alive = await AnalysisRepository(session).beat(claim.id, attempts=claim.attempts)
            except Exception as exc:  # a missed beat is retried; the timeout allows for several
                log.warning("analysis_heartbeat_failed", analysis_id=claim.id, error=describe_failure(exc))
                continue
            if not alive:
                log.warning("analysis_taken_over", analysis_id=claim.id, attempts=claim.attempts)
                return

    async def _analyze_within_limit(self, claim: AnomalyAnalysis) -> Mapping[str, Any]:
        baseline = orjson.loads(claim.baseline) if claim.baseline is not None else None
        limit = self._limits.time_limit_seconds
        scope = asyncio.timeout(limit)
        try:
            async with scope:
                if self._limits.delay_seconds:
                    await asyncio.sleep(self._limits.delay_seconds)
                return await self._analyze(claim.charge_id, claim.rules, baseline)
        except TimeoutError:
            if scope.expired():
                raise AnalysisTimedOut(f"the analysis took longer than its limit of {limit:g} s") from None
            raise  # a database or network timeout inside: transient

    async def _store(
        self, claim: AnomalyAnalysis, status: AnalysisStatus, result: str | None, error: str | None
    ) -> bool:
        async with self._sessions.begin() as session:
            stored = await AnalysisRepository(session).finish(
                claim.id, attempts=claim.attempts, status=status, result=result, error=error
            )
            if stored:
                await _record_finished(
                    session, claim.id, charge_id=claim.charge_id, status=status, result=result, error=error
                )
        if stored and self._limits.pause_after_commit_seconds:
            await asyncio.sleep(self._limits.pause_after_commit_seconds)
        return stored


async def _record_finished(
    session: AsyncSession,
    analysis_id: int,
    *,
    charge_id: int,
    status: AnalysisStatus,
    result: str | None,
    error: str | None,
) -> None:
    """The ``analysis.finished`` event, in the transaction that stores the outcome."""
    anomalies = int(orjson.loads(result).get("anomaly_count", 0)) if result is not None else None
    await record_event(
        session,
        EventType.ANALYSIS_FINISHED,
        {
            "id": analysis_id,
            "charge_id": charge_id,
            "status": status.value,
            "anomaly_count": anomalies,
            "error": error,
        },
        charge_id=charge_id,
    )
