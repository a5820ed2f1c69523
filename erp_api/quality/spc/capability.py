"""Process capability (Cp, Cpk) and performance (Pp, Ppk) indices of a series against spec limits.

Cp = (USL - LSL) / (6 s) and Cpk = min(USL - mean, mean - LSL) / (3 s) with the within-subgroup
(short-term) s = MR-bar / 1.128, the individuals chart's sigma; Pp and Ppk are the same with the sample
standard deviation (n - 1 in the denominator). They always describe the data itself, never a baseline.

:func:`capability_report` is the full study (Minitab's "Capability Analysis (Normal)"), conventions:

- sigma_within: with subgroups holding d = sum (n_i - 1) > 0 degrees of freedom, Minitab's pooled
  standard deviation sqrt(sum_i sum_j (x_ij - xbar_i)^2 / d) / c4(d + 1) (method "pooled_sd");
  otherwise (individual values, or subgroups of one) MR-bar / d2(2) over the values in order (method
  "moving_range"). sigma_overall: the sample standard deviation of all values (n - 1).
- Cp, Cpk, CPL, CPU from sigma_within; Pp, Ppk, PPL, PPU from sigma_overall; CPL = (mean - LSL) / 3s,
  CPU = (USL - mean) / 3s, Cpk = min of those defined. One spec limit: only its one-sided indices
  (Cp and Pp need both limits and are ``None``).
- Cpm (Minitab, with a target T): min over the given limits of (USL - T) / 3 tau and (T - LSL) / 3 tau,
  tau = sqrt(sum (x - T)^2 / (n - 1)); with T midway between two limits it is (USL - LSL) / 6 tau.
- 95 % intervals with n the number of values: Cp and Pp by the chi-square interval
  Cp sqrt(chi2_{0.025, n-1} / (n - 1)) .. Cp sqrt(chi2_{0.975, n-1} / (n - 1)); Cpk and Ppk by Bissell's
  (1990) normal approximation Cpk -/+ z_{0.975} sqrt(1 / (9n) + Cpk^2 / (2 (n - 1))) (as qcc).
- PPM (parts per million outside the limits): observed counts x < LSL and x > USL (a value on a limit
  is in spec); expected from a normal with the mean and sigma_within or sigma_overall.
- Normality: Anderson-Darling (:mod:`~erp_api.quality.spc.normality`); histogram:
  :mod:`~erp_api.quality.spc.histogram`.
- Warnings: ``too_few_points`` (n < 2: every figure is ``None``), ``n_below_30``, ``no_spec_limits``,
  ``one_sided``, ``zero_sigma`` (a sigma is 0: its indices and expected PPM are ``None``),
  ``not_normal`` (Anderson-Darling p < 0.05), ``rule_violations_present`` (the caller says the process
  is not in control, so the indices do not predict), ``target_outside_spec``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from erp_api.quality.spc.chart import (
    D2,
    FloatArray,
    Values,
    as_series,
    finite_or_none,
    moving_range_mean,
    series_mean,
)
from erp_api.quality.spc.constants import c4
from erp_api.quality.spc.distributions import chi2_ppf, normal_cdf, normal_ppf, normal_sf
from erp_api.quality.spc.histogram import Histogram, histogram
from erp_api.quality.spc.normality import AndersonDarling, anderson_darling

CONFIDENCE = 0.95
NOT_NORMAL_BELOW = 0.05
SigmaWithinMethod = Literal["pooled_sd", "moving_range"]
CapabilityWarning = Literal[
    "too_few_points",
    "n_below_30",
    "no_spec_limits",
    "one_sided",
    "zero_sigma",
    "not_normal",
    "rule_violations_present",
    "target_outside_spec",
]
# Warnings are listed in this order.
WARNINGS: tuple[CapabilityWarning, ...] = get_args(CapabilityWarning)


@dataclass(frozen=True, slots=True)
class Capability:
    """The four indices; each is ``None`` where it is undefined."""

    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None


def _check_spec_limits(lsl: float | None, usl: float | None) -> None:
    for name, limit in (("lsl", lsl), ("usl", usl)):
        if limit is not None and not math.isfinite(limit):
            raise ValueError(f"{name} must be finite")
    if lsl is not None and usl is not None and lsl >= usl:
        raise ValueError("lsl must be below usl")


def _sample_std(series: FloatArray, mr_bar: float) -> float | None:
    # Only constant data has MR-bar = 0; its std must be exactly 0, which np.std can miss by rounding.
    if mr_bar == 0:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        return finite_or_none(float(np.std(series, ddof=1)))


def capability_indices(
    mean: float, sigma: float | None, lsl: float | None, usl: float | None
) -> tuple[float | None, float | None]:
    """(potential, actual) index for one sigma: (Cp, Cpk) or (Pp, Ppk).

    Potential needs both limits; actual is the one-sided index when only one limit is given. Both are
    ``None`` when sigma is missing or 0, or when no limit is given.
    """
    if sigma is None or sigma <= 0:
        return None, None
    potential = None if lsl is None or usl is None else (usl - lsl) / (6 * sigma)
    sides = [(usl - mean) / (3 * sigma)] if usl is not None else []
    if lsl is not None:
        sides.append((mean - lsl) / (3 * sigma))
    actual = min(sides) if sides else None
    return finite_or_none(potential), finite_or_none(actual)


def process_capability(values: Values, lsl: float | None = None, usl: float | None = None) -> Capability:
    """Cp, Cpk, Pp, Ppk of ``values`` against the spec limits.

    One limit: Cp and Pp are ``None``, Cpk and Ppk are the one-sided indices ((USL - mean)/3 sigma or
    (mean - LSL)/3 sigma). All four are ``None`` with no limits or fewer than two points; a pair is ``None``
    when its sigma is 0 (constant data). Raises ``ValueError`` for non-finite input or LSL >= USL.
    """
    _check_spec_limits(lsl, usl)
    series = as_series(values)
    mr_bar = moving_range_mean(series)
    if mr_bar is None:
        return Capability(cp=None, cpk=None, pp=None, ppk=None)
    with np.errstate(over="ignore"):
        mean = float(np.mean(series))
    sigma_within = mr_bar / D2
    cp, cpk = capability_indices(mean, sigma_within, lsl, usl)
    pp, ppk = capability_indices(mean, _sample_std(series, mr_bar), lsl, usl)
    return Capability(cp=cp, cpk=cpk, pp=pp, ppk=ppk)


@dataclass(frozen=True, slots=True)
class Interval:
    """A two-sided confidence interval."""

    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class Ppm:
    """Parts per million below the LSL, above the USL, and in all; a side without a limit is ``None``."""

    below: float | None
    above: float | None
    total: float


@dataclass(frozen=True, slots=True)
class CapabilityReport:
    """A capability study of one characteristic (see the module docstring); JSON-safe."""

    n: int
    mean: float | None
    lsl: float | None
    usl: float | None
    target: float | None
    sigma_within: float | None
    sigma_within_method: SigmaWithinMethod | None
    sigma_overall: float | None
    cp: float | None = None
    cpk: float | None = None
    cpl: float | None = None
    cpu: float | None = None
    pp: float | None = None
    ppk: float | None = None
    ppl: float | None = None
    ppu: float | None = None
    cpm: float | None = None
    cp_ci: Interval | None = None
    cpk_ci: Interval | None = None
    pp_ci: Interval | None = None
    ppk_ci: Interval | None = None
    ppm_observed: Ppm | None = None
    ppm_expected_within: Ppm | None = None
    ppm_expected_overall: Ppm | None = None
    anderson_darling: AndersonDarling | None = None
    histogram: Histogram | None = None
    warnings: list[CapabilityWarning] = field(default_factory=list)


def sigma_within(
    values: Values | None = None, *, subgroups: Sequence[Values] | None = None
) -> tuple[float | None, SigmaWithinMethod | None]:
    """(sigma, method): the pooled SD / c4(d + 1) of ``subgroups`` when d > 0, else MR-bar / d2."""
    return _sigma_within(*_groups_and_series(values, subgroups))


def _sigma_within(
    sizes: npt.NDArray[np.intp], series: FloatArray
) -> tuple[float | None, SigmaWithinMethod | None]:
    """``sigma_within`` of the split ``_groups_and_series`` gives."""
    degrees = int(series.size - sizes.size) if sizes.size else 0
    if degrees > 0:
        with np.errstate(over="ignore", invalid="ignore"):
            pooled = math.sqrt(_squares_about_group_means(series, sizes) / degrees) / c4(degrees + 1)
        return finite_or_none(pooled), "pooled_sd"
    mr_bar = moving_range_mean(series)
    return (None, None) if mr_bar is None else (mr_bar / D2, "moving_range")


def sigma_overall(values: Values) -> float | None:
    """The sample standard deviation (n - 1); exactly 0 for constant data, ``None`` for n < 2."""
    series = as_series(values)
    if series.size < 2:
        return None
    if series.min() == series.max():
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        return finite_or_none(float(np.std(series, ddof=1)))


def one_sided_indices(
    mean: float, sigma: float | None, lsl: float | None, usl: float | None
) -> tuple[float | None, float | None]:
    """(lower, upper) one-sided indices (mean - LSL) / 3 sigma and (USL - mean) / 3 sigma."""
    if sigma is None or sigma <= 0:
        return None, None
    lower = None if lsl is None else finite_or_none((mean - lsl) / (3 * sigma))
    upper = None if usl is None else finite_or_none((usl - mean) / (3 * sigma))
    return lower, upper


def cpm_index(values: Values, target: float, lsl: float | None, usl: float | None) -> float | None:
    """Minitab's Cpm about ``target``; ``None`` without limits, n < 2, or every value on the target."""
    series = as_series(values)
    distances = [distance for distance in (_gap(target, usl), _gap(lsl, target)) if distance is not None]
    if not distances or series.size < 2:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        tau = math.sqrt(float(np.sum((series - target) ** 2)) / (series.size - 1))
    if tau == 0 or not math.isfinite(tau):
        return None
    return finite_or_none(min(distances) / (3 * tau))


