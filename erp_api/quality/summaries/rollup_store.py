"""Storage of the rollups: the statements that lock, read and write ``quality_series_stats`` and
``quality_hourly_stats`` and read the points of a series, for ``rollups.SeriesRollups``.

Upserts are ``INSERT ... ON CONFLICT DO UPDATE`` on both databases; the series rows are locked by one
(creating them if need be) in key order, which is what orders concurrent writers of a series.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Table, and_, bindparam, case, delete, func, literal, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.quality.summaries.rollup_sql import (
    HOURS,
    RAW,
    SERIES,
    SPECS,
    SeriesKey,
    figures_of,
    hour_figures,
    segment_of,
)
from erp_api.quality.summaries.series_stats import EMPTY, Limits, Moments, Point, Segment, hour_start

_HOUR_VALUES = ("n", "mean", "m2", "min", "max", "mr_sum", "out_of_spec")
_HOUR_POINTS = ("first_at", "first_id", "first_value", "last_at", "last_id", "last_value")
_SERIES_COLUMNS = (*_HOUR_VALUES, "last_at", "last_id", "last_value")
# Rows per fetch when a series' measurements are streamed.
STREAM_CHUNK = 2_000


@dataclass(frozen=True, slots=True)
class SeriesFigures:
    """A series' running figures: its moments, moving-range sum and last point."""

    moments: Moments
    mr_sum: float
    last: Point | None


