"""The reads behind the control charts of a product: its latest values, its charges as subgroups, and
its attribute inspections. Voided measurements count nowhere.

- A product's series is in measured order (measured_at, id), as the stored limits and rollups read it.
- Subgroups per charge follow production order (the charges' produced_at, id); within a charge the
  values are in measured order. A charge with fewer than ``MIN_SIZE`` non-voided values of the
  parameter makes no subgroup (no range or standard deviation of one value) and is left out.
- Inspections are in inspection order (inspected_at, id).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import CursorResult, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.charges.repository import IN_CHUNK, ChargeRepository, ProductionKey, chunked
from erp_api.quality.models import Inspection, Measurement
from erp_api.quality.spc.constants import MIN_SIZE

InspectionForm = Literal["defectives", "defects"]


class ChargeSubgroup(NamedTuple):
    """The non-voided values of one charge, in measured order, labelled with the charge number."""

    charge_number: str
    values: list[float]


class Sample(NamedTuple):
    """One inspection as an attribute chart plots it: its charge, its size (items or units), and what
    it found (nonconforming items or nonconformities)."""

    charge_number: str
    size: int
    found: int


class ChartDataRepository:
    """Queries for the charts of a product, in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def latest_values(
        self, product_sku: str, parameter: str, limit: int
    ) -> tuple[list[tuple[float, datetime]], int]:
        """The last ``limit`` non-voided (value, measured_at) of a product's series in measured order,
        and how many non-voided values the series holds (from the same statement)."""
        stmt = (
            select(Measurement.value, Measurement.measured_at, func.count().over())
            .where(
                Measurement.product_sku == product_sku,
                Measurement.parameter == parameter,
                Measurement.voided_at.is_(None),
            )
            .order_by(Measurement.measured_at.desc(), Measurement.id.desc())
            .limit(limit)
        )
        rows = list(await self._execute(stmt))
        rows.reverse()
        total = int(rows[0][2]) if rows else 0
        return [(float(value), measured_at) for value, measured_at, _ in rows], total

    async def charge_subgroups(
        self, product_sku: str, parameter: str, *, limit: int, max_values: int
    ) -> list[ChargeSubgroup]:
        """The latest ``limit`` charges of a product with at least ``MIN_SIZE`` non-voided values of
        ``parameter``, as subgroups in production order; older charges are dropped while the values
        would exceed ``max_values``.

        The product's charges are read newest first a page of ``IN_CHUNK`` at a time (through the
        charges' repository), each page's value counts in one query, until enough are chosen."""
        charges = ChargeRepository(self.session)
        chosen: list[tuple[int, str]] = []  # newest first
        total = 0
        before: ProductionKey | None = None
        while len(chosen) < limit:
            page = await charges.production_page(product_sku, before=before, limit=IN_CHUNK)
            counts = await self._value_counts(parameter, [charge_id for charge_id, _, _ in page])
            for charge_id, _, charge_number in page:
                values = counts.get(charge_id, 0)
                if values < MIN_SIZE:
                    continue
                total += values
                if total > max_values:
                    break
                chosen.append((charge_id, charge_number))
                if len(chosen) == limit:
                    break
            else:
                if len(page) == IN_CHUNK:
                    before = (page[-1][1], page[-1][0])
                    continue
            break
        if not chosen:
            return []
        chosen.reverse()
        groups = {charge_id: ChargeSubgroup(charge_number, []) for charge_id, charge_number in chosen}
        for chunk in chunked(list(groups)):
            stmt = (
                select(Measurement.charge_id, Measurement.value)
                .where(
                    Measurement.charge_id.in_(chunk),
                    Measurement.parameter == parameter,
                    Measurement.voided_at.is_(None),
                )
                .order_by(Measurement.measured_at, Measurement.id)
            )
            for charge_id, value in await self._execute(stmt):
                groups[charge_id].values.append(float(value))
        # A value voided since the counts can leave a charge below the minimum.
        return [group for group in groups.values() if len(group.values) >= MIN_SIZE]

    async def latest_samples(
        self, product_sku: str, characteristic: str, form: InspectionForm, limit: int
    ) -> list[Sample]:
        """The last ``limit`` inspections of one form of a product's characteristic, in inspection
        order, with their charges' numbers (from the charges' repository)."""
        size, counted = (
            (Inspection.inspected, Inspection.nonconforming)
            if form == "defectives"
            else (Inspection.units, Inspection.nonconformities)
        )
        stmt = (
            select(Inspection.charge_id, size, counted)
            .where(
                Inspection.product_sku == product_sku,
                Inspection.characteristic == characteristic,
                size.is_not(None),
            )
            .order_by(Inspection.inspected_at.desc(), Inspection.id.desc())
            .limit(limit)
        )
        while True:
            rows = list(await self._execute(stmt))
            numbers = await ChargeRepository(self.session).numbers([charge_id for charge_id, _, _ in rows])
            if all(charge_id in numbers for charge_id, _, _ in rows):
                break
            # A charge deleted (with its inspections) between the two reads: read them again.
        samples = [Sample(numbers[charge_id], int(n), int(c)) for charge_id, n, c in rows]
        samples.reverse()
        return samples

    async def _value_counts(self, parameter: str, charge_ids: Sequence[int]) -> dict[int, int]:
        """How many non-voided values of ``parameter`` each of the charges has (none: absent)."""
        counts: dict[int, int] = {}
        for chunk in chunked(charge_ids):
            stmt = (
                select(Measurement.charge_id, func.count())
                .where(
                    Measurement.charge_id.in_(chunk),
                    Measurement.parameter == parameter,
                    Measurement.voided_at.is_(None),
                )
                .group_by(Measurement.charge_id)
            )
            counts.update({int(charge_id): int(n) for charge_id, n in await self._execute(stmt)})
        return counts

    async def _execute(self, stmt: Select[*tuple[Any, ...]]) -> CursorResult[*tuple[Any, ...]]:
        # Core execution: thousands of plain rows without the ORM's per-row work.
        connection = await self.session.connection()
        result: CursorResult[*tuple[Any, ...]] = await connection.execute(stmt)
        return result


def fixed_subgroups(
    values: Sequence[tuple[float, datetime]], size: int
) -> tuple[list[list[float]], list[datetime]]:
    """Consecutive subgroups of ``size`` values ending with the newest; an incomplete oldest remainder is
    left out. Returns the subgroups and the time of each one's first value."""
    start = len(values) % size
    groups = [[value for value, _ in values[i : i + size]] for i in range(start, len(values), size)]
    return groups, [values[i][1] for i in range(start, len(values), size)]
