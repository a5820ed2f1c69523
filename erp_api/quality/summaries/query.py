"""The capability summary, read from the series rollups (``erp_api.quality.summaries.rollups``), flat in history.

Without a time range a summary is one row per series of ``quality_series_stats``. With a range
[from, to) it merges three stretches per series in time order: the raw points from ``from`` up to
the first whole hour, the whole hours (``quality_hourly_stats``, merged in SQL: ``hour_figures``),
and the raw points from the last whole hour up to ``to``. The raw edges are bounded by an hour of
each series; a range within one or two hours is read raw altogether. Merging is exact
(``series_stats``): the figures are those of the series' points in the range, in time order. Every
statement of a summary reads one snapshot (``read_snapshot``), so a concurrent commit is either in
all of them or in none. Voided measurements count nowhere.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.db import read_snapshot
from erp_api.quality.summaries.rollup_sql import (
    HOURS,
    RAW,
    SERIES,
    SPECS,
    SeriesKey,
    figures_of,
    hour_figures,
)
from erp_api.quality.summaries.series_stats import (
    NO_LIMITS,
    NOTHING,
    Limits,
    Moments,
    Point,
    Segment,
    hour_of,
    hour_start,
    mr_bar,
)

LAST_HOUR = hour_of(datetime.max.replace(tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class SeriesAggregate:
    """The statistics of one product and parameter."""

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
    target: float | None


async def summarize(
    session: AsyncSession,
    *,
    product_sku: str | None,
    parameter: str | None,
    measured_from: datetime | None,
    measured_to: datetime | None,
) -> list[SeriesAggregate]:
    """One row per (product, parameter) with measurements in [measured_from, measured_to), in order."""
    await read_snapshot(session)
    if measured_from is None and measured_to is None:
        return await _whole_series(session, product_sku, parameter)
    limits, targets = await specs_of(session, product_sku, parameter)
    first_hour = None if measured_from is None else _hour_at_or_after(measured_from)
    end_hour = None if measured_to is None else hour_of(measured_to)
    # From within the last hour of 9999-12-31 no whole hour follows that a datetime can hold.
    past_the_last_hour = first_hour is not None and first_hour > LAST_HOUR
    if past_the_last_hour or (first_hour is not None and end_hour is not None and first_hour >= end_hour):
        # Within one hour, or across one hour boundary: the raw points are all there is to read.
        raw = await _raw_stretch(session, product_sku, parameter, (measured_from, measured_to), limits)
        return _aggregates(raw, limits, targets)
    head: dict[SeriesKey, Segment] = {}
    tail: dict[SeriesKey, Segment] = {}
    if measured_from is not None and first_hour is not None and hour_start(first_hour) > measured_from:
        head = await _raw_stretch(
            session, product_sku, parameter, (measured_from, hour_start(first_hour)), limits
        )
    whole = await _whole_hours(session, product_sku, parameter, first_hour, end_hour)
    if measured_to is not None and end_hour is not None and hour_start(end_hour) < measured_to:
        tail = await _raw_stretch(
            session, product_sku, parameter, (hour_start(end_hour), measured_to), limits
        )
    merged = {
        key: head.get(key, NOTHING).then(whole.get(key, NOTHING)).then(tail.get(key, NOTHING))
        for key in {*head, *whole, *tail}
    }
    return _aggregates(merged, limits, targets)


async def _whole_series(
    session: AsyncSession, product_sku: str | None, parameter: str | None
) -> list[SeriesAggregate]:
    s, spec = SERIES.c, SPECS.c
    stmt = (
        select(
            s.product_sku,
            s.parameter,
            s.n,
            s.mean,
            s.m2,
            s.min,
            s.max,
            s.mr_sum,
            s.out_of_spec,
            spec.lsl,
            spec.usl,
            spec.target,
        )
        .select_from(
            SERIES.outerjoin(SPECS, and_(spec.product_sku == s.product_sku, spec.parameter == s.parameter))
        )
        .where(s.n > 0, *_series_filters(SERIES, product_sku, parameter))
        .order_by(s.product_sku, s.parameter)
    )
    return [
        aggregate_of(
            row.product_sku,
            row.parameter,
            Moments(row.n, row.mean, row.m2, row.min, row.max, row.out_of_spec),
            row.mr_sum,
            (row.lsl, row.usl),
            row.target,
        )
        for row in await session.execute(stmt)
    ]


async def _whole_hours(
    session: AsyncSession,
    product_sku: str | None,
    parameter: str | None,
    first_hour: int | None,
    end_hour: int | None,
) -> dict[SeriesKey, Segment]:
    # Per series, so that each is one range of the (product, parameter, hour) key (see _raw_stretch).
    filters: list[ColumnElement[bool]] = [
        tuple_(HOURS.c.product_sku, HOURS.c.parameter).in_(_series(product_sku, parameter))
    ]
    if first_hour is not None:
        filters.append(HOURS.c.hour >= first_hour)
    if end_hour is not None:
        filters.append(HOURS.c.hour < end_hour)
    rows = await session.execute(hour_figures(filters))
    return {(row.product_sku, row.parameter): figures_of(row) for row in rows}


async def _raw_stretch(
    session: AsyncSession,
    product_sku: str | None,
    parameter: str | None,
    between: tuple[datetime | None, datetime | None],
    limits: dict[SeriesKey, Limits],
) -> dict[SeriesKey, Segment]:
    """The non-voided points of every series in [start, end), as segments (bounded: at most an hour or
    two of each series). The series are listed first, so that each is read as one range of its
    (product, parameter, measured_at) index: with the product alone, or none, the index would be
    scanned over all of history."""
    m = RAW.c
    filters: list[ColumnElement[bool]] = [
        tuple_(m.product_sku, m.parameter).in_(_series(product_sku, parameter)),
        m.voided_at.is_(None),
    ]
    start, end = between
    if start is not None:
        filters.append(m.measured_at >= start)
    if end is not None:
        filters.append(m.measured_at < end)
    stmt = (
        select(m.product_sku, m.parameter, m.measured_at, m.id, m.value)
        .where(*filters)
        .order_by(m.product_sku, m.parameter, m.measured_at, m.id)
    )
    points: dict[SeriesKey, list[Point]] = defaultdict(list)
    for row in await session.execute(stmt):
        points[(row.product_sku, row.parameter)].append(Point(row.measured_at, row.id, row.value))
    return {key: Segment.of(series, limits.get(key, (None, None))) for key, series in points.items()}


def _aggregates(
    segments: dict[SeriesKey, Segment],
    limits: dict[SeriesKey, Limits],
    targets: dict[SeriesKey, float | None],
) -> list[SeriesAggregate]:
    return [
        aggregate_of(
            *key, segments[key].moments, segments[key].mr_sum, limits.get(key, NO_LIMITS), targets.get(key)
        )
        for key in sorted(segments)
        if segments[key].n
    ]


async def specs_of(
    session: AsyncSession, product_sku: str | None, parameter: str | None
) -> tuple[dict[SeriesKey, Limits], dict[SeriesKey, float | None]]:
    """The spec limits and the target of each specified series the filters cover, in one statement."""
    spec = SPECS.c
    stmt = select(spec.product_sku, spec.parameter, spec.lsl, spec.usl, spec.target).where(
        *_series_filters(SPECS, product_sku, parameter)
    )
    limits: dict[SeriesKey, Limits] = {}
    targets: dict[SeriesKey, float | None] = {}
    for row in await session.execute(stmt):
        limits[(row[0], row[1])] = (row[2], row[3])
        targets[(row[0], row[1])] = row[4]
    return limits, targets


def aggregate_of(  # noqa: PLR0917 - a series' figures, each in its own place
    product_sku: str, parameter: str, m: Moments, mr_sum: float, limits: Limits, target: float | None
) -> SeriesAggregate:
    """The statistics of a stretch of a series (or of a charge's part of it) with n >= 1."""
    assert m.min is not None and m.max is not None
    return SeriesAggregate(
        product_sku=product_sku,
        parameter=parameter,
        n=m.n,
        mean=m.mean,
        min=m.min,
        max=m.max,
        std=m.std(),
        mr_bar=0.0 if m.n > 1 and m.min == m.max else mr_bar(m.n, mr_sum),
        out_of_spec=m.out_of_spec,
        lsl=limits[0],
        usl=limits[1],
        target=target,
    )


def _series(product_sku: str | None, parameter: str | None) -> Select[tuple[str, str]]:
    """The (product_sku, parameter) of the series a summary covers that have measurements."""
    s = SERIES.c
    return select(s.product_sku, s.parameter).where(s.n > 0, *_series_filters(SERIES, product_sku, parameter))


def _series_filters(table: Any, product_sku: str | None, parameter: str | None) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if product_sku is not None:
        filters.append(table.c.product_sku == product_sku)
    if parameter is not None:
        filters.append(table.c.parameter == parameter)
    return filters


def _hour_at_or_after(moment: datetime) -> int:
    hour = hour_of(moment)
    return hour if hour_start(hour) == moment else hour + 1
