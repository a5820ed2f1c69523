"""The individuals (X) and moving-range (MR) charts as :class:`~erp_api.quality.spc.chart_result.Chart`.

The lines are those of :func:`~erp_api.quality.spc.chart.individuals_limits` (NIST/SEMATECH 6.3.2.2):
X chart centre +/- 3 sigma with sigma = MR-bar / d2(2), or the baseline's; the MR chart's centre MR-bar
and UCL = D4(2) * MR-bar = 3.267 * MR-bar, LCL = D3(2) * MR-bar = 0. As in that module the MR chart always
describes the observed moving ranges, even with a baseline.

The whole rule set runs on the X chart; beyond the limits (N1 / WE1) on the MR chart. The MR chart has
one point per moving range, n - 1 in all, each labelled with the later of its two measurements.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from erp_api.quality.spc.chart import Baseline, BoolArray, Values, as_series, individuals_limits
from erp_api.quality.spc.chart_result import (
    Chart,
    build_points,
    check_rule_set,
    dispersion_flags,
    location_flags,
    point_labels,
)
from erp_api.quality.spc.rules import RuleSet


def individuals_charts(
    values: Values,
    *,
    labels: Sequence[str] | None = None,
    baseline: Baseline | None = None,
    rules: RuleSet = "nelson",
) -> list[Chart]:
    """``[X chart, MR chart]`` for ``values`` in measurement order (see the module docstring)."""
    check_rule_set(rules)
    series = as_series(values)
    names = point_labels(labels, series.size)
    limits = individuals_limits(series, baseline)
    center, sigma, ucl, lcl = limits.center, limits.sigma, limits.ucl, limits.lcl
    x_flags: dict[str, BoolArray] = {}
    if center is not None and sigma is not None and ucl is not None and lcl is not None:
        sigmas = np.full(series.size, sigma)
        x_flags = location_flags(
            series,
            center,
            sigmas,
            ucl=np.full(series.size, ucl),
            lcl=np.full(series.size, lcl),
            rules=rules,
        )
    x_chart = Chart(
        name="individuals",
        center=center,
        ucl=ucl,
        lcl=lcl,
        zone_sigma=sigma,
        process_sigma=sigma,
        sigma_method=None if sigma is None else ("baseline" if baseline is not None else "mr_bar"),
        rules=list(x_flags),
        points=build_points(
            names, series, sizes=[1] * series.size, centers=center, ucls=ucl, lcls=lcl, flags=x_flags
        ),
    )
    with np.errstate(over="ignore", invalid="ignore"):
        ranges = np.abs(np.diff(series)) if series.size >= 2 else np.zeros(0)
    mr_bar, mr_ucl = limits.mr_bar, limits.mr_ucl
    mr_lcl = None if mr_bar is None else 0.0
    mr_flags: dict[str, BoolArray] = {}
    if mr_ucl is not None and mr_lcl is not None:
        size = ranges.size
        mr_flags = dispersion_flags(ranges, np.full(size, mr_ucl), np.full(size, mr_lcl), rules)
    mr_chart = Chart(
        name="mr",
        center=mr_bar,
        ucl=mr_ucl,
        lcl=mr_lcl,
        zone_sigma=None,
        process_sigma=sigma,
        sigma_method=x_chart.sigma_method,
        rules=list(mr_flags),
        points=build_points(
            names[1:],
            ranges,
            sizes=[2] * ranges.size,
            centers=mr_bar,
            ucls=mr_ucl,
            lcls=mr_lcl,
            flags=mr_flags,
        ),
    )
    return [x_chart, mr_chart]