def cp_interval(cp: float | None, n: int, confidence: float = CONFIDENCE) -> Interval | None:
    """The chi-square interval of Cp (or Pp) from n values; ``None`` without an index or for n < 2."""
    if cp is None or n < 2:
        return None
    alpha, df = 1 - confidence, n - 1
    lower = cp * math.sqrt(chi2_ppf(alpha / 2, df) / df)
    upper = cp * math.sqrt(chi2_ppf(1 - alpha / 2, df) / df)
    return _interval(lower, upper)


def cpk_interval(cpk: float | None, n: int, confidence: float = CONFIDENCE) -> Interval | None:
    """Bissell's interval of Cpk (or Ppk) from n values; ``None`` without an index or for n < 2."""
    if cpk is None or n < 2:
        return None
    half = normal_ppf(1 - (1 - confidence) / 2) * math.sqrt(1 / (9 * n) + cpk * cpk / (2 * (n - 1)))
    return _interval(cpk - half, cpk + half)


def expected_ppm(mean: float, sigma: float | None, lsl: float | None, usl: float | None) -> Ppm | None:
    """PPM a normal(mean, sigma) puts below LSL and above USL; ``None`` without limits or for sigma 0."""
    if sigma is None or sigma <= 0 or (lsl is None and usl is None):
        return None
    below = None if lsl is None else 1e6 * normal_cdf((lsl - mean) / sigma)
    above = None if usl is None else 1e6 * normal_sf((usl - mean) / sigma)
    return Ppm(below=below, above=above, total=(below or 0.0) + (above or 0.0))


