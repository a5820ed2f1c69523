"""The outbox of the on-ingest rule check: what the writers enqueue and the checker claims.

A transaction that stores measurements also stores one ``RuleCheck`` row per (product, parameter)
series it touched, with the smallest new id of that series, the number of new points and the
transaction's ``created_at`` (the value every new row carries). The checker claims rows by deleting
them at the start of its own transaction (``claim``); the rows come back if that transaction rolls
back or its process dies, so every commit of measurements is checked once it has committed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.quality.models import RuleCheck


@dataclass(frozen=True, slots=True)
class SeriesCommit:
    """New measurements of one (product, parameter) series in one transaction."""

    product_sku: str
    parameter: str
    first_measurement_id: int
    measurements: int
    created_at: datetime

    @property
    def series(self) -> tuple[str, str]:
        return (self.product_sku, self.parameter)


@dataclass(frozen=True, slots=True)
class ClaimedCheck:
    """A claimed outbox row: its id, and the commit it stands for."""

    id: int
    commit: SeriesCommit


def series_commits(rows: Iterable[tuple[str, str, int]], created_at: datetime) -> list[SeriesCommit]:
    """One ``SeriesCommit`` per series among ``rows`` of (product_sku, parameter, measurement id)."""
    first: dict[tuple[str, str], int] = {}
    count: dict[tuple[str, str], int] = {}
    for product_sku, parameter, measurement_id in rows:
        key = (product_sku, parameter)
        first[key] = min(first.get(key, measurement_id), measurement_id)
        count[key] = count.get(key, 0) + 1
    return [
        SeriesCommit(product_sku, parameter, first[(product_sku, parameter)], n, created_at)
        for (product_sku, parameter), n in sorted(count.items())
    ]


class RuleCheckRepository:
    """Queries on ``rule_checks`` in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(self, commits: Iterable[SeriesCommit]) -> None:
        """Add one outbox row per commit (call in the transaction that stores the measurements)."""
        values = [
            {
                "product_sku": commit.product_sku,
                "parameter": commit.parameter,
                "first_measurement_id": commit.first_measurement_id,
                "measurements": commit.measurements,
                "created_at": commit.created_at,
            }
            for commit in commits
        ]
        if values:
            await self.session.execute(insert(RuleCheck), values)

    async def claim(
        self,
        limit: int,
        *,
        created_before: datetime | None = None,
        only: Collection[int] | None = None,
        skip: Collection[int] = (),
    ) -> list[ClaimedCheck]:
        """Delete and return up to ``limit`` rows, oldest first; the caller's rollback puts them back.

        PostgreSQL skips rows another transaction holds (``SKIP LOCKED``), so concurrent checkers
        share the work. On SQLite the delete takes the database's write lock first, so the whole
        check that follows runs against a database no one else writes to meanwhile.
        ``created_before`` takes only older rows, ``only`` only these ids, ``skip`` none of these.
        """
        chosen = select(RuleCheck.id).order_by(RuleCheck.id).limit(limit)
        if created_before is not None:
            chosen = chosen.where(RuleCheck.created_at < created_before)
        if only is not None:
            chosen = chosen.where(RuleCheck.id.in_(sorted(only)))
        if skip:
            chosen = chosen.where(RuleCheck.id.not_in(sorted(skip)))
        if self.session.get_bind().dialect.name == "postgresql":
            chosen = chosen.with_for_update(skip_locked=True)
        stmt = (
            delete(RuleCheck)
            .where(RuleCheck.id.in_(chosen.scalar_subquery()))
            .returning(
                RuleCheck.id,
                RuleCheck.product_sku,
                RuleCheck.parameter,
                RuleCheck.first_measurement_id,
                RuleCheck.measurements,
                RuleCheck.created_at,
            )
        )
        rows = (await self.session.execute(stmt, execution_options={"synchronize_session": False})).all()
        claimed = [
            ClaimedCheck(
                row.id,
                SeriesCommit(
                    row.product_sku, row.parameter, row.first_measurement_id, row.measurements, row.created_at
                ),
            )
            for row in rows
        ]
        claimed.sort(key=lambda check: check.id)
        return claimed

    async def backlog(self) -> int:
        """Rows waiting to be checked."""
        return int(await self.session.scalar(select(func.count()).select_from(RuleCheck)) or 0)
