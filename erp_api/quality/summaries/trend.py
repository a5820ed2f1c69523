"""The trend of one series per hour, day or week, read from the hourly rollups: flat in history.

Each period's figures merge its hours in SQL (``rollup_sql.hour_figures``): n, mean, sample
standard deviation, min, max, out-of-spec count, and Cpk from the period's own short-term sigma
(MR-bar / d2 over the period's points in time order). Periods are whole (UTC hours, UTC days, ISO
weeks from Monday 00:00 UTC): ``from`` is rounded down and ``to`` up to period boundaries, and at
most ``MAX_TREND_PERIODS`` fit in one request, so a request reads a bounded number of hourly rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.db import read_snapshot
from erp_api.quality.spc.capability import capability_indices
from erp_api.quality.summaries.rollup_sql import HOURS, SPECS, figures_of, hour_figures
from erp_api.quality.summaries.schemas import TrendQuery
from erp_api.quality.summaries.series_stats import (
    PERIOD_HOURS,
    PERIOD_ORIGIN,
    period_start,
    periods_covering,
    sigma_within,
)


async def trend(session: AsyncSession, query: TrendQuery) -> dict[str, Any]:
    """The trend document of ``query`` (see ``TrendOut``)."""
    await read_snapshot(session)
    first, end = periods_covering(query.from_, query.to, query.period)
    length, origin = PERIOD_HOURS[query.period], PERIOD_ORIGIN[query.period]
    h = HOURS.c
    filters = [
        h.product_sku == query.product_sku,
        h.parameter == query.parameter,
        h.hour >= first * length + origin,
        h.hour < end * length + origin,
    ]
    rows = (await session.execute(hour_figures(filters, _period_index(h.hour, length, origin)))).all()
    spec = (
        await session.execute(
            select(SPECS.c.lsl, SPECS.c.usl).where(
                SPECS.c.product_sku == query.product_sku, SPECS.c.parameter == query.parameter
            )
        )
    ).first()
    lsl, usl = (None, None) if spec is None else (spec[0], spec[1])
    items = []
    for row in sorted(rows, key=lambda row: int(row.period)):
        figures = figures_of(row)
        m = figures.moments
        _cp, cpk = capability_indices(m.mean, sigma_within(m.n, figures.mr_sum), lsl, usl)
        items.append(
            {
                "start": period_start(int(row.period), query.period),
                "n": m.n,
                "mean": m.mean,
                "std": m.std(),
                "min": m.min,
                "max": m.max,
                "out_of_spec": m.out_of_spec,
                "cpk": None if m.min == m.max else cpk,
            }
        )
    return {
        "product_sku": query.product_sku,
        "parameter": query.parameter,
        "period": query.period,
        "from": period_start(first, query.period),
        "to": period_start(end, query.period),
        "lsl": lsl,
        "usl": usl,
        "items": items,
    }


def _period_index(hour: ColumnElement[int], length: int, origin: int) -> ColumnElement[int]:
    """floor((hour - origin) / length) in integer arithmetic on both databases (% truncates there)."""
    shifted = hour - literal(origin, Integer)
    floor_mod = (shifted % length + length) % length
    return (shifted - floor_mod) // length
