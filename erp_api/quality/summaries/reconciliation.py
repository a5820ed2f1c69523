"""Reconciliation of the series rollups with the measurements: ``python -m erp_api rollups check|rebuild``.

``check`` recomputes every series' rollups from its raw rows, as ``SeriesRollups.rebuild`` would, and
lists where the stored ones differ: counts, extremes, out-of-spec counts and first/last points must be
equal; the mean, the standard deviation and MR-bar (what summaries show) may differ only by the
rounding of incremental updates (relative 1e-9). Each series is compared within one snapshot, so
writes going on meanwhile cause no false alarm. ``rebuild`` replaces each series' rollups with the
recomputation, one transaction per series, under the series' lock (writers wait, nothing is lost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.db import create_engine, create_session_factory, read_snapshot
from erp_api.quality.summaries.rollup_sql import HOURS, RAW, SERIES, SPECS, SeriesKey, segment_of
from erp_api.quality.summaries.rollups import SeriesRollups
from erp_api.quality.summaries.series_stats import NO_LIMITS, Moments, Segment, joined, mr_bar
from erp_api.settings import Settings

RELATIVE_TOLERANCE = 1e-9
# Differences listed by the command (all are counted).
MAX_LISTED = 50


@dataclass(frozen=True, slots=True)
class Difference:
    """A figure of a series (``hour`` None) or of one of its hours that differs from its recomputation."""

    product_sku: str
    parameter: str
    hour: int | None
    figure: str
    stored: Any
    expected: Any

    def __str__(self) -> str:
        where = "series" if self.hour is None else f"hour {self.hour}"
        return (
            f"{self.product_sku}/{self.parameter} {where}: {self.figure} is {self.stored!r}, "
            f"recomputed {self.expected!r}"
        )


async def series_keys(session: AsyncSession) -> list[SeriesKey]:
    """Every series with measurements or rollups."""
    stmt = union(
        select(RAW.c.product_sku, RAW.c.parameter).distinct(),
        select(SERIES.c.product_sku, SERIES.c.parameter),
    )
    return sorted((row[0], row[1]) for row in await session.execute(stmt))


async def check(sessions: async_sessionmaker[AsyncSession]) -> list[Difference]:
    """Every difference between the stored rollups and their recomputation from the measurements."""
    async with sessions() as session:
        keys = await series_keys(session)
    differences: list[Difference] = []
    for key in keys:
        async with sessions() as session:
            await read_snapshot(session)
            differences += await _check_series(session, key)
    return differences


async def rebuild(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Recompute every series' rollups from its measurements; returns how many series."""
    async with sessions() as session:
        keys = await series_keys(session)
    for product_sku, parameter in keys:
        async with sessions.begin() as session:
            await SeriesRollups(session).rebuild(product_sku, parameter)
    return len(keys)


async def run_command(settings: Settings, action: str) -> int:
    """``rollups check`` (exit code 1 if anything differs) or ``rollups rebuild``."""
    engine = create_engine(settings)
    try:
        sessions = create_session_factory(engine)
        if action == "rebuild":
            print(f"rollups rebuilt from the measurements: {await rebuild(sessions)} series")
            return 0
        differences = await check(sessions)
    finally:
        await engine.dispose()
    for difference in differences[:MAX_LISTED]:
        print(difference)
    if len(differences) > MAX_LISTED:
        print(f"... and {len(differences) - MAX_LISTED} more")
    if differences:
        print(f"rollups differ from the measurements in {len(differences)} figure(s): run `rollups rebuild`")
        return 1
    print("rollups match the measurements")
    return 0


async def _check_series(session: AsyncSession, key: SeriesKey) -> list[Difference]:
    spec = (
        await session.execute(
            select(SPECS.c.lsl, SPECS.c.usl).where(SPECS.c.product_sku == key[0], SPECS.c.parameter == key[1])
        )
    ).first()
    limits = NO_LIMITS if spec is None else (spec[0], spec[1])
    expected = {hour: segment async for hour, segment in SeriesRollups(session).hourly(key, limits)}
    stored_rows = await session.execute(
        select(HOURS).where(HOURS.c.product_sku == key[0], HOURS.c.parameter == key[1])
    )
    stored = {row.hour: segment_of(row) for row in stored_rows}
    differences = []
    for hour in sorted(expected.keys() | stored.keys()):
        differences += [
            Difference(*key, hour, figure, mine, theirs)
            for figure, mine, theirs in _compare(stored.get(hour), expected.get(hour))
        ]
    total = joined(expected[hour] for hour in sorted(expected))
    row = (
        await session.execute(
            select(SERIES).where(SERIES.c.product_sku == key[0], SERIES.c.parameter == key[1])
        )
    ).first()
    mine = None
    if row is not None and row.n:
        mine = Segment(
            Moments(row.n, row.mean, row.m2, row.min, row.max, row.out_of_spec), row.mr_sum, None, None
        )
    differences += [
        Difference(*key, None, figure, stored_value, expected_value)
        for figure, stored_value, expected_value in _compare(mine, total if total.n else None, ends=False)
    ]
    if row is not None and row.n and total.last is not None:
        stored_last = (row.last_at, row.last_id, row.last_value)
        expected_last = (total.last.measured_at, total.last.id, total.last.value)
        if stored_last != expected_last:
            differences.append(Difference(*key, None, "last point", stored_last, expected_last))
    return differences


def _compare(
    stored: Segment | None, expected: Segment | None, *, ends: bool = True
) -> list[tuple[str, Any, Any]]:
    if stored is None or expected is None:
        if stored is expected:
            return []
        return [("n", 0 if stored is None else stored.n, 0 if expected is None else expected.n)]
    a, b = stored.moments, expected.moments
    found: list[tuple[str, Any, Any]] = [
        (figure, x, y)
        for figure, x, y in (
            ("n", a.n, b.n),
            ("min", a.min, b.min),
            ("max", a.max, b.max),
            ("out_of_spec", a.out_of_spec, b.out_of_spec),
        )
        if x != y
    ]
    scale = max(abs(b.min or 0.0), abs(b.max or 0.0), 1.0)
    for figure, x, y in (
        ("mean", a.mean, b.mean),
        ("std", a.std(), b.std()),
        ("mr_bar", mr_bar(a.n, stored.mr_sum), mr_bar(b.n, expected.mr_sum)),
    ):
        if not _close(x, y, scale):
            found.append((figure, x, y))
    if ends and (stored.first, stored.last) != (expected.first, expected.last):
        found.append(("first and last points", (stored.first, stored.last), (expected.first, expected.last)))
    return found


def _close(x: float | None, y: float | None, scale: float) -> bool:
    if x is None or y is None:
        return x is y
    # Relative to the figure, with a floor relative to the values' magnitude (a spread of ~0).
    return math.isclose(x, y, rel_tol=RELATIVE_TOLERANCE, abs_tol=RELATIVE_TOLERANCE * 1e-3 * scale)
