"""Rollups of measurement series, kept exact in the transaction that changes the measurements.

Two tables: per (product, parameter) series its running statistics (``SeriesStats``), and per series
and UTC hour the statistics of that hour (``HourlyStats``); ``series_stats`` says what they hold and
how they merge. Summaries and trends read them instead of the measurements (``summary_query``,
``trend``), so a read costs the same at ten thousand or ten million points.

Every change to the measurements goes through here, in its own transaction:

- new points (single, group-commit and batch writes, ``added``; a batch's rows are read back with
  their ids after its COPY): a point after the series' last one is appended without reading any
  measurement. One that lands before it (a backdated measured_at, or a concurrent transaction that
  took a lower id and committed later) is merged into its hour with its neighbours: the points around
  it say which moving ranges it breaks and makes (the stored points from the first to the last new
  one of its hour, and one on either side; never the rest of the hour).
- voids and retention deletes (``removed``): the hours are recomputed from their raw rows, and the
  series' figures merged again from its hourly rows (``series_stats`` says why nothing is subtracted).
- new spec limits (``limits_changed``): the out-of-spec counts are recounted, each hour's from its
  minimum and maximum where they decide it, else from its raw rows.
- ``rebuild``: a series recomputed from scratch (the reconciliation command, rows stored before).

Concurrency: a series' ``quality_series_stats`` row is locked first (an upsert that creates it if
need be) and everything else of the series is read and written after that, under the lock: on
PostgreSQL (READ COMMITTED) each statement then sees the committed work of the previous holder, and
its own uncommitted rows; rows of a transaction still waiting for the lock are invisible, and that
transaction applies them once it holds the lock. Locks are taken in (product, parameter) order, so
writers never wait for each other in a circle. SQLite has one writer at a time. Out-of-spec counts
use limits that cannot change before the transaction commits: a measurement write reads them with
the spec rows share-locked, everything else under the series lock, and a spec change takes the
series lock before it recounts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from operator import attrgetter

from sqlalchemy import tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.quality.summaries.rollup_sql import RAW, SeriesKey
from erp_api.quality.summaries.rollup_store import STREAM_CHUNK, RollupStore, SeriesFigures
from erp_api.quality.summaries.series_stats import (
    NO_LIMITS,
    NOTHING,
    Limits,
    Moments,
    Point,
    Segment,
    hour_of,
    hour_start,
    joined,
    moving_range_sum,
)


class SeriesRollups:
    """Maintains the rollups within the caller's transaction (see the module docstring)."""

    def __init__(self, session: AsyncSession) -> None:
        self._store = RollupStore(session)

    # Changes -------------------------------------------------------------------------------------

    async def added(
        self, points: Iterable[tuple[str, str, Point]], *, limits: Mapping[SeriesKey, Limits]
    ) -> None:
        """Points (product_sku, parameter, point) this transaction has just inserted; ``limits`` of
        their series as this transaction read them with the spec rows share-locked (so they are the
        limits in force until it commits; a spec change recounts under the series lock after it)."""
        by_series: dict[SeriesKey, list[Point]] = defaultdict(list)
        for product_sku, parameter, point in points:
            by_series[(product_sku, parameter)].append(point)
        if not by_series:
            return
        totals = await self._store.lock(by_series)
        by_hour: dict[SeriesKey, dict[int, list[Point]]] = {}
        for key, series_points in by_series.items():
            series_points.sort(key=_series_order)
            by_hour[key] = _by_hour(series_points)
        hours = await self._store.read_hours(
            {(key, hour) for key, groups in by_hour.items() for hour in groups}
        )
        appended: list[tuple[SeriesKey, int, Segment]] = []
        for key in sorted(by_series):
            pts, total, series_limits = by_series[key], totals[key], limits.get(key, NO_LIMITS)
            groups = by_hour[key]
            if total.last is None or pts[0].key > total.last.key:
                # The common case: every point after the series' end. No measurement is read.
                parts = {hour: Segment.of(group, series_limits) for hour, group in groups.items()}
                # A batch of one hour (the usual one) is that hour's segment: its points are summed once.
                segment = next(iter(parts.values())) if len(parts) == 1 else Segment.of(pts, series_limits)
                for hour, part in parts.items():
                    appended.append((key, hour, hours.get((key, hour), NOTHING).then(part)))
                bridge = 0.0 if total.last is None else abs(pts[0].value - total.last.value)
                totals[key] = SeriesFigures(
                    total.moments.merge(segment.moments), total.mr_sum + segment.mr_sum + bridge, pts[-1]
                )
                continue
            for hour, group in groups.items():
                old = hours.get((key, hour), NOTHING)
                new = await self._inserted(key, hour, old, group, series_limits)
                total = await self._replace_hour(
                    key,
                    hour,
                    total,
                    old=old,
                    new=new,
                    added=Moments.of([p.value for p in group], series_limits),
                )
                await self._store.store_hours([(key, hour, new)])
            totals[key] = total
        await self._store.store_hours(appended)
        await self._store.store_series({key: totals[key] for key in by_series})

    async def removed(self, hours: Iterable[tuple[str, str, int]]) -> None:
        """Hours (product_sku, parameter, hour) that points left in this transaction (voided or
        deleted): each is recomputed from its raw rows, then the series' figures are merged again from
        its hours. Taking the gone points' share out by subtraction could leave few correct digits
        (a voided 1e12 typo in a series of 10 +- 0.1); the merge adds only non-negative terms. It reads
        all the series' hourly rows (8,760 a year), in one aggregate: a void or delete costs that."""
        by_series: dict[SeriesKey, set[int]] = defaultdict(set)
        for product_sku, parameter, hour in hours:
            by_series[(product_sku, parameter)].add(hour)
        if not by_series:
            return
        await self._store.lock(by_series)
        limits = await self._store.limits(by_series)
        for key in sorted(by_series):
            series_limits = limits.get(key, NO_LIMITS)
            await self._store.store_hours(
                [
                    (key, hour, Segment.of(await self._store.hour_points(key, hour), series_limits))
                    for hour in sorted(by_series[key])
                ]
            )
        await self._store.store_series({key: await self._store.merged(key) for key in by_series})

    async def limits_changed(self, product_sku: str, parameter: str) -> None:
        """The series' spec limits changed in this transaction: recount its out-of-spec points.

        Under the series lock; an hour whose values lie all inside or all beyond a limit is decided
        by its minimum and maximum, so only the hours that straddle a limit read measurements.
        """
        key = (product_sku, parameter)
        await self._store.lock([key])
        limits = (await self._store.limits([key])).get(key, NO_LIMITS)
        await self._store.recount_out_of_spec(key, limits)

    async def rebuild(self, product_sku: str, parameter: str) -> Segment:
        """Recompute one series' rollups from its raw rows; returns the series' statistics."""
        key = (product_sku, parameter)
        await self._store.lock([key])
        series_limits = (await self._store.limits([key])).get(key, NO_LIMITS)
        await self._store.clear_hours(key)
        # Read to the end before writing: no statement interleaves with the streaming cursor.
        hours = [(hour, segment) async for hour, segment in self.hourly(key, series_limits)]
        total = joined(segment for _hour, segment in hours)
        for start in range(0, len(hours), STREAM_CHUNK):
            chunk = hours[start : start + STREAM_CHUNK]
            await self._store.store_hours([(key, hour, segment) for hour, segment in chunk])
        await self._store.store_series({key: SeriesFigures(total.moments, total.mr_sum, total.last)})
        return total

    async def hourly(self, key: SeriesKey, limits: Limits) -> AsyncIterator[tuple[int, Segment]]:
        """The series' hourly segments computed from its raw rows, streamed in series order."""
        current: int | None = None
        chunk: list[Point] = []
        async for point in self._store.stream_points(key):
            hour = hour_of(point.measured_at)
            if hour != current and chunk:
                assert current is not None
                yield current, Segment.of(chunk, limits)
                chunk = []
            current = hour
            chunk.append(point)
        if chunk:
            assert current is not None
            yield current, Segment.of(chunk, limits)

    # One hour ------------------------------------------------------------------------------------

    async def _inserted(
        self, key: SeriesKey, hour: int, old: Segment, group: Sequence[Point], limits: Limits
    ) -> Segment:
        """The hour ``old`` with ``group`` (new points, in series order, already inserted) merged in."""
        added = Segment.of(group, limits)
        if old.n == 0:
            return added
        assert old.last is not None
        if group[0].key > old.last.key:
            return old.then(added)
        start, end = hour_start(hour), hour_start(hour + 1)
        low, high = group[0].key, group[-1].key
        position = tuple_(RAW.c.measured_at, RAW.c.id)
        before = await self._store.points(
            key, [position < tuple_(*low), RAW.c.measured_at >= start], descending=True, limit=1
        )
        between = [position >= tuple_(*low), position <= tuple_(*high)]
        # A batch that merely commits late has nothing stored among its points: counting them spares
        # reading them back.
        if await self._store.count(key, between) == len(group):
            middle = list(group)
        else:
            middle = await self._store.points(key, between)
        after = await self._store.points(key, [position > tuple_(*high), RAW.c.measured_at < end], limit=1)
        window = before + middle + after
        new_ids = {point.id for point in group}
        kept = [point.value for point in window if point.id not in new_ids]
        mr_sum = old.mr_sum + moving_range_sum([point.value for point in window]) - moving_range_sum(kept)
        return Segment(
            old.moments.merge(added.moments),
            mr_sum,
            old.first if before else window[0],
            old.last if after else window[-1],
        )

    async def _replace_hour(
        self, key: SeriesKey, hour: int, total: SeriesFigures, *, old: Segment, new: Segment, added: Moments
    ) -> SeriesFigures:
        """The series' figures once hour ``hour`` went from ``old`` to ``new`` by gaining the points
        whose moments are ``added``. Nothing is subtracted that could shrink the figures: moments only
        merge, and a point inserted between two others never shortens the moving-range path (the
        triangle inequality), so the sum's rounding stays relative to its own size."""
        moments = total.moments.merge(added)
        last_hour = None if total.last is None else hour_of(total.last.measured_at)
        first_moved = old.n == 0 or new.n == 0 or old.first != new.first
        last_moved = old.n == 0 or new.n == 0 or old.last != new.last
        prev = await self._store.neighbour(key, hour, before=True) if first_moved else None
        following = None
        if last_moved and last_hour is not None and hour < last_hour:
            following = await self._store.neighbour(key, hour, before=False)
        mr_sum = total.mr_sum + new.mr_sum - old.mr_sum
        mr_sum += _bridges(prev, new, following) - _bridges(prev, old, following)
        last = total.last
        if last_hour is None or hour > last_hour or (hour == last_hour and new.n):
            last = new.last if new.n else last
        elif hour == last_hour:
            last = prev
        return SeriesFigures(moments, mr_sum, last)


# Point.key as a C-level getter: a batch sorts ten thousand points.
_series_order = attrgetter("measured_at", "id")


def _by_hour(points: Sequence[Point]) -> dict[int, list[Point]]:
    groups: dict[int, list[Point]] = defaultdict(list)
    for point in points:
        groups[hour_of(point.measured_at)].append(point)
    return groups


def _bridges(prev: Point | None, segment: Segment, following: Point | None) -> float:
    """The moving ranges between a segment and its neighbours in the series (to them, or across it)."""
    if segment.n == 0:
        return abs(following.value - prev.value) if prev is not None and following is not None else 0.0
    assert segment.first is not None and segment.last is not None
    total = 0.0
    if prev is not None:
        total += abs(segment.first.value - prev.value)
    if following is not None:
        total += abs(following.value - segment.last.value)
    return total
