"""Anderson-Darling: the statistic against a plain loop, the p-value against published critical values.

Stephens (1974, JASA 69, table 1A, case 3: mean and variance estimated) gives the critical values
0.631, 0.752, 0.873 and 1.035 of the modified statistic at the 10 %, 5 %, 2.5 % and 1 % levels;
D'Agostino & Stephens' p-value formula (the one Minitab uses) must return those levels there.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erp_api.quality.spc.distributions import normal_ppf
from erp_api.quality.spc.normality import anderson_darling, anderson_darling_p_value


def reference_statistic(values: list[float]) -> float:
    x = sorted(values)
    n = len(x)
    mean = sum(x) / n
    s = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
    phi = [0.5 * (1 + math.erf((v - mean) / s / math.sqrt(2))) for v in x]
    total = sum((2 * i - 1) * (math.log(phi[i - 1]) + math.log(1 - phi[n - i])) for i in range(1, n + 1))
    return -n - total / n


@pytest.mark.parametrize(("critical", "level"), [(0.631, 0.10), (0.752, 0.05), (0.873, 0.025), (1.035, 0.01)])
def test_p_value_at_stephens_critical_values_is_the_level(critical: float, level: float) -> None:
    assert anderson_darling_p_value(critical) == pytest.approx(level, abs=0.001)


def test_three_symmetric_points_match_the_hand_computation() -> None:
    # mean 0, s 1: z = -1, 0, 1 -> A^2 = -3 - (2 ln Phi(-1) + 6 ln 0.5 + 10 ln Phi(1)) / 3.
    phi_low = 0.5 * math.erfc(1 / math.sqrt(2))
    expected = -3 - (2 * math.log(phi_low) + 6 * math.log(0.5) + 10 * math.log(1 - phi_low)) / 3
    result = anderson_darling([-1.0, 0.0, 1.0])
    assert result is not None
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.adjusted == pytest.approx(expected * (1 + 0.75 / 3 + 2.25 / 9), rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e3, max_value=1e3), min_size=3, max_size=60))
def test_statistic_matches_the_plain_loop(values: list[float]) -> None:
    result = anderson_darling(values)
    if max(values) - min(values) < 1e-6 * max(1.0, *map(abs, values)):
        return  # near-constant data: the loop's own rounding dominates
    assert result is not None
    assert result.statistic == pytest.approx(reference_statistic(values), rel=1e-7, abs=1e-9)
    assert 0.0 <= result.p_value <= 1.0


def test_normal_scores_pass_and_lognormal_scores_fail() -> None:
    normal_scores = np.array([normal_ppf((i + 0.5) / 100) for i in range(100)])
    good = anderson_darling(normal_scores)
    skewed = anderson_darling(np.exp(normal_scores))
    assert good is not None and skewed is not None
    assert good.p_value > 0.5
    assert skewed.p_value < 0.005


def test_p_value_decreases_with_the_statistic_and_stays_in_range() -> None:
    grid = np.linspace(0.0, 200.0, 4001)
    p = [anderson_darling_p_value(float(a)) for a in grid]
    assert all(0.0 <= v <= 1.0 for v in p)
    assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(p))


@pytest.mark.parametrize("values", [[], [1.0], [1.0, 2.0], [3.0, 3.0, 3.0, 3.0]])
def test_no_result_for_fewer_than_three_points_or_no_spread(values: list[float]) -> None:
    assert anderson_darling(values) is None


def test_extreme_outliers_keep_the_statistic_finite() -> None:
    result = anderson_darling([0.0] * 5000 + [1e6])
    assert result is not None
    assert math.isfinite(result.statistic)
    assert result.p_value == pytest.approx(0.0, abs=1e-12)