class RollupStore:
    """The rollup rows and a series' points, in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._dialect = session.get_bind().dialect.name

    async def neighbour(self, key: SeriesKey, hour: int, *, before: bool) -> Point | None:
        """The last point of the nearest stored hour before ``hour``, or the first one after it."""
        if before:
            stmt = (
                select(HOURS.c.last_at, HOURS.c.last_id, HOURS.c.last_value)
                .where(*series_hours(key), HOURS.c.hour < hour)
                .order_by(HOURS.c.hour.desc())
            )
        else:
            stmt = (
                select(HOURS.c.first_at, HOURS.c.first_id, HOURS.c.first_value)
                .where(*series_hours(key), HOURS.c.hour > hour)
                .order_by(HOURS.c.hour)
            )
        row = (await self.session.execute(stmt.limit(1))).first()
        return None if row is None else Point(row[0], row[1], row[2])

    async def merged(self, key: SeriesKey) -> SeriesFigures:
        """The series' figures merged from its hourly rows (as stored by now in this transaction)."""
        row = (await self.session.execute(hour_figures(series_hours(key)))).first()
        if row is None:
            return SeriesFigures(EMPTY, 0.0, None)
        merged = figures_of(row)
        return SeriesFigures(merged.moments, merged.mr_sum, merged.last)

    def _insert(self, table: Table) -> Any:
        return (postgresql if self._dialect == "postgresql" else sqlite).insert(table)

    async def lock(self, keys: Iterable[SeriesKey]) -> dict[SeriesKey, SeriesFigures]:
        """Lock (creating if need be) the series rows, in key order; their current figures."""
        ordered = sorted(set(keys))
        empty = {"n": 0, "mean": 0.0, "m2": 0.0, "mr_sum": 0.0, "out_of_spec": 0}
        stmt = self._insert(SERIES).values(
            [{"product_sku": sku, "parameter": parameter, **empty} for sku, parameter in ordered]
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[SERIES.c.product_sku, SERIES.c.parameter], set_={"n": SERIES.c.n}
        ).returning(*SERIES.c)
        return {
            (row.product_sku, row.parameter): _figures_of_series(row)
            for row in await self.session.execute(stmt)
        }

    async def limits(self, keys: Iterable[SeriesKey]) -> dict[SeriesKey, Limits]:
        stmt = select(SPECS.c.product_sku, SPECS.c.parameter, SPECS.c.lsl, SPECS.c.usl).where(
            tuple_(SPECS.c.product_sku, SPECS.c.parameter).in_(sorted(set(keys)))
        )
        return {(row[0], row[1]): (row[2], row[3]) for row in await self.session.execute(stmt)}

    async def read_hours(self, keys: set[tuple[SeriesKey, int]]) -> dict[tuple[SeriesKey, int], Segment]:
        if not keys:
            return {}
        wanted = sorted((sku, parameter, hour) for (sku, parameter), hour in keys)
        stmt = select(HOURS).where(tuple_(HOURS.c.product_sku, HOURS.c.parameter, HOURS.c.hour).in_(wanted))
        return {
            ((row.product_sku, row.parameter), row.hour): segment_of(row)
            for row in await self.session.execute(stmt)
        }

    async def store_hours(self, hours: Sequence[tuple[SeriesKey, int, Segment]]) -> None:
        kept = [_hour_values(key, hour, segment) for key, hour, segment in hours if segment.n]
        gone = [(*key, hour) for key, hour, segment in hours if not segment.n]
        if kept:
            stmt = self._insert(HOURS)
            stmt = stmt.on_conflict_do_update(
                index_elements=[HOURS.c.product_sku, HOURS.c.parameter, HOURS.c.hour],
                set_={name: stmt.excluded[name] for name in (*_HOUR_VALUES, *_HOUR_POINTS)},
            )
            await self.session.execute(stmt, kept)
        if gone:
            await self.session.execute(
                delete(HOURS).where(tuple_(HOURS.c.product_sku, HOURS.c.parameter, HOURS.c.hour).in_(gone))
            )

    async def store_series(self, totals: dict[SeriesKey, SeriesFigures]) -> None:
        stmt = (
            update(SERIES)
            .where(
                SERIES.c.product_sku == bindparam("key_sku"), SERIES.c.parameter == bindparam("key_parameter")
            )
            .values({name: bindparam(f"v_{name}") for name in _SERIES_COLUMNS})
        )
        rows = []
        for (sku, parameter), total in sorted(totals.items()):
            m, last = total.moments, total.last
            rows.append(
                {
                    "key_sku": sku,
                    "key_parameter": parameter,
                    "v_n": m.n,
                    "v_mean": m.mean,
                    "v_m2": m.m2,
                    "v_min": m.min,
                    "v_max": m.max,
                    "v_mr_sum": total.mr_sum if m.n > 1 else 0.0,
                    "v_out_of_spec": m.out_of_spec,
                    "v_last_at": None if last is None else last.measured_at,
                    "v_last_id": None if last is None else last.id,
                    "v_last_value": None if last is None else last.value,
                }
            )
        if rows:
            await self.session.execute(stmt, rows)

    async def hour_points(self, key: SeriesKey, hour: int) -> list[Point]:
        return await self.points(
            key, [RAW.c.measured_at >= hour_start(hour), RAW.c.measured_at < hour_start(hour + 1)]
        )

    async def points(
        self, key: SeriesKey, where: list[Any], *, descending: bool = False, limit: int | None = None
    ) -> list[Point]:
        """Non-voided points of a series matching ``where``, in series order."""
        order = (RAW.c.measured_at.desc(), RAW.c.id.desc()) if descending else (RAW.c.measured_at, RAW.c.id)
        stmt = (
            select(RAW.c.measured_at, RAW.c.id, RAW.c.value)
            .where(*series_rows(key), *where)
            .order_by(*order)
            .limit(limit)
        )
        points = [Point(*row) for row in await self.session.execute(stmt)]
        return points[::-1] if descending else points

    async def count(self, key: SeriesKey, where: list[Any]) -> int:
        """How many non-voided points of a series match ``where``."""
        stmt = select(func.count()).select_from(RAW).where(*series_rows(key), *where)
        return int(await self.session.scalar(stmt) or 0)

    async def clear_hours(self, key: SeriesKey) -> None:
        await self.session.execute(delete(HOURS).where(*series_hours(key)))

    async def recount_out_of_spec(self, key: SeriesKey, limits: Limits) -> None:
        """Recount the series' out-of-spec points under ``limits``: every hour's count, then the series'.

        An hour's smallest and largest values decide most hours without reading a measurement: both
        inside the limits, none is out; both beyond the same limit, all are. Only an hour that straddles
        a limit counts its raw rows (the index range from its first to its last point), and only the
        hours whose count changes are written. One statement for the hours, one for the series' sum.
        """
        lsl, usl = limits
        hours = HOURS.alias("recounted_hour")
        if lsl is None and usl is None:
            count: Any = literal(0)
        else:
            raw_outside, inside, beyond = [], [], []
            if lsl is not None:
                raw_outside.append(RAW.c.value < lsl)
                inside.append(hours.c.min >= lsl)
                beyond.append(hours.c.max < lsl)
            if usl is not None:
                raw_outside.append(RAW.c.value > usl)
                inside.append(hours.c.max <= usl)
                beyond.append(hours.c.min > usl)
            counted = (
                select(func.count())
                .select_from(RAW)
                .where(
                    *series_rows(key),
                    RAW.c.measured_at >= hours.c.first_at,
                    RAW.c.measured_at <= hours.c.last_at,
                    or_(*raw_outside),
                )
                .scalar_subquery()
            )
            count = case((and_(*inside), 0), (or_(*beyond), hours.c.n), else_=counted)
        recounted = (
            select(hours.c.hour, count.label("out_of_spec"))
            .where(hours.c.product_sku == key[0], hours.c.parameter == key[1])
            .subquery("recounted")
        )
        await self.session.execute(
            update(HOURS)
            .where(
                *series_hours(key),
                HOURS.c.hour == recounted.c.hour,
                HOURS.c.out_of_spec != recounted.c.out_of_spec,
            )
            .values(out_of_spec=recounted.c.out_of_spec)
        )
        total = select(func.coalesce(func.sum(HOURS.c.out_of_spec), 0)).where(*series_hours(key))
        await self.session.execute(
            update(SERIES)
            .where(SERIES.c.product_sku == key[0], SERIES.c.parameter == key[1])
            .values(out_of_spec=total.scalar_subquery())
        )

    async def stream_points(self, key: SeriesKey) -> AsyncIterator[Point]:
        """Every non-voided point of a series in series order, fetched in chunks."""
        stmt = (
            select(RAW.c.measured_at, RAW.c.id, RAW.c.value)
            .where(*series_rows(key))
            .order_by(RAW.c.measured_at, RAW.c.id)
            .execution_options(yield_per=STREAM_CHUNK)
        )
        async for measured_at, point_id, value in await self.session.stream(stmt):
            yield Point(measured_at, point_id, value)


