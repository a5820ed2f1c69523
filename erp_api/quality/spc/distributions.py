"""The few distribution functions capability needs, without scipy: normal and chi-square.

- Normal cdf and survival function from ``math.erfc`` (accurate in both tails); the log of both tails
  of a value from one erfc (``log_normal_tails``: Anderson-Darling needs log Phi(z) and log Phi(-z) of
  every point), with the asymptotic series below z = -30, where the lower tail underflows.
- Normal quantile: Acklam's rational approximation (relative error < 1.2e-9) refined by one Halley
  step on ``math.erfc``, which brings it to double precision.
- Regularized incomplete gamma P(a, x) and Q(a, x) = 1 - P: the power series for x < a + 1, the
  continued fraction (modified Lentz) otherwise, as in Numerical Recipes (2nd ed., section 6.2); each
  is computed directly, never as 1 minus the other, so both tails keep their relative accuracy.
- Chi-square quantile: the Wilson-Hilferty approximation as a start, then Newton steps on the cdf
  (the lower tail P for p <= 0.5, the upper tail Q otherwise) kept inside a bracket that bisection
  shrinks whenever a Newton step would leave it.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from erp_api.quality.spc.chart import FloatArray

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_EPS = 1e-15
_TINY = 1e-300


def normal_cdf(z: float) -> float:
    """Phi(z), the standard normal cdf."""
    return 0.5 * math.erfc(-z / _SQRT2)


def normal_sf(z: float) -> float:
    """1 - Phi(z), computed without cancellation for large z."""
    return 0.5 * math.erfc(z / _SQRT2)


def normal_pdf(z: float) -> float:
    """phi(z), the standard normal density."""
    return math.exp(-0.5 * z * z - _LOG_SQRT_2PI)


def log_normal_tails(z: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(log Phi(-|z|), log Phi(|z|)) elementwise, from one ``math.erfc`` per value: the lower tail
    c / 2 with c = erfc(|z| / sqrt 2), accurate however small (the asymptotic series below -30, where
    it underflows), and the upper log1p(-c / 2), which loses nothing to cancellation. So log Phi(z)
    and log Phi(-z) of the same z cost one erfc between them, not two."""
    magnitude = np.abs(np.asarray(z, dtype=np.float64))
    low = np.empty_like(magnitude)
    far = magnitude > 30.0
    near = ~far
    # math.erfc over a list of floats: the same values as a ufunc of it, without an object array.
    arguments = (magnitude[near] / _SQRT2).tolist()
    complement = np.zeros_like(magnitude)
    complement[near] = np.fromiter(map(math.erfc, arguments), np.float64, len(arguments))
    low[near] = np.log(0.5 * complement[near])
    tail = -magnitude[far]
    # log Phi(z) = log phi(z) - log(-z) + log(1 - 1/z^2 + 3/z^4 - 15/z^6) for z -> -infinity.
    inverse_square = 1.0 / (tail * tail)
    series = 1.0 - inverse_square * (1.0 - inverse_square * (3.0 - 15.0 * inverse_square))
    low[far] = -0.5 * tail * tail - _LOG_SQRT_2PI - np.log(-tail) + np.log(series)
    return low, np.log1p(-0.5 * complement)


