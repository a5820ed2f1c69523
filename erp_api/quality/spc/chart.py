"""Individuals (X) and moving-range (MR) control chart: input validation, limits and zones.

The chart follows the NIST/SEMATECH e-Handbook, section 6.3.2.2: centre = mean, MR-bar = mean of
|x[i] - x[i-1]|, sigma = MR-bar / d2 with d2 = 1.128, limits = centre +/- 3 sigma, and the MR chart's
upper limit D4 * MR-bar with D4 = 3.267 (the constants for moving ranges of two points).

Every zone boundary used anywhere in SPC (limits, zones, rules) comes from :func:`zone_line`, so a
point drawn exactly on a line is classified the same way by the chart and by the rules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

D2 = 1.128
D4 = 3.267

FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
Values: TypeAlias = Sequence[float] | npt.NDArray[np.floating[Any]]

Zone = Literal["C", "B", "A", "beyond"]
Side = Literal["upper", "lower", "center"]
_ZONE_NAMES: tuple[Zone, ...] = ("C", "B", "A", "beyond")


def as_series(values: Values) -> FloatArray:
    """Return ``values`` as a one-dimensional float64 array; raise ``ValueError`` if any is not finite."""
    series = np.asarray(values, dtype=np.float64)
    if series.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {series.shape}")
    if not np.isfinite(series).all():
        raise ValueError("values must be finite (no NaN or infinity)")
    return series


def check_center_sigma(center: float, sigma: float) -> None:
    """Raise ``ValueError`` unless ``center`` is finite and ``sigma`` is finite and >= 0."""
    if not math.isfinite(center):
        raise ValueError("center must be finite")
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError("sigma must be finite and >= 0")


def finite_or_none(value: float | None) -> float | None:
    """Return ``value`` as a float, or ``None`` when it is missing, NaN or infinite (JSON-safe)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def zone_line(center: float, sigma: float, k: int) -> tuple[float, float]:
    """Return the (lower, upper) lines at ``k`` sigmas: ``center - k*sigma`` and ``center + k*sigma``.

    "Beyond k sigma" means strictly above the upper or strictly below the lower line; "within k sigma" means
    between them, lines included. For ``k = 0`` both lines are the centre line.
    """
    return center - k * sigma, center + k * sigma


@dataclass(frozen=True, slots=True)
class Baseline:
    """Known process centre and sigma (e.g. from a reference period) used instead of the data's own."""

    center: float
    sigma: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.center):
            raise ValueError("baseline center must be finite")
        if not math.isfinite(self.sigma) or self.sigma <= 0:
            raise ValueError("baseline sigma must be finite and > 0")


@dataclass(frozen=True, slots=True)
class ControlLimits:
    """Lines of an individuals chart and its moving-range chart; ``None`` where undefined."""

    n: int
    center: float | None
    sigma: float | None
    ucl: float | None
    lcl: float | None
    mr_bar: float | None
    mr_ucl: float | None


def moving_range_mean(series: FloatArray) -> float | None:
    """MR-bar, the mean of |x[i] - x[i-1]|; ``None`` for fewer than two points."""
    if series.size < 2:
        return None
    with np.errstate(over="ignore"):
        return finite_or_none(float(np.mean(np.abs(np.diff(series)))))


def series_mean(series: FloatArray) -> float | None:
    """The mean; exactly the common value for constant data, ``None`` for no points.

    A floating-point mean of n equal values can miss the value by an ulp, which would put every
    point of a constant series on one side of its own centre line.
    """
    if series.size == 0:
        return None
    if series.min() == series.max():
        return float(series[0])
    with np.errstate(over="ignore"):
        return finite_or_none(float(np.mean(series)))


def individuals_limits(values: Values, baseline: Baseline | None = None) -> ControlLimits:
    """Compute the individuals and moving-range chart lines for ``values`` (in measurement order).

    Without a baseline: centre = mean, sigma = MR-bar / 1.128 (0 for constant data, ``None`` for
    n < 2). With a baseline its centre and sigma are used instead. MR-bar and the MR chart's
    UCL = 3.267 * MR-bar always describe the observed moving ranges (``None`` for n < 2).
    UCL/LCL = centre +/- 3 sigma whenever sigma is known.
    """
    series = as_series(values)
    mr_bar = moving_range_mean(series)
    center: float | None
    sigma: float | None
    if baseline is not None:
        center, sigma = baseline.center, baseline.sigma
    else:
        center = series_mean(series)
        sigma = None if mr_bar is None else mr_bar / D2
    lcl = ucl = None
    if center is not None and sigma is not None:
        lcl, ucl = zone_line(center, sigma, 3)
    return ControlLimits(
        n=int(series.size),
        center=finite_or_none(center),
        sigma=finite_or_none(sigma),
        ucl=finite_or_none(ucl),
        lcl=finite_or_none(lcl),
        mr_bar=mr_bar,
        mr_ucl=None if mr_bar is None else finite_or_none(D4 * mr_bar),
    )


class PointZone(NamedTuple):
    """Where a point lies: its zone band and which side of the centre line it is on."""

    zone: Zone
    side: Side


def zone_levels(series: FloatArray, center: float, sigma: float) -> npt.NDArray[np.intp]:
    """Number of sigma-lines each point lies beyond: 0 = C, 1 = B, 2 = A, 3 = beyond 3 sigma."""
    levels = np.zeros(series.size, dtype=np.intp)
    for k in (1, 2, 3):
        lower, upper = zone_line(center, sigma, k)
        levels += (series > upper) | (series < lower)
    return levels


def classify_zones(values: Values, center: float, sigma: float) -> list[PointZone]:
    """Classify each point for drawing the chart.

    Zones: ``"C"`` within 1 sigma, ``"B"`` beyond 1 and within 2 sigma, ``"A"`` beyond 2 and within
    3 sigma, ``"beyond"`` beyond 3 sigma ("beyond" strict, "within" inclusive, as in the rules).
    Side: ``"upper"`` above the centre line, ``"lower"`` below it, ``"center"`` exactly on it.
    With sigma = 0 the bands have no width: a point on the centre is in C, any other is beyond.
    """
    series = as_series(values)
    check_center_sigma(center, sigma)
    sides: list[Side] = np.where(
        series > center, "upper", np.where(series < center, "lower", "center")
    ).tolist()
    levels: list[int] = zone_levels(series, center, sigma).tolist()
    return [PointZone(_ZONE_NAMES[level], side) for level, side in zip(levels, sides, strict=True)]
