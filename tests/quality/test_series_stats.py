"""The statistics the rollups store: merging stretches of a series gives the figures of the whole."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erp_api.quality.summaries.series_stats import (
    Moments,
    Point,
    Segment,
    hour_of,
    hour_start,
    hourly,
    joined,
    period_start,
    periods_covering,
)

T0 = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
values = st.lists(st.integers(-1000, 1000).map(lambda k: 1e6 + k / 64), min_size=1, max_size=60)


def _points(series: list[float], step: timedelta = timedelta(minutes=7)) -> list[Point]:
    return [Point(T0 + i * step, i + 1, value) for i, value in enumerate(series)]


@settings(max_examples=200, deadline=None)
@given(series=values, cuts=st.lists(st.integers(0, 60), max_size=5))
def test_adjacent_stretches_merge_into_the_figures_of_the_whole(series: list[float], cuts: list[int]) -> None:
    points = _points(series)
    bounds = [0, *sorted(min(cut, len(points)) for cut in cuts), len(points)]
    merged = joined(Segment.of(points[a:b], (1e6 - 5, 1e6 + 5)) for a, b in itertools.pairwise(bounds))
    m = merged.moments
    assert (m.n, m.min, m.max) == (len(series), min(series), max(series))
    assert m.out_of_spec == sum(abs(v - 1e6) > 5 for v in series)
    assert m.mean == pytest.approx(statistics.mean(series), rel=1e-12)
    if len(series) > 1:
        assert m.std() == pytest.approx(statistics.stdev(series), rel=1e-9, abs=1e-9)
        ranges = [abs(b - a) for a, b in itertools.pairwise(series)]
        assert merged.mr_bar() == pytest.approx(statistics.mean(ranges), rel=1e-9, abs=1e-12)
    assert (merged.first, merged.last) == (points[0], points[-1])


def test_constant_data_has_a_standard_deviation_of_exactly_zero() -> None:
    assert Moments.of([0.1] * 7).merge(Moments.of([0.1] * 5)).std() == 0.0


def test_hourly_cuts_a_series_at_utc_hours_in_series_order() -> None:
    points = _points([1.0, 2.0, 3.0, 4.0, 5.0], step=timedelta(minutes=25))
    hours = list(hourly(points))
    assert [(hour_start(hour), segment.n) for hour, segment in hours] == [
        (T0, 3),
        (T0 + timedelta(hours=1), 2),
    ]
    assert hour_of(T0 - timedelta(microseconds=1)) == hour_of(T0) - 1


@pytest.mark.parametrize(
    ("start", "end", "period", "bounds"),
    [
        (T0 + timedelta(minutes=5), T0 + timedelta(hours=2), "hour", (T0, T0 + timedelta(hours=2))),
        (T0, T0 + timedelta(hours=2, seconds=1), "hour", (T0, T0 + timedelta(hours=3))),
        (
            T0,
            T0 + timedelta(hours=20),
            "day",
            (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC)),
        ),
        # 2026-04-01 is a Wednesday; ISO weeks start on Monday.
        (
            T0,
            T0 + timedelta(days=6),
            "week",
            (datetime(2026, 3, 30, tzinfo=UTC), datetime(2026, 4, 13, tzinfo=UTC)),
        ),
    ],
)
def test_periods_are_whole_and_cover_the_range(
    start: datetime, end: datetime, period: str, bounds: tuple[datetime, datetime]
) -> None:
    first, last = periods_covering(start, end, period)
    assert (period_start(first, period), period_start(last, period)) == bounds
