"""Database access for charges: every query the service needs, and nothing else."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.charges.models import Charge, ChargeStatusChange
from erp_api.db import utcnow

# Far below both SQLite's and asyncpg's bound-parameter limits, and large enough to keep round trips few.
IN_CHUNK = 1_000


def chunked(values: Sequence[str], size: int = IN_CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class ChargeRepository:
    """Queries on the ``charges`` table within the caller's session and transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, charge_id: int, *, for_update: bool = False) -> Charge | None:
        stmt = select(Charge).where(Charge.id == charge_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def insert_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Charge]:
        """One multi-row INSERT ... RETURNING for all rows, in their order."""
        now = utcnow()
        values = [{**row, "created_at": now, "updated_at": now, "version": 1} for row in rows]
        stmt = insert(Charge).values(values).returning(Charge)
        result = await self.session.scalars(stmt, execution_options={"populate_existing": True})
        charges = list(result)
        order = {row["charge_number"]: index for index, row in enumerate(rows)}
        charges.sort(key=lambda charge: order[charge.charge_number])
        return charges

    async def existing_numbers(self, numbers: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunked(numbers):
            stmt = select(Charge.charge_number).where(Charge.charge_number.in_(chunk))
            found.update((await self.session.scalars(stmt)).all())
        return found

    async def by_numbers(self, numbers: Sequence[str]) -> list[Charge]:
        """Charges with the given numbers, in ceil(n / IN_CHUNK) queries."""
        charges: list[Charge] = []
        for chunk in chunked(numbers):
            stmt = select(Charge).where(Charge.charge_number.in_(chunk))
            charges.extend((await self.session.scalars(stmt)).all())
        return charges

    async def page(
        self,
        *,
        status: str | None,
        product_sku: str | None,
        line: str | None,
        produced_from: datetime | None,
        produced_to: datetime | None,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> list[Charge]:
        """Newest first by (produced_at, id); ``after`` is the last row of the previous page."""
        stmt = select(Charge)
        if status is not None:
            stmt = stmt.where(Charge.status == status)
        if product_sku is not None:
            stmt = stmt.where(Charge.product_sku == product_sku)
        if line is not None:
            stmt = stmt.where(Charge.line == line)
        if produced_from is not None:
            stmt = stmt.where(Charge.produced_at >= produced_from)
        if produced_to is not None:
            stmt = stmt.where(Charge.produced_at <= produced_to)
        if after is not None:
            stmt = stmt.where(tuple_(Charge.produced_at, Charge.id) < tuple_(*after))
        stmt = stmt.order_by(Charge.produced_at.desc(), Charge.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def update_if_version(
        self, charge_id: int, version: int, changes: Mapping[str, Any]
    ) -> Charge | None:
        """Apply ``changes`` only if the row is still at ``version``; None when it moved on."""
        stmt = (
            update(Charge)
            .where(Charge.id == charge_id, Charge.version == version)
            .values(**changes, version=Charge.version + 1, updated_at=utcnow())
            .returning(Charge)
        )
        result = await self.session.execute(stmt, execution_options={"populate_existing": True})
        return result.scalar_one_or_none()

    async def record_status_change(
        self, charge_id: int, from_status: str, to_status: str, reason: str | None
    ) -> None:
        self.session.add(
            ChargeStatusChange(
                charge_id=charge_id, from_status=from_status, to_status=to_status, reason=reason
            )
        )
        await self.session.flush()

    async def delete_if_status(self, charge_id: int, status: str) -> bool:
        stmt = delete(Charge).where(Charge.id == charge_id, Charge.status == status)
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def count(self) -> int:
        return int((await self.session.scalar(select(func.count()).select_from(Charge))) or 0)
