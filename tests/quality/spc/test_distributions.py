"""Normal and chi-square functions against printed tables, closed forms and their own inverses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erp_api.quality.spc.distributions import (
    chi2_cdf,
    chi2_ppf,
    chi2_sf,
    gamma_p,
    gamma_q,
    log_normal_tails,
    normal_cdf,
    normal_ppf,
    normal_sf,
)

# Percentage points of the chi-square distribution as printed in statistical tables (e.g. Montgomery,
# Appendix III; NIST/SEMATECH 1.3.6.7.4): df -> quantiles at p = 0.025, 0.05, 0.95, 0.975.
CHI2_TABLE = {
    1: (0.000982, 0.00393, 3.841, 5.024),
    2: (0.0506, 0.103, 5.991, 7.378),
    5: (0.831, 1.145, 11.070, 12.833),
    10: (3.247, 3.940, 18.307, 20.483),
    20: (9.591, 10.851, 31.410, 34.170),
    30: (16.791, 18.493, 43.773, 46.979),
    100: (74.222, 77.929, 124.342, 129.561),
}
PROBABILITIES = (0.025, 0.05, 0.95, 0.975)


@pytest.mark.parametrize("df", list(CHI2_TABLE))
def test_chi2_quantiles_match_the_printed_table(df: int) -> None:
    for p, printed in zip(PROBABILITIES, CHI2_TABLE[df], strict=True):
        decimals = len(str(printed).split(".")[1])
        assert abs(chi2_ppf(p, df) - printed) <= 0.5 * 10**-decimals, (df, p)


@pytest.mark.parametrize("p", [1e-12, 0.001, 0.025, 0.3, 0.5, 0.9, 0.975, 0.999999])
def test_chi2_with_two_degrees_of_freedom_is_exponential(p: float) -> None:
    # chi2(2) is exponential with mean 2: the quantile is -2 ln(1 - p).
    assert chi2_ppf(p, 2) == pytest.approx(-2 * math.log1p(-p), rel=1e-12)


@pytest.mark.parametrize("p", [0.01, 0.025, 0.5, 0.95, 0.975])
def test_chi2_with_one_degree_of_freedom_is_a_squared_normal(p: float) -> None:
    assert chi2_ppf(p, 1) == pytest.approx(normal_ppf((1 + p) / 2) ** 2, rel=1e-10)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=1e-9, max_value=1 - 1e-9),
    st.one_of(st.floats(min_value=0.2, max_value=2000.0), st.integers(1, 200_000).map(float)),
)
def test_chi2_quantile_inverts_the_cdf(p: float, df: float) -> None:
    x = chi2_ppf(p, df)
    assert x > 0
    if p <= 0.5:
        assert chi2_cdf(x, df) == pytest.approx(p, rel=1e-8)
    else:
        assert chi2_sf(x, df) == pytest.approx(1 - p, rel=1e-8, abs=1e-15)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0.05, max_value=500.0), st.floats(min_value=0.0, max_value=2000.0))
def test_the_incomplete_gamma_halves_add_up_to_one(a: float, x: float) -> None:
    assert gamma_p(a, x) + gamma_q(a, x) == pytest.approx(1.0, abs=1e-12)
    assert 0.0 <= gamma_p(a, x) <= 1.0


@pytest.mark.parametrize("x", [0.0, 1e-8, 0.5, 1.0, 3.0, 30.0, 700.0])
def test_incomplete_gamma_of_one_is_the_exponential_cdf(x: float) -> None:
    assert gamma_p(1.0, x) == pytest.approx(-math.expm1(-x), rel=1e-12, abs=1e-300)
    assert gamma_q(1.0, x) == pytest.approx(math.exp(-x), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize(
    ("p", "z"),
    [
        (0.5, 0.0),
        (0.975, 1.959963984540054),
        (0.95, 1.6448536269514722),
        (0.999, 3.090232306167813),
        (0.025, -1.959963984540054),
        (1e-10, -6.361340902404056),
    ],
)
def test_normal_quantiles_match_known_values(p: float, z: float) -> None:
    assert normal_ppf(p) == pytest.approx(z, rel=1e-13, abs=1e-15)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=1e-300, max_value=1 - 1e-12))
def test_normal_quantile_inverts_the_cdf(p: float) -> None:
    z = normal_ppf(p)
    if p <= 0.5:
        assert normal_cdf(z) == pytest.approx(p, rel=1e-12)
    else:
        assert normal_sf(z) == pytest.approx(1 - p, rel=1e-6)


def test_normal_tails_keep_their_relative_accuracy() -> None:
    assert normal_cdf(-3.0) == pytest.approx(0.0013498980316301, rel=1e-12)
    assert normal_sf(3.0) == pytest.approx(0.0013498980316301, rel=1e-12)
    assert normal_sf(10.0) == pytest.approx(7.619853024160527e-24, rel=1e-12)


def test_the_lower_log_tail_matches_the_cdf_and_stays_finite_far_out() -> None:
    z = np.array([-29.0, -10.0, -1.0, 0.0, 2.0, 29.5])
    low, _ = log_normal_tails(z)
    assert low == pytest.approx([math.log(normal_cdf(-abs(v))) for v in z], rel=1e-12)
    far, _ = log_normal_tails(np.array([-30.0001, -29.9999, -1000.0, -1e150]))
    assert np.isfinite(far).all()
    assert far[0] == pytest.approx(math.log(normal_cdf(-30.0001)), rel=1e-9)
    assert far[1] == pytest.approx(math.log(normal_cdf(-29.9999)), rel=1e-9)


def test_log_normal_tails_give_both_tails_of_each_value_with_their_relative_accuracy() -> None:
    z = np.array([-10.0, -2.0, 0.0, 3.0, 10.0])
    low, high = log_normal_tails(z)
    assert low == pytest.approx([math.log(normal_sf(abs(v))) for v in z], rel=1e-12)
    # log Phi(10) = log(1 - 7.6e-24): log1p keeps it, a log of the rounded cdf would give 0.
    assert high == pytest.approx([math.log1p(-normal_sf(abs(v))) for v in z], rel=1e-12)
    assert high[-1] == pytest.approx(-7.619853024160527e-24, rel=1e-12)
    far_low, far_high = log_normal_tails(np.array([-1000.0, 1e150]))
    assert np.isfinite(far_low).all() and (far_high == 0.0).all()


@given(st.floats(min_value=-29.0, max_value=29.0))
@settings(max_examples=200, deadline=None)
def test_log_normal_tails_are_the_log_cdf_at_minus_and_plus_the_magnitude(z: float) -> None:
    low, high = log_normal_tails(np.array([z]))
    assert low[0] == pytest.approx(math.log(normal_cdf(-abs(z))), rel=1e-12)
    # Near 1 the rounded cdf has lost the digits log Phi needs; 1 - sf keeps them.
    assert high[0] == pytest.approx(math.log1p(-normal_sf(abs(z))), rel=1e-12, abs=1e-300)
    assert high[0] == pytest.approx(math.log(normal_cdf(abs(z))), abs=1e-15)
    assert low[0] <= high[0]


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, math.nan])
def test_quantiles_reject_probabilities_outside_the_open_interval(p: float) -> None:
    with pytest.raises(ValueError, match="p must"):
        normal_ppf(p)
    with pytest.raises(ValueError, match="p must"):
        chi2_ppf(p, 3)


def test_chi2_quantile_rejects_bad_degrees_of_freedom() -> None:
    with pytest.raises(ValueError, match="df"):
        chi2_ppf(0.5, 0)
