"""The capability summary as one SQL query: aggregates per product and parameter, moving range included.

The moving range needs each series in time order, so an inner query takes, per (product, parameter)
series ordered by (measured_at, id), the difference to the previous value (LAG); the
(product_sku, parameter, measured_at, id) index already delivers that order. The outer query
aggregates: count, mean, min, max, MR-bar as the mean absolute difference, the out-of-spec count
against the current spec, and the sample standard deviation. PostgreSQL has a numerically stable
``stddev_samp``; SQLite has none, so there the deviations are summed from a value of the series (its
minimum, from a cheap grouped pass joined in: the "shifted data" algorithm), which keeps values with a
large offset and a small spread precise. A second window (FIRST_VALUE) would do the same at nearly
twice the cost on SQLite and spills to disk on PostgreSQL. Window functions run on SQLite >= 3.25.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.quality.models import Measurement, QualitySpec


@dataclass(frozen=True, slots=True)
class SeriesAggregate:
    """What SQL computed for one product and parameter."""

    product_sku: str
    parameter: str
    n: int
    mean: float
    min: float
    max: float
    std: float | None
    mr_bar: float | None
    out_of_spec: int
    lsl: float | None
    usl: float | None


async def summarize(
    session: AsyncSession,
    *,
    product_sku: str | None,
    parameter: str | None,
    measured_from: datetime | None,
    measured_to: datetime | None,
) -> list[SeriesAggregate]:
    """One row per (product, parameter) with measurements in [measured_from, measured_to)."""
    m = Measurement.__table__.c
    series = (m.product_sku, m.parameter)
    order = (m.measured_at, m.id)
    stable_std = session.get_bind().dialect.name == "postgresql"
    columns = [
        m.product_sku,
        m.parameter,
        m.value,
        (m.value - func.lag(m.value).over(partition_by=series, order_by=order)).label("step"),
    ]
    filters = []
    if product_sku is not None:
        filters.append(m.product_sku == product_sku)
    if parameter is not None:
        filters.append(m.parameter == parameter)
    if measured_from is not None:
        filters.append(m.measured_at >= measured_from)
    if measured_to is not None:
        filters.append(m.measured_at < measured_to)
    ordered = select(*columns).where(*filters).subquery("ordered")
    o = ordered.c
    spec = QualitySpec.__table__.c
    outside = or_(
        and_(spec.lsl.is_not(None), o.value < spec.lsl), and_(spec.usl.is_not(None), o.value > spec.usl)
    )
    source = ordered.outerjoin(
        QualitySpec.__table__, and_(spec.product_sku == o.product_sku, spec.parameter == o.parameter)
    )
    if stable_std:
        spread = [func.stddev_samp(o.value).label("std")]
    else:
        shifts = (
            select(m.product_sku, m.parameter, func.min(m.value).label("shift"))
            .where(*filters)
            .group_by(m.product_sku, m.parameter)
            .subquery("shifts")
        )
        source = source.join(
            shifts, and_(shifts.c.product_sku == o.product_sku, shifts.c.parameter == o.parameter)
        )
        deviation = o.value - shifts.c.shift
        spread = [func.sum(deviation).label("dev_sum"), func.sum(deviation * deviation).label("dev_squares")]
    stmt = (
        select(
            o.product_sku,
            o.parameter,
            func.count().label("n"),
            func.avg(o.value).label("mean"),
            func.min(o.value).label("min"),
            func.max(o.value).label("max"),
            *spread,
            # AVG skips the NULL step of each series' first point: the mean of n - 1 moving ranges.
            func.avg(func.abs(o.step)).label("mr_bar"),
            func.sum(case((outside, 1), else_=0)).label("out_of_spec"),
            spec.lsl,
            spec.usl,
        )
        .select_from(source)
        .group_by(o.product_sku, o.parameter, spec.lsl, spec.usl)
        .order_by(o.product_sku, o.parameter)
    )
    rows = (await session.execute(stmt)).all()
    return [
        SeriesAggregate(
            product_sku=row.product_sku,
            parameter=row.parameter,
            n=int(row.n),
            mean=float(row.mean),
            min=float(row.min),
            max=float(row.max),
            std=_sample_std(row, stable_std),
            mr_bar=None if row.mr_bar is None else float(row.mr_bar),
            out_of_spec=int(row.out_of_spec),
            lsl=row.lsl,
            usl=row.usl,
        )
        for row in rows
    ]


def _sample_std(row: Row[Any], stable_std: bool) -> float | None:
    n = int(row.n)
    if n < 2:
        return None
    if row.mr_bar == 0:
        # Constant data: exactly 0, as the SPC engine has it (a float sum could miss it by rounding).
        return 0.0
    if stable_std:
        return float(row.std)
    dev_sum, dev_squares = float(row.dev_sum), float(row.dev_squares)
    variance = (dev_squares - dev_sum * dev_sum / n) / (n - 1)
    return math.sqrt(max(variance, 0.0))