def _figures_of_series(row: Row[Any]) -> SeriesFigures:
    moments = Moments(row.n, row.mean, row.m2, row.min, row.max, row.out_of_spec) if row.n else EMPTY
    last = None if row.last_at is None or not row.n else Point(row.last_at, row.last_id, row.last_value)
    return SeriesFigures(moments, row.mr_sum if row.n else 0.0, last)


def _hour_values(key: SeriesKey, hour: int, segment: Segment) -> dict[str, Any]:
    m, first, last = segment.moments, segment.first, segment.last
    assert first is not None and last is not None
    return {
        "product_sku": key[0],
        "parameter": key[1],
        "hour": hour,
        "n": m.n,
        "mean": m.mean,
        "m2": m.m2,
        "min": m.min,
        "max": m.max,
        "mr_sum": segment.mr_sum if m.n > 1 else 0.0,
        "out_of_spec": m.out_of_spec,
        "first_at": first.measured_at,
        "first_id": first.id,
        "first_value": first.value,
        "last_at": last.measured_at,
        "last_id": last.id,
        "last_value": last.value,
    }


def series_rows(key: SeriesKey) -> list[Any]:
    return [RAW.c.product_sku == key[0], RAW.c.parameter == key[1], RAW.c.voided_at.is_(None)]


def series_hours(key: SeriesKey) -> list[Any]:
    return [HOURS.c.product_sku == key[0], HOURS.c.parameter == key[1]]
