"""The rollup tables in SQL: their handles, an hourly row as a segment, and hours merged in the database.

``hour_figures`` merges hourly rows per series (and per period) in one statement, exactly as
``series_stats.Segment.then`` merges them in Python: counts, sums and extremes add up; the mean is
the count-weighted mean; M2 is sum(M2_h + n_h (mean_h - mean)^2), which adds only non-negative
terms; the moving-range sum adds |first_h - last_(h-1)| between consecutive hours of the group.
Summaries over ranges and trends read through it (``summary_query``, ``trend``), and so does the
series' running figure when points leave it (``rollups``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table, func, select

from erp_api.quality.models import HourlyStats, Measurement, QualitySpec, SeriesStats
from erp_api.quality.summaries.series_stats import Moments, Point, Segment

SeriesKey = tuple[str, str]
"""(product_sku, parameter)"""
SERIES: Table = SeriesStats.__table__  # type: ignore[assignment]
HOURS: Table = HourlyStats.__table__  # type: ignore[assignment]
RAW: Table = Measurement.__table__  # type: ignore[assignment]
SPECS: Table = QualitySpec.__table__  # type: ignore[assignment]


def segment_of(row: Row[Any]) -> Segment:
    """A row of ``quality_hourly_stats`` as a segment."""
    moments = Moments(row.n, row.mean, row.m2, row.min, row.max, row.out_of_spec)
    first = Point(row.first_at, row.first_id, row.first_value)
    return Segment(moments, row.mr_sum, first, Point(row.last_at, row.last_id, row.last_value))


def hour_figures(filters: list[ColumnElement[bool]], period: ColumnElement[int] | None = None) -> Select[Any]:
    """The hourly rows matching ``filters`` merged per series, and per ``period`` (an expression of
    the hour) if given: product_sku, parameter, [period,] then the columns ``figures_of`` reads."""
    h = HOURS.c
    group = [h.product_sku, h.parameter] + ([] if period is None else [period])

    def ascending(function: Any) -> Any:
        return function.over(partition_by=group, order_by=h.hour)

    def descending(function: Any) -> Any:
        return function.over(partition_by=group, order_by=h.hour.desc())

    inner = (
        select(
            h.product_sku,
            h.parameter,
            *([] if period is None else [period.label("period")]),
            h.n,
            h.mean,
            h.m2,
            h.min,
            h.max,
            h.mr_sum,
            h.out_of_spec,
            h.first_value,
            (func.sum(h.n * h.mean).over(partition_by=group) / func.sum(h.n).over(partition_by=group)).label(
                "group_mean"
            ),
            ascending(func.lag(h.last_value)).label("prev_last"),
            ascending(func.first_value(h.first_at, type_=h.first_at.type)).label("head_at"),
            ascending(func.first_value(h.first_id)).label("head_id"),
            ascending(func.first_value(h.first_value)).label("head_value"),
            descending(func.first_value(h.last_at, type_=h.last_at.type)).label("tail_at"),
            descending(func.first_value(h.last_id)).label("tail_id"),
            descending(func.first_value(h.last_value)).label("tail_value"),
        )
        .where(*filters)
        .subquery("hours")
    )
    o = inner.c
    spread = o.mean - o.group_mean
    keys = [o.product_sku, o.parameter] + ([] if period is None else [o.period])
    bridges = func.coalesce(func.sum(func.abs(o.first_value - o.prev_last)), 0.0)
    return select(
        *keys,
        func.sum(o.n).label("n"),
        func.max(o.group_mean).label("mean"),
        func.sum(o.m2 + o.n * spread * spread).label("m2"),
        func.min(o.min).label("min"),
        func.max(o.max).label("max"),
        (func.sum(o.mr_sum) + bridges).label("mr_sum"),
        func.sum(o.out_of_spec).label("out_of_spec"),
        *(func.max(column).label(column.name) for column in (o.head_at, o.head_id, o.head_value)),
        *(func.max(column).label(column.name) for column in (o.tail_at, o.tail_id, o.tail_value)),
    ).group_by(*keys)


def figures_of(row: Any) -> Segment:
    """A row of ``hour_figures`` as a segment."""
    moments = Moments(int(row.n), float(row.mean), float(row.m2), row.min, row.max, int(row.out_of_spec))
    first = Point(row.head_at, int(row.head_id), float(row.head_value))
    return Segment(
        moments, float(row.mr_sum), first, Point(row.tail_at, int(row.tail_id), float(row.tail_value))
    )