_A: tuple[float, ...] = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02)
_A += (1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B: tuple[float, ...] = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02)
_B += (6.680131188771972e01, -1.328068155288572e01)
_C: tuple[float, ...] = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00)
_C += (-2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D: tuple[float, ...] = (
    7.784695709041462e-03,
    3.224671290700398e-01,
    2.445134137142996e00,
    3.754408661907416e00,
)
_P_LOW = 0.02425


def _acklam(p: float) -> float:
    if p < _P_LOW or p > 1 - _P_LOW:
        q = math.sqrt(-2 * math.log(p if p < _P_LOW else 1 - p))
        numerator = ((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]
        denominator = (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1
        quantile: float = numerator / denominator if p < _P_LOW else -numerator / denominator
        return quantile
    q = p - 0.5
    r = q * q
    numerator = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
    denominator = ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1
    central: float = numerator / denominator
    return central


def normal_ppf(p: float) -> float:
    """The standard normal quantile Phi^-1(p) for 0 < p < 1."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be strictly between 0 and 1")
    z = _acklam(p)
    # One Halley step; the error is taken in the smaller tail so it keeps its relative accuracy.
    error = normal_cdf(z) - p if p <= 0.5 else (1 - p) - normal_sf(z)
    u = error * math.sqrt(2 * math.pi) * math.exp(0.5 * z * z)
    return z - u / (1 + 0.5 * z * u)


def _log_prefactor(a: float, x: float) -> float:
    """log(x^a e^-x / Gamma(a)), the factor both expansions share."""
    return a * math.log(x) - x - math.lgamma(a)


def _series(a: float, x: float) -> float:
    """P(a, x) by its power series; converges fast for x < a + 1."""
    term = total = 1.0 / a
    denominator = a
    for _ in range(_max_iterations(a)):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(_log_prefactor(a, x))


def _continued_fraction(a: float, x: float) -> float:
    """Q(a, x) by its continued fraction (modified Lentz); converges fast for x >= a + 1."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _max_iterations(a)):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h * math.exp(_log_prefactor(a, x))


def _max_iterations(a: float) -> int:
    # Both expansions need O(sqrt(a)) terms near x = a.
    return 200 + int(20 * math.sqrt(a))


def gamma_p(a: float, x: float) -> float:
    """The regularized lower incomplete gamma function P(a, x), a > 0, x >= 0."""
    if a <= 0 or x < 0:
        raise ValueError("gamma_p needs a > 0 and x >= 0")
    if x == 0:
        return 0.0
    return _series(a, x) if x < a + 1 else 1.0 - _continued_fraction(a, x)


def gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x), a > 0, x >= 0."""
    if a <= 0 or x < 0:
        raise ValueError("gamma_q needs a > 0 and x >= 0")
    if x == 0:
        return 1.0
    return 1.0 - _series(a, x) if x < a + 1 else _continued_fraction(a, x)


def chi2_cdf(x: float, df: float) -> float:
    """P(X <= x) for X chi-square with ``df`` > 0 degrees of freedom."""
    return 0.0 if x <= 0 else gamma_p(df / 2, x / 2)


def chi2_sf(x: float, df: float) -> float:
    """P(X > x) for X chi-square with ``df`` degrees of freedom."""
    return 1.0 if x <= 0 else gamma_q(df / 2, x / 2)


def _chi2_log_pdf(x: float, df: float) -> float:
    half = df / 2
    return (half - 1) * math.log(x) - x / 2 - half * math.log(2.0) - math.lgamma(half)


# Capability intervals ask for the same few quantiles again and again (95 % at df = n - 1, and n is
# often a fixed sample size), and each costs hundreds of series terms at large df.
@lru_cache(maxsize=4096)
def chi2_ppf(p: float, df: float) -> float:
    """The chi-square quantile: the x with P(X <= x) = p, for 0 < p < 1 and df > 0."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be strictly between 0 and 1")
    if not df > 0 or not math.isfinite(df):
        raise ValueError("df must be finite and > 0")
    lower_tail = p <= 0.5

    def residual(x: float) -> float:
        # Positive when x lies above the quantile.
        return chi2_cdf(x, df) - p if lower_tail else (1 - p) - chi2_sf(x, df)

    z = normal_ppf(p)
    wilson_hilferty = df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
    # Where Wilson-Hilferty fails (few degrees of freedom, tiny p) the first term of the series,
    # P(a, x) ~ (x/2)^a / Gamma(a + 1), gives the start.
    half = df / 2
    small = 2 * math.exp((math.log(p) + math.lgamma(half + 1)) / half)
    x = wilson_hilferty if wilson_hilferty > 0 else small
    low, high = 0.0, max(x, 1.0)
    while residual(high) < 0:
        low, high = high, high * 2
    for _ in range(500):
        f = residual(x)
        if f == 0:
            return x
        if f > 0:
            high = min(high, x)
        else:
            low = max(low, x)
        # Newton's step f / pdf, in logs: the density can underflow (far tail) or overflow (x near 0).
        log_density = _chi2_log_pdf(x, df) if x > 0 else -math.inf
        candidate = x - f * math.exp(-log_density) if -log_density < 700 else math.nan
        if not low < candidate < high:
            # Bisect, geometrically when the bracket spans orders of magnitude.
            candidate = math.sqrt(low * high) if low > 0 and high > 4 * low else 0.5 * (low + high)
            if low == 0:
                candidate = min(candidate, 1e-3 * high)
        if abs(candidate - x) <= 1e-14 * x or high - low <= 1e-15 * high:
            return candidate
        x = candidate
    return x