def observed_ppm(values: Values, lsl: float | None, usl: float | None) -> Ppm | None:
    """PPM of ``values`` strictly below LSL and strictly above USL; ``None`` without limits or values."""
    series = as_series(values)
    if series.size == 0 or (lsl is None and usl is None):
        return None
    below = None if lsl is None else 1e6 * int(np.count_nonzero(series < lsl)) / series.size
    above = None if usl is None else 1e6 * int(np.count_nonzero(series > usl)) / series.size
    return Ppm(below=below, above=above, total=(below or 0.0) + (above or 0.0))


def capability_report(
    values: Values | None = None,
    *,
    subgroups: Sequence[Values] | None = None,
    lsl: float | None = None,
    usl: float | None = None,
    target: float | None = None,
    rule_violations_present: bool = False,
) -> CapabilityReport:
    """The capability study of ``values`` (individuals) or ``subgroups`` (see the module docstring).

    Raises ``ValueError`` for non-finite input, LSL >= USL, a non-finite target, or both or neither of
    ``values`` and ``subgroups``.
    """
    _check_spec_limits(lsl, usl)
    if target is not None and not math.isfinite(target):
        raise ValueError("target must be finite")
    sizes, series = _groups_and_series(values, subgroups)
    n = int(series.size)
    raised: set[CapabilityWarning] = set()
    if n < 2:
        raised.add("too_few_points")
    if n < 30:
        raised.add("n_below_30")
    if lsl is None and usl is None:
        raised.add("no_spec_limits")
    elif lsl is None or usl is None:
        raised.add("one_sided")
    if target is not None and ((lsl is not None and target < lsl) or (usl is not None and target > usl)):
        raised.add("target_outside_spec")
    if rule_violations_present:
        raised.add("rule_violations_present")
    mean = series_mean(series)
    if n < 2 or mean is None:
        return CapabilityReport(
            n=n,
            mean=None,
            lsl=lsl,
            usl=usl,
            target=target,
            sigma_within=None,
            sigma_within_method=None,
            sigma_overall=None,
            warnings=_ordered(raised),
        )
    within, method = _sigma_within(sizes, series)
    overall = sigma_overall(series)
    if within == 0 or overall == 0:
        raised.add("zero_sigma")
    normality = anderson_darling(series)
    if normality is not None and normality.p_value < NOT_NORMAL_BELOW:
        raised.add("not_normal")
    cp, cpk = capability_indices(mean, within, lsl, usl)
    pp, ppk = capability_indices(mean, overall, lsl, usl)
    cpl, cpu = one_sided_indices(mean, within, lsl, usl)
    ppl, ppu = one_sided_indices(mean, overall, lsl, usl)
    return CapabilityReport(
        n=n,
        mean=mean,
        lsl=lsl,
        usl=usl,
        target=target,
        sigma_within=within,
        sigma_within_method=method,
        sigma_overall=overall,
        cp=cp,
        cpk=cpk,
        cpl=cpl,
        cpu=cpu,
        pp=pp,
        ppk=ppk,
        ppl=ppl,
        ppu=ppu,
        cpm=None if target is None else cpm_index(series, target, lsl, usl),
        cp_ci=cp_interval(cp, n),
        cpk_ci=cpk_interval(cpk, n),
        pp_ci=cp_interval(pp, n),
        ppk_ci=cpk_interval(ppk, n),
        ppm_observed=observed_ppm(series, lsl, usl),
        ppm_expected_within=expected_ppm(mean, within, lsl, usl),
        ppm_expected_overall=expected_ppm(mean, overall, lsl, usl),
        anderson_darling=normality,
        histogram=histogram(series),
        warnings=_ordered(raised),
    )


