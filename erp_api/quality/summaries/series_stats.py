"""Exact, mergeable statistics of a stretch of a measurement series: what the rollups store, how two
stretches combine, and the figures a summary derives from them. Pure Python, no I/O.

Choices, and why:

- **Spread as (n, mean, M2)**, M2 being the sum of squared deviations from the mean, combined with
  Chan, Golub and LeVeque's parallel formula (``Moments.merge``), rather than as (n, Σx, Σx²). Sums of
  squares cancel catastrophically when values are large next to their spread (25.000 ± 0.002 mm, or
  1e6 ± 0.01): Σx² - (Σx)²/n then keeps few or no correct digits. Chan's merge only ever adds
  non-negative terms, so it keeps nearly full precision however many stretches are merged. The share
  of points that leave (a void, a retention delete) is never subtracted: taking a large value out
  leaves the rest with that value's rounding error. The stretch is merged again from its parts
  instead (``erp_api.quality.summaries.rollups``).
- **Moving range** of the individuals chart: per stretch, the sum of |x_i - x_{i-1}| over consecutive
  points within it, and its first and last point. Two adjacent stretches merge exactly by adding one
  term, |first of the later - last of the earlier| (``Segment.then``). A stretch of n points has n - 1
  ranges, so only the sum is stored and MR-bar = sum / (n - 1). A point inserted between two others
  replaces one range by two that are together at least as long (the triangle inequality), so updating
  the sum by the difference never cancels.
- **Order** is the series order everywhere: (measured_at, id), so equal timestamps still have one order.
- **Out of spec**: a count against the spec limits in force; the rollups recount it when the limits
  change (``erp_api.quality.summaries.rollups``), so reads never look at raw rows for it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from erp_api.quality.spc.chart import D2

Key = tuple[datetime, int]
"""Where a point sits in its series: (measured_at, id)."""
Limits = tuple[float | None, float | None]
"""(lsl, usl) of a series; either may be None."""

NO_LIMITS: Limits = (None, None)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hour_of(measured_at: datetime) -> int:
    """The hour a measurement belongs to: whole hours since 1970-01-01 00:00 UTC (floor)."""
    # Exact, and cheaper than dividing by a timedelta: a timedelta's seconds are in [0, 86400).
    since = measured_at - EPOCH
    return since.days * 24 + since.seconds // 3600


def hour_start(hour: int) -> datetime:
    return EPOCH + timedelta(hours=hour)


PERIOD_HOURS = {"hour": 1, "day": 24, "week": 168}
# Periods count from an origin hour: weeks start on Monday 00:00 UTC (ISO 8601), and the first
# Monday after the epoch, 1970-01-05, is hour 96.
PERIOD_ORIGIN = {"hour": 0, "day": 0, "week": 96}


def periods_covering(start: datetime, end: datetime, period: str) -> tuple[int, int]:
    """The periods (first index, end index exclusive) that [start, end) touches: whole periods, the
    first starting at or before ``start``, the last ending at or after ``end``."""
    length = timedelta(hours=PERIOD_HOURS[period])
    origin = EPOCH + timedelta(hours=PERIOD_ORIGIN[period])
    first = (start - origin) // length
    last, rest = divmod(end - origin, length)
    return first, last + (1 if rest else 0)


def period_start(index: int, period: str) -> datetime:
    return hour_start(index * PERIOD_HOURS[period] + PERIOD_ORIGIN[period])


def is_outside(value: float, limits: Limits) -> bool:
    lsl, usl = limits
    return (lsl is not None and value < lsl) or (usl is not None and value > usl)


@dataclass(frozen=True, slots=True)
class Point:
    """One non-voided point of a series."""

    measured_at: datetime
    id: int
    value: float

    @property
    def key(self) -> Key:
        return (self.measured_at, self.id)


@dataclass(frozen=True, slots=True)
class Moments:
    """Order-free statistics of some points: count, mean, M2, extremes, and how many are out of spec."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float | None = None
    max: float | None = None
    out_of_spec: int = 0

    @classmethod
    def of(cls, values: Sequence[float], limits: Limits = NO_LIMITS) -> Moments:
        if not values:
            return EMPTY
        n = len(values)
        mean = math.fsum(values) / n
        m2 = math.fsum((value - mean) ** 2 for value in values)
        outside = sum(1 for value in values if is_outside(value, limits))
        return cls(n, mean, m2, min(values), max(values), outside)

    def merge(self, other: Moments) -> Moments:
        """The statistics of both sets of points together (Chan et al.)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        return Moments(
            n,
            mean,
            m2,
            _lesser(self.min, other.min),
            _greater(self.max, other.max),
            self.out_of_spec + other.out_of_spec,
        )

    def std(self) -> float | None:
        """Sample standard deviation (n - 1); exactly 0 for constant data, as the SPC engine has it."""
        if self.n < 2:
            return None
        if self.min == self.max:
            return 0.0
        return math.sqrt(self.m2 / (self.n - 1))


EMPTY = Moments()


@dataclass(frozen=True, slots=True)
class Segment:
    """Statistics of consecutive points of a series: moments, the moving-range sum, first and last."""

    moments: Moments
    mr_sum: float = 0.0
    first: Point | None = None
    last: Point | None = None

    @property
    def n(self) -> int:
        return self.moments.n

    @classmethod
    def of(cls, points: Sequence[Point], limits: Limits = NO_LIMITS) -> Segment:
        """From points in series order."""
        if not points:
            return NOTHING
        values = [point.value for point in points]
        return cls(Moments.of(values, limits), moving_range_sum(values), points[0], points[-1])

    def then(self, later: Segment) -> Segment:
        """This stretch followed by ``later``, which comes entirely after it in the series."""
        if later.n == 0:
            return self
        if self.n == 0:
            return later
        assert self.last is not None and later.first is not None
        return Segment(
            self.moments.merge(later.moments),
            self.mr_sum + later.mr_sum + abs(later.first.value - self.last.value),
            self.first,
            later.last,
        )

    def mr_bar(self) -> float | None:
        return mr_bar(self.n, self.mr_sum)


NOTHING = Segment(EMPTY)


def moving_range_sum(values: Sequence[float]) -> float:
    return math.fsum(abs(b - a) for a, b in itertools.pairwise(values))


def mr_bar(n: int, mr_sum: float) -> float | None:
    """The mean moving range of n points: their n - 1 ranges' mean (None below two points)."""
    return None if n < 2 else max(mr_sum, 0.0) / (n - 1)


def sigma_within(n: int, mr_sum: float) -> float | None:
    """The short-term sigma of an individuals chart: MR-bar / d2."""
    bar = mr_bar(n, mr_sum)
    return None if bar is None else bar / D2


def hourly(points: Iterable[Point], limits: Limits = NO_LIMITS) -> Iterator[tuple[int, Segment]]:
    """The hourly segments of points given in series order (what a rebuild stores)."""
    hour: int | None = None
    chunk: list[Point] = []
    for point in points:
        at = hour_of(point.measured_at)
        if at != hour and chunk:
            assert hour is not None
            yield hour, Segment.of(chunk, limits)
            chunk = []
        hour = at
        chunk.append(point)
    if chunk:
        assert hour is not None
        yield hour, Segment.of(chunk, limits)


def joined(segments: Iterable[Segment]) -> Segment:
    """Consecutive segments in series order, merged into one."""
    total = NOTHING
    for segment in segments:
        total = total.then(segment)
    return total


def _lesser(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _greater(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
