"""Attribute control charts: p, np (defectives) and c, u (defects), with per-point limits.

Conventions (Montgomery, chapter 7; NIST/SEMATECH 6.3.3; qcc ``limits.p`` etc.), d_i the defectives or
defects counted in sample i of size n_i:

- p chart: p_i = d_i / n_i, centre p-bar = sum d_i / sum n_i, sigma_i = sqrt(p-bar (1 - p-bar) / n_i).
- np chart (one sample size n for all): d_i, centre n p-bar, sigma = sqrt(n p-bar (1 - p-bar)).
- c chart (equal inspection units): c_i, centre c-bar = mean c_i, sigma = sqrt(c-bar).
- u chart: u_i = c_i / n_i, centre u-bar = sum c_i / sum n_i, sigma_i = sqrt(u-bar / n_i).
- Limits centre +/- 3 sigma_i; the LCL is floored at 0, and the UCL of a p chart capped at 1 (of an np
  chart at n), so no line lies where no count can. A point beyond a floored or capped line is beyond
  the unfloored one too, so the cap changes no verdict.
- A known standard (p0, c0 or u0, e.g. from a phase I study) replaces the centre estimate.
- Rules: beyond the limits always. With constant limits (np, c, and p or u with equal sizes) the whole
  rule set runs against the centre and sigma (the normal approximation of the count); with limits
  that vary (p, u with unequal sizes) only beyond the limits and the rules that use no zone (N2, N3, N4,
  WE4): the zone rules need zones of a fixed width.

Counts must be whole numbers >= 0 (at most n_i for defectives); sizes whole numbers >= 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from erp_api.quality.spc.chart import FloatArray, Values, as_series
from erp_api.quality.spc.chart_result import (
    Chart,
    ChartName,
    SigmaMethod,
    assemble_chart,
    build_points,
    check_rule_set,
    constant,
    limit_lines,
    location_flags,
    point_labels,
)
from erp_api.quality.spc.rules import RuleSet

Sizes = Values | int


def p_chart(
    defectives: Values,
    sizes: Sizes,
    *,
    labels: Sequence[str] | None = None,
    standard: float | None = None,
    rules: RuleSet = "nelson",
) -> list[Chart]:
    """``[p chart]``: the fraction defective of each sample, limits per sample size."""
    counts, n = _counts_and_sizes(defectives, sizes, bounded=True)
    center = _standard(standard, upper=1.0) if standard is not None else _ratio(counts, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = counts / n
    sigmas = np.sqrt(center * (1 - center) / n) if center is not None else None
    return [
        _chart(
            "p",
            values,
            sizes=n,
            center=center,
            sigmas=sigmas,
            cap=1.0,
            labels=labels,
            rules=rules,
            standard=standard,
            model="binomial",
        )
    ]


def np_chart(
    defectives: Values,
    size: int,
    *,
    labels: Sequence[str] | None = None,
    standard: float | None = None,
    rules: RuleSet = "nelson",
) -> list[Chart]:
    """``[np chart]``: the number defective of samples that all have ``size`` items."""
    counts, n = _counts_and_sizes(defectives, size, bounded=True)
    fraction = _standard(standard, upper=1.0) if standard is not None else _ratio(counts, n)
    center = None if fraction is None else size * fraction
    sigmas = None if fraction is None else np.full(counts.size, np.sqrt(size * fraction * (1 - fraction)))
    return [
        _chart(
            "np",
            counts,
            sizes=n,
            center=center,
            sigmas=sigmas,
            cap=float(size),
            labels=labels,
            rules=rules,
            standard=standard,
            model="binomial",
        )
    ]


def c_chart(
    defects: Values,
    *,
    labels: Sequence[str] | None = None,
    standard: float | None = None,
    rules: RuleSet = "nelson",
) -> list[Chart]:
    """``[c chart]``: the number of defects per sample, samples of equal opportunity."""
    counts = _whole(as_series(defects), "defects")
    center = _standard(standard) if standard is not None else (float(counts.mean()) if counts.size else None)
    sigmas = None if center is None else np.full(counts.size, np.sqrt(center))
    return [
        _chart(
            "c",
            counts,
            sizes=None,
            center=center,
            sigmas=sigmas,
            cap=None,
            labels=labels,
            rules=rules,
            standard=standard,
            model="poisson",
        )
    ]


def u_chart(
    defects: Values,
    sizes: Sizes,
    *,
    labels: Sequence[str] | None = None,
    standard: float | None = None,
    rules: RuleSet = "nelson",
) -> list[Chart]:
    """``[u chart]``: defects per inspection unit, limits per sample size."""
    counts, n = _counts_and_sizes(defects, sizes, bounded=False)
    center = _standard(standard) if standard is not None else _ratio(counts, n)
    values = counts / n
    sigmas = None if center is None else np.sqrt(center / n)
    return [
        _chart(
            "u",
            values,
            sizes=n,
            center=center,
            sigmas=sigmas,
            cap=None,
            labels=labels,
            rules=rules,
            standard=standard,
            model="poisson",
        )
    ]


def _chart(
    name: ChartName,
    values: FloatArray,
    *,
    sizes: FloatArray | None,
    center: float | None,
    sigmas: FloatArray | None,
    labels: Sequence[str] | None,
    rules: RuleSet,
    standard: float | None,
    model: SigmaMethod,
    cap: float | None,
) -> Chart:
    check_rule_set(rules)
    names = point_labels(labels, values.size)
    size_list: list[int | None] = [None] * values.size if sizes is None else [int(n) for n in sizes.tolist()]
    method: SigmaMethod = "baseline" if standard is not None else model
    parameters = {} if standard is None else {"standard": standard}
    if center is None or sigmas is None:
        points = build_points(names, values, sizes=size_list, centers=None, ucls=None, lcls=None, flags={})
        return assemble_chart(name, points, zone_sigma=None, process_sigma=None, sigma_method=None, rules=[])
    lcl, ucl = limit_lines(center, sigmas)
    lcl = np.maximum(lcl, 0.0)
    if cap is not None:
        ucl = np.minimum(ucl, cap)
    zone_sigma = constant(sigmas)
    flags = location_flags(
        values, center, sigmas, ucl=ucl, lcl=lcl, rules=rules, zones=zone_sigma is not None
    )
    points = build_points(names, values, sizes=size_list, centers=center, ucls=ucl, lcls=lcl, flags=flags)
    return assemble_chart(
        name,
        points,
        zone_sigma=zone_sigma,
        process_sigma=None,
        sigma_method=method,
        rules=list(flags),
        parameters=parameters,
    )


def _whole(values: FloatArray, what: str) -> FloatArray:
    if values.size and (values.min() < 0 or not np.array_equal(values, np.floor(values))):
        raise ValueError(f"{what} must be whole numbers >= 0")
    return values


def _counts_and_sizes(counts: Values, sizes: Sizes, *, bounded: bool) -> tuple[FloatArray, FloatArray]:
    series = _whole(as_series(counts), "defectives" if bounded else "defects")
    n = as_series(np.full(series.size, sizes, dtype=np.float64) if isinstance(sizes, int) else sizes)
    if n.size != series.size:
        raise ValueError(f"got {n.size} sample sizes for {series.size} samples")
    if n.size and (n.min() < 1 or not np.array_equal(n, np.floor(n))):
        raise ValueError("sample sizes must be whole numbers >= 1")
    if bounded and (series > n).any():
        raise ValueError("a sample cannot have more defectives than items")
    return series, n


def _ratio(counts: FloatArray, sizes: FloatArray) -> float | None:
    """sum counts / sum sizes: equal to every count / size exactly when they are all the same ratio."""
    return float(counts.sum() / sizes.sum()) if counts.size else None


def _standard(value: float, upper: float | None = None) -> float:
    if not np.isfinite(value) or value <= 0 or (upper is not None and value >= upper):
        bound = f" and < {upper:g}" if upper is not None else ""
        raise ValueError(f"the standard must be finite, > 0{bound}")
    return float(value)
