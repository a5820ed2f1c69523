"""The read queries of the exports: one keyset chunk of charges, measurements or alerts at a time.

Each chunk is a query of its own, ``LIMIT``-ed and continued after the key of the previous chunk's
last row, in an order an index serves (``quality.models``, ``charges.models``), so every chunk costs
the same however deep into the export it is, and nothing is held between chunks: no connection, no
transaction, no server-side cursor. The models are read, never written; the filters restate those
of the lists (the owners' repositories keep theirs private), on the same indexes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.charges.models import Charge
from erp_api.quality.models import Measurement, QualityAlert

AnyRow = Row[*tuple[Any, ...]]
AnySelect = Select[*tuple[Any, ...]]
ChargeKey = tuple[datetime, int]
MeasurementKey = tuple[str, datetime, int]


@dataclass(frozen=True, slots=True)
class ChargeSelection:
    """Charges an export holds; every condition set holds. Ordered by (produced_at, id)."""

    statuses: tuple[str, ...] = ()
    product_sku: str | None = None
    line: str | None = None
    number_prefix: str | None = None
    produced_from: datetime | None = None
    produced_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class MeasurementSelection:
    """Measurements of a charge or a product (at least one is set). Ordered by (parameter,
    measured_at, id): one index range for each way of selecting them."""

    charge_id: int | None = None
    product_sku: str | None = None
    parameter: str | None = None
    measured_from: datetime | None = None
    measured_to: datetime | None = None
    include_voided: bool = False


@dataclass(frozen=True, slots=True)
class AlertSelection:
    """Alerts an export holds; every condition set holds. Ordered by id (the order they opened in)."""

    statuses: tuple[str, ...] = ()
    charge_id: int | None = None
    product_sku: str | None = None
    parameter: str | None = None
    rule: str | None = None


_CHARGE_COLUMNS = (
    Charge.id,
    Charge.charge_number,
    Charge.product_sku,
    Charge.quantity,
    Charge.unit,
    Charge.line,
    Charge.status,
    Charge.produced_at,
    Charge.created_at,
    Charge.updated_at,
    Charge.version,
)
_MEASUREMENT_COLUMNS = (
    Measurement.id,
    Measurement.charge_id,
    Charge.charge_number,
    Measurement.product_sku,
    Measurement.parameter,
    Measurement.value,
    Measurement.measured_at,
    Measurement.created_at,
    Measurement.voided_at,
    Measurement.void_reason,
    Measurement.voided_by,
)
_ALERT_COLUMNS = (
    QualityAlert.id,
    QualityAlert.charge_id,
    QualityAlert.product_sku,
    QualityAlert.parameter,
    QualityAlert.rule,
    QualityAlert.status,
    QualityAlert.measurement_id,
    QualityAlert.measurement_ids,
    QualityAlert.limits_id,
    QualityAlert.center,
    QualityAlert.sigma,
    QualityAlert.reason,
    QualityAlert.opened_at,
    QualityAlert.updated_at,
    QualityAlert.changed_by,
)


class ExportRepository:
    """Chunks of the exported tables, read in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def charges(self, where: ChargeSelection, after: ChargeKey | None, limit: int) -> Sequence[AnyRow]:
        """Up to ``limit`` charges after ``after`` (the (produced_at, id) of the last one read)."""
        stmt = select(*_CHARGE_COLUMNS)
        if where.statuses:
            stmt = stmt.where(Charge.status.in_(where.statuses))
        if where.product_sku is not None:
            stmt = stmt.where(Charge.product_sku == where.product_sku)
        if where.line is not None:
            stmt = stmt.where(Charge.line == where.line)
        if where.produced_from is not None:
            stmt = stmt.where(Charge.produced_at >= where.produced_from)
        if where.produced_to is not None:
            stmt = stmt.where(Charge.produced_at <= where.produced_to)
        if where.number_prefix:
            # The range is what the unique index of the number serves (numbers compare by code
            # point: models.Charge); LIKE, its wildcards escaped, states the match.
            stmt = stmt.where(
                Charge.charge_number >= where.number_prefix,
                Charge.charge_number < _successor(where.number_prefix),
                Charge.charge_number.startswith(where.number_prefix, autoescape=True),
            )
        return await self._chunk(stmt, (Charge.produced_at, Charge.id), after, limit)

    async def measurements(
        self, where: MeasurementSelection, after: MeasurementKey | None, limit: int
    ) -> Sequence[AnyRow]:
        """Up to ``limit`` measurements after ``after`` (the (parameter, measured_at, id) of the last
        one read), each with its charge's number."""
        stmt = select(*_MEASUREMENT_COLUMNS).join(Charge, Charge.id == Measurement.charge_id)
        if where.charge_id is not None:
            stmt = stmt.where(Measurement.charge_id == where.charge_id)
        if where.product_sku is not None:
            stmt = stmt.where(Measurement.product_sku == where.product_sku)
        if where.parameter is not None:
            stmt = stmt.where(Measurement.parameter == where.parameter)
        if where.measured_from is not None:
            stmt = stmt.where(Measurement.measured_at >= where.measured_from)
        if where.measured_to is not None:
            stmt = stmt.where(Measurement.measured_at < where.measured_to)
        if not where.include_voided:
            stmt = stmt.where(Measurement.voided_at.is_(None))
        order = (Measurement.parameter, Measurement.measured_at, Measurement.id)
        return await self._chunk(stmt, order, after, limit)

    async def alerts(self, where: AlertSelection, after: int | None, limit: int) -> Sequence[AnyRow]:
        """Up to ``limit`` alerts with an id above ``after``."""
        stmt = select(*_ALERT_COLUMNS)
        if where.statuses:
            stmt = stmt.where(QualityAlert.status.in_(where.statuses))
        if where.charge_id is not None:
            stmt = stmt.where(QualityAlert.charge_id == where.charge_id)
        if where.product_sku is not None:
            stmt = stmt.where(QualityAlert.product_sku == where.product_sku)
        if where.parameter is not None:
            stmt = stmt.where(QualityAlert.parameter == where.parameter)
        if where.rule is not None:
            stmt = stmt.where(QualityAlert.rule == where.rule)
        return await self._chunk(stmt, (QualityAlert.id,), None if after is None else (after,), limit)

    async def _chunk(
        self,
        stmt: AnySelect,
        order: tuple[Any, ...],
        after: tuple[Any, ...] | None,
        limit: int,
    ) -> Sequence[AnyRow]:
        if after is not None:
            stmt = stmt.where(_after(order, after))
        stmt = stmt.order_by(*order).limit(limit)
        result = await self.session.execute(stmt)
        return result.all()


def _after(order: tuple[Any, ...], key: tuple[Any, ...]) -> ColumnElement[bool]:
    """``order`` > ``key`` as a row value, each value bound with its column's type (so that a UTC
    time is stored-format on SQLite too)."""
    if len(order) == 1:
        return order[0] > literal(key[0], order[0].type)  # type: ignore[no-any-return]
    values = [literal(value, column.type) for column, value in zip(order, key, strict=True)]
    return tuple_(*order) > tuple_(*values)


def _successor(prefix: str) -> str:
    """The least string after every string that starts with ``prefix`` (in code point order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
