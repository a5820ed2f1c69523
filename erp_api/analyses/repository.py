"""Database access for anomaly analyses: every query the service, the runner and the reaper need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, false, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.analyses.models import AnomalyAnalysis
from erp_api.analyses.states import TERMINAL, AnalysisStatus
from erp_api.db import utcnow


class AnalysisRepository:
    """Queries on ``anomaly_analyses`` within the caller's session and transaction.

    State changes are conditional updates (``WHERE status = ... AND attempts = ...``) that report
    whether they won, so two workers can never both move the same analysis.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, analysis_id: int) -> AnomalyAnalysis | None:
        return await self.session.get(AnomalyAnalysis, analysis_id, populate_existing=True)

    async def by_idempotency_key(self, key: str) -> AnomalyAnalysis | None:
        stmt = select(AnomalyAnalysis).where(AnomalyAnalysis.idempotency_key == key)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def insert(self, values: Mapping[str, Any]) -> AnomalyAnalysis:
        now = utcnow()
        row = {
            "status": AnalysisStatus.QUEUED.value,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            **values,
        }
        stmt = insert(AnomalyAnalysis).values(row).returning(AnomalyAnalysis)
        result = await self.session.scalars(stmt, execution_options={"populate_existing": True})
        return result.one()

    async def page(
        self, charge_id: int, *, after: tuple[datetime, int] | None, limit: int
    ) -> list[AnomalyAnalysis]:
        """A charge's analyses newest first by (created_at, id); ``after``: last row of the previous page."""
        stmt = select(AnomalyAnalysis).where(AnomalyAnalysis.charge_id == charge_id)
        if after is not None:
            at, row_id = after
            stmt = stmt.where(
                (AnomalyAnalysis.created_at < at)
                | ((AnomalyAnalysis.created_at == at) & (AnomalyAnalysis.id < row_id))
            )
        stmt = stmt.order_by(AnomalyAnalysis.created_at.desc(), AnomalyAnalysis.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def claim(
        self, analysis_id: int, *, status: str, attempts: int, token: str
    ) -> AnomalyAnalysis | None:
        """Move the analysis to running if it is still at (status, attempts); None if someone else did."""
        now = utcnow()
        stmt = (
            update(AnomalyAnalysis)
            .where(
                *_at(analysis_id, status, attempts),
            )
            .values(
                status=AnalysisStatus.RUNNING.value,
                attempts=attempts + 1,
                claimed_by=token,
                started_at=now,
                updated_at=now,
                heartbeat_at=now,
                error=None,
            )
            .returning(AnomalyAnalysis)
        )
        result = await self.session.execute(stmt, execution_options={"populate_existing": True})
        return result.scalar_one_or_none()

    async def beat(self, analysis_id: int, *, attempts: int) -> bool:
        """Renew the heartbeat of the claim ``attempts``; False if the analysis was taken over meanwhile.

        Leaves ``updated_at`` alone: a heartbeat is a sign of life, not a change of the analysis.
        """
        stmt = (
            update(AnomalyAnalysis)
            .where(
                *_at(analysis_id, AnalysisStatus.RUNNING.value, attempts),
            )
            .values(heartbeat_at=utcnow())
        )
        return _changed(await self.session.execute(stmt))

    async def finish(
        self,
        analysis_id: int,
        *,
        attempts: int,
        status: AnalysisStatus,
        result: str | None,
        error: str | None,
    ) -> bool:
        """Store the outcome of the claim ``attempts``; False if the analysis was taken over meanwhile."""
        now = utcnow()
        stmt = (
            update(AnomalyAnalysis)
            .where(
                *_at(analysis_id, AnalysisStatus.RUNNING.value, attempts),
            )
            .values(status=status.value, result=result, error=error, finished_at=now, updated_at=now)
        )
        return _changed(await self.session.execute(stmt))

    async def abandoned(
        self, *, unchanged_before: datetime | None, silent_before: datetime | None, limit: int
    ) -> list[tuple[int, int]]:
        """(id, attempts) of running analyses whose worker is gone, oldest first: unchanged since
        ``unchanged_before``, or with no heartbeat since ``silent_before``."""
        stmt = (
            select(AnomalyAnalysis.id, AnomalyAnalysis.attempts)
            .where(
                AnomalyAnalysis.status == AnalysisStatus.RUNNING.value,
                _gone(unchanged_before, silent_before),
            )
            .order_by(AnomalyAnalysis.updated_at)
            .limit(limit)
        )
        return [(row.id, row.attempts) for row in await self.session.execute(stmt)]

    async def requeue_abandoned(
        self,
        analysis_id: int,
        *,
        attempts: int,
        unchanged_before: datetime | None,
        silent_before: datetime | None,
    ) -> bool:
        """Back to queued (to be published) if still running the claim ``attempts`` and still abandoned."""
        stmt = (
            update(AnomalyAnalysis)
            .where(
                *_at(analysis_id, AnalysisStatus.RUNNING.value, attempts),
                _gone(unchanged_before, silent_before),
            )
            .values(
                status=AnalysisStatus.QUEUED.value,
                claimed_by=None,
                heartbeat_at=None,
                published_at=None,
                updated_at=utcnow(),
            )
        )
        return _changed(await self.session.execute(stmt))

    async def fail_abandoned(
        self,
        analysis_id: int,
        *,
        attempts: int,
        unchanged_before: datetime | None,
        silent_before: datetime | None,
        error: str,
    ) -> bool:
        now = utcnow()
        stmt = (
            update(AnomalyAnalysis)
            .where(
                *_at(analysis_id, AnalysisStatus.RUNNING.value, attempts),
                _gone(unchanged_before, silent_before),
            )
            .values(status=AnalysisStatus.FAILED.value, error=error, finished_at=now, updated_at=now)
        )
        return _changed(await self.session.execute(stmt))

    async def unpublished(self, before: datetime, limit: int) -> list[tuple[int, int]]:
        """(id, attempts) of queued analyses never published and unchanged since ``before``, oldest
        first. A published one waits in the broker and is left there."""
        stmt = (
            select(AnomalyAnalysis.id, AnomalyAnalysis.attempts)
            .where(
                AnomalyAnalysis.status == AnalysisStatus.QUEUED.value,
                AnomalyAnalysis.published_at.is_(None),
                AnomalyAnalysis.updated_at < before,
            )
            .order_by(AnomalyAnalysis.updated_at)
            .limit(limit)
        )
        return [(row.id, row.attempts) for row in await self.session.execute(stmt)]

    async def published_behind(
        self, published_before: datetime, *, newest: int, limit: int
    ) -> list[tuple[int, int, datetime]]:
        """(id, attempts, published_at) of queued analyses published before ``published_before``,
        newest first, leaving out the ``newest`` most recently published: up to ``limit`` of them."""
        stmt = (
            select(AnomalyAnalysis.id, AnomalyAnalysis.attempts, AnomalyAnalysis.published_at)
            .where(
                AnomalyAnalysis.status == AnalysisStatus.QUEUED.value,
                AnomalyAnalysis.published_at < published_before,
            )
            .order_by(AnomalyAnalysis.published_at.desc(), AnomalyAnalysis.id.desc())
            .offset(newest)
            .limit(limit)
        )
        return [(row.id, row.attempts, row.published_at) for row in await self.session.execute(stmt)]

    async def withdraw_publication(
        self, analysis_id: int, *, attempts: int, published_before: datetime
    ) -> bool:
        """Forget the message of the queued analysis at ``attempts`` published before ``published_before``
        (it is lost); touches updated_at. Of several reapers, exactly one gets True."""
        stmt = (
            update(AnomalyAnalysis)
            .where(
                *_at(analysis_id, AnalysisStatus.QUEUED.value, attempts),
                AnomalyAnalysis.published_at < published_before,
            )
            .values(published_at=None, updated_at=utcnow())
        )
        return _changed(await self.session.execute(stmt))

    async def mark_published(self, analysis_id: int, *, attempts: int) -> bool:
        """Record that the message for the queued analysis at ``attempts`` reached the broker."""
        stmt = (
            update(AnomalyAnalysis)
            .where(
                *_at(analysis_id, AnalysisStatus.QUEUED.value, attempts),
                AnomalyAnalysis.published_at.is_(None),
            )
            .values(published_at=utcnow())
        )
        return _changed(await self.session.execute(stmt))

    async def requeue_stale(
        self, analysis_id: int, *, status: AnalysisStatus, attempts: int, before: datetime
    ) -> bool:
        """Back to queued if still (status, attempts) and unchanged since ``before``; touches updated_at.

        Touching updated_at is what keeps a second reaper (or the next run) from requeueing it again.
        """
        stmt = (
            update(AnomalyAnalysis)
            .where(*_still(analysis_id, status, attempts, before))
            .values(status=AnalysisStatus.QUEUED.value, claimed_by=None, updated_at=utcnow())
        )
        return _changed(await self.session.execute(stmt))

    async def fail_stale(
        self, analysis_id: int, *, status: AnalysisStatus, attempts: int, before: datetime, error: str
    ) -> bool:
        now = utcnow()
        stmt = (
            update(AnomalyAnalysis)
            .where(*_still(analysis_id, status, attempts, before))
            .values(status=AnalysisStatus.FAILED.value, error=error, finished_at=now, updated_at=now)
        )
        return _changed(await self.session.execute(stmt))

    async def fail_claimed(self, analysis_id: int, *, token: str, error: str) -> bool:
        """Fail the analysis if the delivery ``token`` still holds it (whatever its attempt count)."""
        now = utcnow()
        stmt = (
            update(AnomalyAnalysis)
            .where(
                AnomalyAnalysis.id == analysis_id,
                AnomalyAnalysis.status == AnalysisStatus.RUNNING.value,
                AnomalyAnalysis.claimed_by == token,
            )
            .values(status=AnalysisStatus.FAILED.value, error=error, finished_at=now, updated_at=now)
        )
        return _changed(await self.session.execute(stmt))

    async def delete_finished_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` finished analyses that ended before ``cutoff``; returns how many."""
        ids = select(AnomalyAnalysis.id).where(
            AnomalyAnalysis.finished_at < cutoff,
            AnomalyAnalysis.status.in_([status.value for status in TERMINAL]),
        )
        chosen: Sequence[int] = (await self.session.scalars(ids.limit(limit))).all()
        if not chosen:
            return 0
        await self.session.execute(delete(AnomalyAnalysis).where(AnomalyAnalysis.id.in_(chosen)))
        return len(chosen)


def _at(analysis_id: int, status: str, attempts: int) -> list[Any]:
    """The analysis still at (status, attempts): every conditional update's guard against a claim
    taken over meanwhile."""
    return [
        AnomalyAnalysis.id == analysis_id,
        AnomalyAnalysis.status == status,
        AnomalyAnalysis.attempts == attempts,
    ]


def _still(analysis_id: int, status: AnalysisStatus, attempts: int, before: datetime) -> list[Any]:
    return [*_at(analysis_id, status.value, attempts), AnomalyAnalysis.updated_at < before]


def _gone(unchanged_before: datetime | None, silent_before: datetime | None) -> Any:
    """A running analysis whose worker is gone: unchanged too long, or silent too long (a limit of
    None is not applied; a row claimed before heartbeats existed has none: only the first applies)."""
    conditions = []
    if unchanged_before is not None:
        conditions.append(AnomalyAnalysis.updated_at < unchanged_before)
    if silent_before is not None:
        conditions.append(AnomalyAnalysis.heartbeat_at < silent_before)
    return or_(false(), *conditions)


def _changed(result: Any) -> bool:
    return bool(getattr(result, "rowcount", 0))