def _groups_and_series(
    values: Values | None, subgroups: Sequence[Values] | None
) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """(the subgroup sizes, every value in subgroup order); no sizes for ``values``."""
    if (values is None) == (subgroups is None):
        raise ValueError("give either values or subgroups")
    if subgroups is None:
        series = as_series(values if values is not None else [])
        return np.zeros(0, dtype=np.intp), series
    # One array and one finiteness check for all of them: per subgroup, numpy's call overhead was
    # most of a summary's time (a charge holds a few points of a parameter).
    groups = [np.asarray(group, dtype=np.float64) for group in subgroups]
    if any(group.ndim != 1 for group in groups):
        raise ValueError("every subgroup must be one-dimensional")
    sizes = np.fromiter((group.size for group in groups), dtype=np.intp, count=len(groups))
    if (sizes == 0).any():
        raise ValueError("every subgroup needs at least one value")
    return sizes, as_series(np.concatenate(groups)) if groups else np.zeros(0)


def _squares_about_group_means(series: FloatArray, sizes: npt.NDArray[np.intp]) -> float:
    """The sum of squared deviations of each value from its subgroup's mean (subgroups in order).

    The means take a second, correcting pass (as R's ``mean`` does), and a constant subgroup's mean
    is its value, so that its deviations are exactly 0, which a float mean can miss by an ulp.
    """
    starts = np.cumsum(sizes) - sizes
    means = np.add.reduceat(series, starts) / sizes
    means += np.add.reduceat(series - np.repeat(means, sizes), starts) / sizes
    constant = np.minimum.reduceat(series, starts) == np.maximum.reduceat(series, starts)
    means[constant] = series[starts[constant]]
    return float(np.sum((series - np.repeat(means, sizes)) ** 2))


def _gap(low: float | None, high: float | None) -> float | None:
    return None if low is None or high is None else high - low


def _ordered(raised: set[CapabilityWarning]) -> list[CapabilityWarning]:
    return [warning for warning in WARNINGS if warning in raised]


def _interval(lower: float, upper: float) -> Interval | None:
    low, high = finite_or_none(lower), finite_or_none(upper)
    return None if low is None or high is None else Interval(lower=low, upper=high)
