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

from sqlalchemy import CursorResult, Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.charges.models import Charge
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
        would exceed ``max_values``."""
        count = (
            select(func.count())
            .where(
                Measurement.charge_id == Charge.id,
                Measurement.parameter == parameter,
                Measurement.voided_at.is_(None),
            )
            .correlate(Charge)
            .scalar_subquery()
        )
        chosen_stmt = (
            select(Charge.id, Charge.produced_at, count)
            .where(Charge.product_sku == product_sku, count >= MIN_SIZE)
            .order_by(Charge.produced_at.desc(), Charge.id.desc())
            .limit(limit)
        )
        chosen: list[tuple[int, datetime]] = []
        total = 0
        for charge_id, produced_at, values in await self._execute(chosen_stmt):
            total += int(values)
            if total > max_values:
                break
            chosen.append((charge_id, produced_at))
        if not chosen:
            return []
        oldest_id, oldest_at = chosen[-1][0], chosen[-1][1]
        stmt = (
            select(Measurement.charge_id, Charge.charge_number, Measurement.value)
            .join(Charge, Charge.id == Measurement.charge_id)
            .where(
                Charge.product_sku == product_sku,
                tuple_(Charge.produced_at, Charge.id) >= tuple_(oldest_at, oldest_id),
                Measurement.parameter == parameter,
                Measurement.voided_at.is_(None),
            )
            .order_by(Charge.produced_at, Charge.id, Measurement.measured_at, Measurement.id)
        )
        wanted = {charge_id for charge_id, _ in chosen}
        groups: dict[int, ChargeSubgroup] = {}
        for charge_id, charge_number, value in await self._execute(stmt):
            # A charge produced since the first query is not among those chosen.
            if charge_id in wanted:
                groups.setdefault(charge_id, ChargeSubgroup(charge_number, [])).values.append(float(value))
        # A value voided since the first query can leave a charge below the minimum.
        return [group for group in groups.values() if len(group.values) >= MIN_SIZE]

    async def latest_samples(
        self, product_sku: str, characteristic: str, form: InspectionForm, limit: int
    ) -> list[Sample]:
        """The last ``limit`` inspections of one form of a product's characteristic, in inspection order."""
        size, counted = (
            (Inspection.inspected, Inspection.nonconforming)
            if form == "defectives"
            else (Inspection.units, Inspection.nonconformities)
        )
        stmt = (
            select(Charge.charge_number, size, counted)
            .join(Charge, Charge.id == Inspection.charge_id)
            .where(
                Inspection.product_sku == product_sku,
                Inspection.characteristic == characteristic,
                size.is_not(None),
            )
            .order_by(Inspection.inspected_at.desc(), Inspection.id.desc())
            .limit(limit)
        )
        samples = [Sample(number, int(n), int(c)) for number, n, c in await self._execute(stmt)]
        samples.reverse()
        return samples

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
