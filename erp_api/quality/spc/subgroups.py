"""X-bar/R and X-bar/S charts for subgroups of possibly varying size.

Conventions, following qcc (``stats.xbar``, ``sd.xbar``, ``limits.xbar``, ``stats.R``, ``limits.R``,
``stats.S``, ``limits.S``) unless a baseline is given; k subgroups, subgroup i of n_i values:

- Statistics: x-bar_i the mean, R_i = max - min, S_i the sample standard deviation (n_i - 1 in the
  denominator; exactly 0 for a constant subgroup). Every n_i >= 2; X-bar/R needs n_i <= 25 (the d2/d3
  table of :mod:`~erp_api.quality.spc.constants`), X-bar/S takes any size (c4 is exact).
- Sigma of single values: X-bar/R uses qcc's default "UWAVE-R", sigma = (1/k) sum R_i / d2(n_i), which
  is R-bar / d2 for equal sizes; X-bar/S uses "UWAVE-SD", sigma = (1/k) sum S_i / c4(n_i), S-bar / c4
  for equal sizes.
- X-bar chart: centre = sum n_i x-bar_i / sum n_i (the grand mean of all values; exactly the common mean
  when every subgroup has the same mean); limits centre +/- 3 sigma / sqrt(n_i), which for equal sizes
  is centre +/- A2 R-bar (A3 S-bar) with the unrounded A2 = 3 / (d2 sqrt n) (A3 = 3 / (c4 sqrt n)).
- R chart: centre = sum n_i R_i / sum n_i (R-bar for equal sizes); limits centre +/- 3 d3(n_i) sigma,
  the LCL floored at 0; for equal sizes these are D3 R-bar and D4 R-bar with the unrounded
  D4 = 1 + 3 d3 / d2.
- S chart: centre = sum n_i S_i / sum n_i (S-bar for equal sizes); limits centre +/- 3 sigma
  sqrt(1 - c4(n_i)^2), the LCL floored at 0 (B3 S-bar and B4 S-bar for equal sizes).
- A phase I baseline (centre, sigma) replaces the X-bar centre and sigma; the R and S charts then use
  the standard-given lines of Montgomery (section 6.2): R centre d2(n_i) sigma with limits
  (d2 +/- 3 d3) sigma, S centre c4(n_i) sigma with limits (c4 +/- 3 sqrt(1 - c4^2)) sigma, LCLs floored
  at 0.
- Rules: the rule set on the X-bar chart with zones from its own sigma / sqrt(n_i) (standardized
  when sizes vary, see :mod:`~erp_api.quality.spc.chart_result`); beyond the limits on R and S.
- No subgroups, or statistics beyond the floats (values near +/-1.8e308, whose sums overflow): the
  charts have their points (a statistic that overflowed is ``None``) but no lines and no rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Literal

import numpy as np

from erp_api.quality.spc.chart import Baseline, FloatArray, Values, as_series, finite_or_none
from erp_api.quality.spc.chart_result import (
    Chart,
    ChartName,
    SigmaMethod,
    assemble_chart,
    build_points,
    check_rule_set,
    constant,
    dispersion_flags,
    limit_lines,
    location_flags,
    point_labels,
)
from erp_api.quality.spc.constants import MAX_TABLE_SIZE, MIN_SIZE, IntArray, c4_of, d2_of, d3_of
from erp_api.quality.spc.rules import RuleSet

Dispersion = Literal["r", "s"]


@dataclass(frozen=True, slots=True)
class SubgroupStatistics:
    """Per-subgroup sizes, means, ranges and standard deviations, as arrays of length k."""

    sizes: IntArray
    means: FloatArray
    ranges: FloatArray
    sds: FloatArray


def subgroup_statistics(subgroups: Sequence[Values], *, max_size: int | None = None) -> SubgroupStatistics:
    """Validate ``subgroups`` (finite, each of ``MIN_SIZE``..``max_size`` values) and summarise each."""
    # One pass over all values (not one array per subgroup): thousands of subgroups stay cheap.
    try:
        sizes = np.fromiter((len(group) for group in subgroups), dtype=np.intp, count=len(subgroups))
        values = chain.from_iterable(subgroups)
        raw = np.fromiter(values, dtype=np.float64, count=int(sizes.sum()))
    except (TypeError, ValueError) as error:
        raise ValueError("every subgroup must be a one-dimensional sequence of numbers") from error
    flat = as_series(raw)
    if sizes.size and sizes.min() < MIN_SIZE:
        raise ValueError(f"every subgroup needs at least {MIN_SIZE} values")
    if max_size is not None and sizes.size and sizes.max() > max_size:
        raise ValueError(f"subgroups of more than {max_size} values need the X-bar/S chart")
    if not sizes.size:
        empty = np.zeros(0)
        return SubgroupStatistics(sizes=sizes, means=empty, ranges=empty, sds=empty)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    with np.errstate(over="ignore", invalid="ignore"):
        lows = np.minimum.reduceat(flat, starts)
        highs = np.maximum.reduceat(flat, starts)
        # A constant subgroup's mean is its value exactly; a float sum / n can miss it by an ulp.
        flat_group = lows == highs
        means = np.where(flat_group, lows, np.add.reduceat(flat, starts) / sizes)
        ranges = highs - lows
        squares = np.add.reduceat((flat - np.repeat(means, sizes)) ** 2, starts)
        sds = np.where(flat_group, 0.0, np.sqrt(squares / (sizes - 1)))
    return SubgroupStatistics(sizes=sizes, means=means, ranges=ranges, sds=sds)


def weighted_mean(values: FloatArray, weights: IntArray) -> float | None:
    """sum w_i v_i / sum w_i; exactly the common value when all are equal; ``None`` for no values."""
    if values.size == 0:
        return None
    common = constant(values)
    if common is not None:
        return common
    with np.errstate(over="ignore", invalid="ignore"):
        return finite_or_none(float(np.dot(weights, values) / weights.sum()))


def xbar_r_charts(
    subgroups: Sequence[Values],
    *,
    labels: Sequence[str] | None = None,
    baseline: Baseline | None = None,
    rules: RuleSet = "nelson",
) -> list[Chart]:
    """``[X-bar chart, R chart]`` of ``subgroups`` in time order (see the module docstring)."""
    return _charts(subgroups, "r", labels, baseline, rules)


def xbar_s_charts(
    subgroups: Sequence[Values],
    *,
    labels: Sequence[str] | None = None,
    baseline: Baseline | None = None,
    rules: RuleSet = "nelson",
) -> list[Chart]:
    """``[X-bar chart, S chart]`` of ``subgroups`` in time order (see the module docstring)."""
    return _charts(subgroups, "s", labels, baseline, rules)


def _charts(
    subgroups: Sequence[Values],
    dispersion: Dispersion,
    labels: Sequence[str] | None,
    baseline: Baseline | None,
    rules: RuleSet,
) -> list[Chart]:
    check_rule_set(rules)
    stats = subgroup_statistics(subgroups, max_size=MAX_TABLE_SIZE if dispersion == "r" else None)
    names = point_labels(labels, stats.sizes.size)
    sizes = stats.sizes
    spread = stats.ranges if dispersion == "r" else stats.sds
    # Expected value and standard deviation of the spread statistic, in units of sigma.
    unit_mean = d2_of(sizes) if dispersion == "r" else c4_of(sizes)
    unit_sd = d3_of(sizes) if dispersion == "r" else np.sqrt(1.0 - unit_mean**2)

    center: float | None
    sigma: float | None
    if baseline is not None:
        center, sigma = baseline.center, baseline.sigma
        spread_centers: FloatArray | None = unit_mean * sigma
    else:
        center = weighted_mean(stats.means, sizes)
        with np.errstate(over="ignore", invalid="ignore"):
            sigma = finite_or_none(float(np.mean(spread / unit_mean))) if sizes.size else None
        pooled = weighted_mean(spread, sizes)
        spread_centers = None if pooled is None else np.full(sizes.size, pooled)
    method: SigmaMethod = "baseline" if baseline is not None else ("r_bar" if dispersion == "r" else "s_bar")
    sizes_list: list[int | None] = [int(n) for n in sizes.tolist()]
    if center is None or sigma is None or spread_centers is None:
        # No subgroups, or statistics beyond the floats: the points without lines or rules.
        return [
            assemble_chart(
                name,
                build_points(names, stat, sizes=sizes_list, centers=None, ucls=None, lcls=None, flags={}),
                zone_sigma=None,
                process_sigma=None,
                sigma_method=None,
                rules=[],
            )
            for name, stat in zip(_chart_names(dispersion), (stats.means, spread), strict=True)
        ]
    sigmas = sigma / np.sqrt(sizes)
    xbar_lcl, xbar_ucl = limit_lines(center, sigmas)
    with np.errstate(over="ignore", invalid="ignore"):
        spread_ucl = spread_centers + 3 * unit_sd * sigma
        spread_lcl = np.maximum(0.0, spread_centers - 3 * unit_sd * sigma)
    xbar_flags = location_flags(stats.means, center, sigmas, ucl=xbar_ucl, lcl=xbar_lcl, rules=rules)
    spread_flags = dispersion_flags(spread, spread_ucl, spread_lcl, rules)
    xbar = build_points(
        names,
        stats.means,
        sizes=sizes_list,
        centers=center,
        ucls=xbar_ucl,
        lcls=xbar_lcl,
        flags=xbar_flags,
    )
    spreads = build_points(
        names,
        spread,
        sizes=sizes_list,
        centers=spread_centers,
        ucls=spread_ucl,
        lcls=spread_lcl,
        flags=spread_flags,
    )
    return [
        assemble_chart(
            "xbar",
            xbar,
            zone_sigma=constant(sigmas),
            process_sigma=sigma,
            sigma_method=method,
            rules=list(xbar_flags),
        ),
        assemble_chart(
            dispersion,
            spreads,
            zone_sigma=None,
            process_sigma=sigma,
            sigma_method=method,
            rules=list(spread_flags),
        ),
    ]


def _chart_names(dispersion: Dispersion) -> tuple[ChartName, ChartName]:
    return "xbar", dispersion
