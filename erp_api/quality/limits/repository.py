"""Database access for control limits: append-only rows, the newest one current."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.quality.models import ControlLimits


class ControlLimitsRepository:
    """Queries on ``control_limits`` (append-only; the highest id per series is current)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(self, product_sku: str, parameter: str) -> ControlLimits | None:
        """The limits in force for a (product, parameter) series, or None if none were ever set."""
        stmt = (
            select(ControlLimits)
            .where(ControlLimits.product_sku == product_sku, ControlLimits.parameter == parameter)
            .order_by(ControlLimits.id.desc())
            .limit(1)
        )
        return (await self.session.scalars(stmt)).first()

    async def current_many(self, series: Collection[tuple[str, str]]) -> dict[tuple[str, str], ControlLimits]:
        """The limits in force per (product, parameter) of ``series`` that has any, in one query."""
        if not series:
            return {}
        latest = (
            select(func.max(ControlLimits.id))
            .where(
                ControlLimits.product_sku.in_(sorted({sku for sku, _ in series})),
                ControlLimits.parameter.in_(sorted({parameter for _, parameter in series})),
            )
            .group_by(ControlLimits.product_sku, ControlLimits.parameter)
        )
        stmt = select(ControlLimits).where(ControlLimits.id.in_(latest.scalar_subquery()))
        wanted = set(series)
        return {
            key: row
            for row in await self.session.scalars(stmt)
            if (key := (row.product_sku, row.parameter)) in wanted
        }

    async def current_of_product(self, product_sku: str) -> dict[str, ControlLimits]:
        """The limits in force per parameter of one product, in one query."""
        latest = (
            select(func.max(ControlLimits.id))
            .where(ControlLimits.product_sku == product_sku)
            .group_by(ControlLimits.parameter)
        )
        stmt = select(ControlLimits).where(ControlLimits.id.in_(latest.scalar_subquery()))
        return {row.parameter: row for row in await self.session.scalars(stmt)}

    async def history(self, product_sku: str, parameter: str, limit: int) -> list[ControlLimits]:
        """Up to ``limit`` rows of a series, newest first (the first one is current)."""
        stmt = (
            select(ControlLimits)
            .where(ControlLimits.product_sku == product_sku, ControlLimits.parameter == parameter)
            .order_by(ControlLimits.id.desc())
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def append(
        self,
        product_sku: str,
        parameter: str,
        *,
        center: float,
        sigma: float,
        source: str,
        basis: dict[str, Any] | None,
        created_by: str,
        created_at: datetime,
    ) -> ControlLimits:
        """Add a row, which becomes the current limits of its series."""
        row = ControlLimits(
            product_sku=product_sku,
            parameter=parameter,
            center=center,
            sigma=sigma,
            source=source,
            basis=basis,
            created_by=created_by,
            created_at=created_at,
        )
        self.session.add(row)
        await self.session.flush()
        return row
