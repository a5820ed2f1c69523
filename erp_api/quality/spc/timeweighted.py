"""Time-weighted charts of individual values: EWMA and the tabular CUSUM.

Both chart x_1..x_n against a target mu0 and a sigma: the baseline's centre and sigma when given,
otherwise the data's mean and sigma = MR-bar / d2(2) (the individuals chart's estimates, see
:func:`~erp_api.quality.spc.chart.individuals_limits`). Without a sigma (n < 2, no baseline) the EWMA
has no limits and no signals, and there is no CUSUM (k and h are in sigma units): its charts have no
points. With sigma = 0 (constant data) the limits have no width and nothing signals.

EWMA (NIST/SEMATECH 6.3.2.4; Montgomery 9.2): z_0 = mu0, z_i = lambda x_i + (1 - lambda) z_{i-1}, with
the exact time-varying limits mu0 +/- L sigma sqrt(lambda / (2 - lambda) (1 - (1 - lambda)^(2i))),
which approach the asymptotic mu0 +/- L sigma sqrt(lambda / (2 - lambda)). Rule "EWMA": z_i strictly
beyond its limits. 0 < lambda <= 1 (lambda = 1 is the individuals chart), L > 0.

Tabular CUSUM (NIST/SEMATECH 6.3.2.3; Montgomery 9.1), k and h in sigma units, K = k sigma,
H = h sigma: C+_0 = C-_0 = 0, C+_i = max(0, x_i - (mu0 + K) + C+_{i-1}),
C-_i = max(0, (mu0 - K) - x_i + C-_{i-1}). Two charts, ``cusum_upper`` (C+) and ``cusum_lower`` (C-),
both plotted as non-negative values against the decision interval H; rule "CUSUM": C strictly above H.
k >= 0, h > 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate
from typing import Literal

import numpy as np

from erp_api.quality.spc.chart import (
    D2,
    Baseline,
    BoolArray,
    FloatArray,
    Values,
    as_series,
    finite_or_none,
    moving_range_mean,
    series_mean,
)
from erp_api.quality.spc.chart_result import (
    Chart,
    Point,
    SigmaMethod,
    assemble_chart,
    beyond_limits,
    build_points,
    point_labels,
)

TimeWeighted = Literal["ewma", "cusum_upper", "cusum_lower"]
EWMA_RULE = "EWMA"
CUSUM_RULE = "CUSUM"
_CUSUM_NAMES: tuple[TimeWeighted, TimeWeighted] = ("cusum_upper", "cusum_lower")


def target_and_sigma(series: FloatArray, baseline: Baseline | None) -> tuple[float | None, float | None]:
    """(mu0, sigma): the baseline's, or the mean and MR-bar / d2 of ``series`` (``None`` where undefined)."""
    if baseline is not None:
        return float(baseline.center), float(baseline.sigma)
    mr_bar = moving_range_mean(series)
    return series_mean(series), None if mr_bar is None else finite_or_none(mr_bar / D2)


def ewma_chart(
    values: Values,
    *,
    lam: float = 0.2,
    L: float = 3.0,
    labels: Sequence[str] | None = None,
    baseline: Baseline | None = None,
) -> list[Chart]:
    """``[EWMA chart]`` of ``values`` in time order (see the module docstring)."""
    if not (math.isfinite(lam) and 0 < lam <= 1):
        raise ValueError("lambda must be in (0, 1]")
    if not (math.isfinite(L) and L > 0):
        raise ValueError("L must be finite and > 0")
    series = as_series(values)
    names = point_labels(labels, series.size)
    center, sigma = target_and_sigma(series, baseline)
    parameters = {"lambda": lam, "L": L}
    sizes: list[int | None] = [1] * series.size
    if center is None or sigma is None:
        points = build_points(names, series, sizes=sizes, centers=center, ucls=None, lcls=None, flags={})
        return [_chart("ewma", points, sigma=None, baseline=baseline, rules=[], parameters=parameters)]
    with np.errstate(over="ignore", invalid="ignore"):
        smoothed = np.fromiter(
            accumulate(series.tolist(), lambda z, x: lam * x + (1 - lam) * z, initial=center),
            dtype=np.float64,
            count=series.size + 1,
        )[1:]
        steps = np.arange(1, series.size + 1)
        widths = L * sigma * np.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * steps)))
        ucl, lcl = center + widths, center - widths
    flags: dict[str, BoolArray] = {EWMA_RULE: beyond_limits(smoothed, ucl, lcl)}
    asymptote = L * sigma * math.sqrt(lam / (2 - lam))
    parameters |= {"asymptotic_ucl": center + asymptote, "asymptotic_lcl": center - asymptote}
    points = build_points(names, smoothed, sizes=sizes, centers=center, ucls=ucl, lcls=lcl, flags=flags)
    return [_chart("ewma", points, sigma=sigma, baseline=baseline, rules=[EWMA_RULE], parameters=parameters)]


def cusum_charts(
    values: Values,
    *,
    k: float = 0.5,
    h: float = 5.0,
    labels: Sequence[str] | None = None,
    baseline: Baseline | None = None,
) -> list[Chart]:
    """``[C+ chart, C- chart]`` of the tabular CUSUM of ``values`` (see the module docstring)."""
    if not (math.isfinite(k) and k >= 0):
        raise ValueError("k must be finite and >= 0")
    if not (math.isfinite(h) and h > 0):
        raise ValueError("h must be finite and > 0")
    series = as_series(values)
    names = point_labels(labels, series.size)
    target, sigma = target_and_sigma(series, baseline)
    parameters = {"k": k, "h": h}
    sizes: list[int | None] = [1] * series.size
    if target is None or sigma is None:
        # K and H are in sigma units: without a sigma there is no CUSUM to plot.
        return [
            _chart(name, [], sigma=None, baseline=baseline, rules=[], parameters=parameters)
            for name in _CUSUM_NAMES
        ]
    slack, interval = k * sigma, h * sigma
    parameters |= {"target": target, "K": slack, "H": interval}
    with np.errstate(over="ignore", invalid="ignore"):
        upper = _cusum(series - (target + slack))
        lower = _cusum((target - slack) - series)
    charts = []
    for name, sums in zip(_CUSUM_NAMES, (upper, lower), strict=True):
        limit = np.full(sums.size, interval)
        flags: dict[str, BoolArray] = {CUSUM_RULE: beyond_limits(sums, limit, np.zeros(sums.size))}
        points = build_points(names, sums, sizes=sizes, centers=0.0, ucls=interval, lcls=None, flags=flags)
        charts.append(
            _chart(name, points, sigma=sigma, baseline=baseline, rules=[CUSUM_RULE], parameters=parameters)
        )
    return charts


def _cusum(increments: FloatArray) -> FloatArray:
    """C_i = max(0, C_{i-1} + increment_i), C_0 = 0."""
    sums = accumulate(increments.tolist(), lambda total, step: max(0.0, total + step), initial=0.0)
    return np.fromiter(sums, dtype=np.float64, count=increments.size + 1)[1:]


def _chart(
    name: TimeWeighted,
    points: list[Point],
    *,
    sigma: float | None,
    baseline: Baseline | None,
    rules: list[str],
    parameters: dict[str, float],
) -> Chart:
    method: SigmaMethod | None = None if sigma is None else ("baseline" if baseline is not None else "mr_bar")
    return assemble_chart(
        name,
        points,
        zone_sigma=None,
        process_sigma=sigma,
        sigma_method=method,
        rules=rules,
        parameters=parameters,
    )
