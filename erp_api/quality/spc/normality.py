"""The Anderson-Darling test of normality with estimated mean and variance, as Minitab reports it.

For x_(1) <= ... <= x_(n) and z_i = (x_(i) - mean) / s (s the sample standard deviation):
A^2 = -n - (1/n) sum_i (2i - 1) [ln Phi(z_i) + ln(1 - Phi(z_(n+1-i)))], with ln(1 - Phi(z)) taken as
ln Phi(-z) so that neither tail cancels. The small-sample adjustment is
A*^2 = A^2 (1 + 0.75/n + 2.25/n^2), and the p-value is D'Agostino & Stephens' (1986, table 4.9)
piecewise fit in A*^2:

- A*^2 >= 0.6:         p = exp(1.2937 - 5.709 A + 0.0186 A^2)
- 0.34 <= A*^2 < 0.6:  p = exp(0.9177 - 4.279 A - 1.38 A^2)
- 0.2 <= A*^2 < 0.34:  p = 1 - exp(-8.318 + 42.796 A - 59.938 A^2)
- A*^2 < 0.2:          p = 1 - exp(-13.436 + 101.14 A - 223.73 A^2)

clipped to [0, 1]. The first branch has its minimum at A*^2 = 5.709 / (2 * 0.0186) = 153.5 and would
rise again beyond it; there p is already below 1e-180 and is reported as 0. The test needs n >= 3 and
a spread (s > 0); otherwise there is no result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from erp_api.quality.spc.chart import Values, as_series
from erp_api.quality.spc.distributions import log_normal_tails

MIN_POINTS = 3
_TURNING_POINT = 5.709 / (2 * 0.0186)


@dataclass(frozen=True, slots=True)
class AndersonDarling:
    """A^2, the adjusted A*^2 and its p-value (small p: the data are unlikely to be normal)."""

    statistic: float
    adjusted: float
    p_value: float


def anderson_darling_p_value(adjusted: float) -> float:
    """The p-value of an adjusted statistic A*^2 >= 0 (see the module docstring)."""
    a = adjusted
    if a >= _TURNING_POINT:
        return 0.0
    if a >= 0.6:
        p = math.exp(1.2937 - 5.709 * a + 0.0186 * a * a)
    elif a >= 0.34:
        p = math.exp(0.9177 - 4.279 * a - 1.38 * a * a)
    elif a >= 0.2:
        p = 1 - math.exp(-8.318 + 42.796 * a - 59.938 * a * a)
    else:
        p = 1 - math.exp(-13.436 + 101.14 * a - 223.73 * a * a)
    return min(1.0, max(0.0, p))


def anderson_darling(values: Values) -> AndersonDarling | None:
    """The test of ``values`` against a normal with their own mean and SD; ``None`` if n < 3 or s = 0."""
    series = np.sort(as_series(values))
    n = series.size
    if n < MIN_POINTS or series[0] == series[-1]:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        s = float(np.std(series, ddof=1))
        if not math.isfinite(s) or s == 0:
            return None
        z = (series - float(np.mean(series))) / s
    weights = 2.0 * np.arange(1, n + 1) - 1.0
    # log Phi(z_i) + log Phi(-z_(n+1-i)): both from the one erfc of each z (log_normal_tails).
    low, high = log_normal_tails(z)
    below = z <= 0
    log_cdf = np.where(below, low, high)
    log_sf = np.where(below, high, low)
    terms = log_cdf + log_sf[::-1]
    statistic = float(-n - np.dot(weights, terms) / n)
    adjusted = statistic * (1 + 0.75 / n + 2.25 / (n * n))
    return AndersonDarling(statistic=statistic, adjusted=adjusted, p_value=anderson_darling_p_value(adjusted))
