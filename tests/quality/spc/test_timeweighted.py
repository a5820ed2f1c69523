"""EWMA and tabular CUSUM: published examples and a plain-loop reference.

- NIST/SEMATECH e-Handbook 6.3.2.4 (EWMA control charts), example: 20 values, target 50, s = 2.0539,
  lambda = 0.3, L = 3; EWMA 50.60, 49.52, 50.56, ..., 51.99 and (asymptotic) limits
  52.5884 / 47.4115, no point out of control.
- Montgomery, "Introduction to Statistical Quality Control", Examples 9.1 and 9.2: 30 values, the first
  20 from N(10, 1), the last 10 from N(11, 1); target 10, sigma 1. Tabular CUSUM with k = 0.5, h = 5:
  C+ first exceeds H = 5 at period 29 (C+_29 = 5.28, C+_30 = 5.30). EWMA with lambda = 0.1, L = 2.7:
  z_1 = 9.945 with limits 9.73 / 10.27, z_2 = 9.7495 with limits 9.64 / 10.36.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erp_api.quality.spc.chart import Baseline
from erp_api.quality.spc.individuals import individuals_charts
from erp_api.quality.spc.timeweighted import cusum_charts, ewma_chart
from tests.quality.spc.references import assert_json_safe

NIST_EWMA = [
    52.0,
    47.0,
    53.0,
    49.3,
    50.1,
    47.0,
    51.0,
    50.1,
    51.2,
    50.5,
    49.6,
    47.6,
    49.9,
    51.3,
    47.8,
    51.2,
    52.6,
    52.4,
    53.6,
    52.1,
]
NIST_SMOOTHED = [
    50.60,
    49.52,
    50.56,
    50.18,
    50.16,
    49.21,
    49.75,
    49.85,
    50.26,
    50.33,
    50.11,
    49.36,
    49.52,
    50.05,
    49.38,
    49.92,
    50.73,
    51.23,
    51.94,
    51.99,
]
MONTGOMERY = [
    9.45, 7.99, 9.29, 11.66, 12.16, 10.18, 8.04, 11.46, 9.20, 10.34, 9.03, 11.47, 10.51, 9.40, 10.08,
    9.37, 10.62, 10.31, 8.52, 10.84, 10.90, 9.33, 12.29, 11.50, 10.60, 11.08, 10.38, 11.62, 11.31, 10.52,
]  # fmt: skip


def test_nist_ewma_example() -> None:
    [chart] = ewma_chart(NIST_EWMA, lam=0.3, L=3.0, baseline=Baseline(center=50.0, sigma=2.0539))

    assert [round(p.value or 0, 2) for p in chart.points] == NIST_SMOOTHED
    assert chart.parameters["asymptotic_ucl"] == pytest.approx(52.5884, abs=1e-4)
    assert chart.parameters["asymptotic_lcl"] == pytest.approx(47.4115, abs=1e-4)
    assert chart.points[-1].ucl == pytest.approx(52.5884, abs=1e-4)  # the exact limit has converged
    assert not any(p.violations for p in chart.points)
    assert chart.rules == ["EWMA"]


def test_montgomery_ewma_first_limits_are_narrower() -> None:
    [chart] = ewma_chart(MONTGOMERY, lam=0.1, L=2.7, baseline=Baseline(center=10.0, sigma=1.0))
    first, second = chart.points[:2]

    assert first.value == pytest.approx(9.945)
    assert (round(first.lcl or 0, 2), round(first.ucl or 0, 2)) == (9.73, 10.27)
    assert second.value == pytest.approx(9.7495)
    assert (round(second.lcl or 0, 2), round(second.ucl or 0, 2)) == (9.64, 10.36)
    assert chart.ucl is None  # the limits vary with i


def test_montgomery_cusum_signals_at_period_29() -> None:
    upper, lower = cusum_charts(MONTGOMERY, k=0.5, h=5.0, baseline=Baseline(center=10.0, sigma=1.0))

    assert [round(p.value or 0, 2) for p in upper.points[27:]] == [4.47, 5.28, 5.30]
    assert [p.label for p in upper.points if p.violations] == ["29", "30"]
    assert upper.points[28].violations == ["CUSUM"]
    assert [round(p.value or 0, 2) for p in lower.points[:3]] == [0.05, 1.56, 1.77]
    assert not any(p.violations for p in lower.points)
    assert (upper.ucl, upper.center, upper.parameters["H"], upper.parameters["K"]) == (5.0, 0.0, 5.0, 0.5)


def test_without_a_baseline_the_target_is_the_mean_and_sigma_mr_bar_over_d2() -> None:
    values = [1.0, 3.0, 2.0, 6.0]  # mean 3, moving ranges 2, 1, 4
    [ewma] = ewma_chart(values)
    upper, _ = cusum_charts(values)

    sigma = 7 / 3 / 1.128
    assert ewma.center == 3.0
    assert ewma.process_sigma == pytest.approx(sigma)
    assert ewma.sigma_method == upper.sigma_method == "mr_bar"
    assert upper.parameters["H"] == pytest.approx(5 * sigma)


def test_lambda_one_is_the_individuals_chart() -> None:
    values = [float(v) for v in np.random.default_rng(3).normal(0, 1, 30).round(2)]
    [ewma] = ewma_chart(values, lam=1.0, L=3.0)
    x_chart, _ = individuals_charts(values)

    assert [p.value for p in ewma.points] == pytest.approx(values)
    assert ewma.points[5].ucl == pytest.approx(x_chart.ucl)


def test_constant_data_signal_nothing() -> None:
    [ewma] = ewma_chart([2.0] * 10)
    upper, lower = cusum_charts([2.0] * 10)
    assert not any(p.violations for chart in (ewma, upper, lower) for p in chart.points)


def test_no_sigma_means_no_limits() -> None:
    [ewma] = ewma_chart([5.0])
    assert ewma.points[0].ucl is None
    assert ewma.rules == []
    upper, lower = cusum_charts([5.0])
    assert upper.points == lower.points == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ewma_chart([1.0], lam=0.0), "lambda"),
        (lambda: ewma_chart([1.0], lam=1.5), "lambda"),
        (lambda: ewma_chart([1.0], L=0.0), "L must"),
        (lambda: cusum_charts([1.0], k=-1.0), "k must"),
        (lambda: cusum_charts([1.0], h=0.0), "h must"),
        (lambda: cusum_charts([1.0, math.inf]), "finite"),
    ],
)
def test_invalid_parameters_are_rejected(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


# Plain-loop references ------------------------------------------------------------------------------


def reference_ewma(
    x: list[float], lam: float, width: float, mu: float, sigma: float
) -> list[tuple[float, float, float, bool]]:
    """(z_i, lcl_i, ucl_i, signal) with z_i from its closed form sum, not the recursion."""
    rows = []
    for i in range(1, len(x) + 1):
        z = (1 - lam) ** i * mu + sum(lam * (1 - lam) ** (i - j) * x[j - 1] for j in range(1, i + 1))
        half = width * sigma * math.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * i)))
        rows.append((z, mu - half, mu + half, half > 0 and (z > mu + half or z < mu - half)))
    return rows


def reference_cusum(
    x: list[float], k: float, h: float, mu: float, sigma: float
) -> tuple[list[float], list[float]]:
    upper, lower, c_plus, c_minus = [], [], 0.0, 0.0
    for v in x:
        c_plus = max(0.0, v - (mu + k * sigma) + c_plus)
        c_minus = max(0.0, (mu - k * sigma) - v + c_minus)
        upper.append(c_plus)
        lower.append(c_minus)
    return upper, lower


values_strategy = st.lists(st.floats(min_value=-50, max_value=50), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(
    values_strategy,
    st.floats(min_value=0.05, max_value=1.0),
    st.floats(min_value=0.5, max_value=4.0),
    st.floats(min_value=0.1, max_value=10.0),
)
def test_ewma_matches_the_closed_form(x: list[float], lam: float, width: float, sigma: float) -> None:
    [chart] = ewma_chart(x, lam=lam, L=width, baseline=Baseline(center=1.0, sigma=sigma))
    expected = reference_ewma(x, lam, width, 1.0, sigma)

    for point, (z, lcl, ucl, signal) in zip(chart.points, expected, strict=True):
        assert point.value == pytest.approx(z, rel=1e-9, abs=1e-9)
        assert point.lcl == pytest.approx(lcl, rel=1e-12)
        assert point.ucl == pytest.approx(ucl, rel=1e-12)
        if abs(z - ucl) > 1e-9 and abs(z - lcl) > 1e-9:  # not on a line within rounding of the two forms
            assert (point.violations == ["EWMA"]) == signal


@settings(max_examples=200, deadline=None)
@given(values_strategy, st.floats(min_value=0.0, max_value=2.0), st.floats(min_value=0.5, max_value=8.0))
def test_cusum_matches_the_loop(x: list[float], k: float, h: float) -> None:
    upper, lower = cusum_charts(x, k=k, h=h, baseline=Baseline(center=0.0, sigma=2.0))
    c_plus, c_minus = reference_cusum(x, k, h, 0.0, 2.0)

    assert [p.value for p in upper.points] == pytest.approx(c_plus, abs=1e-9)
    assert [p.value for p in lower.points] == pytest.approx(c_minus, abs=1e-9)
    assert [bool(p.violations) for p in upper.points] == [c > h * 2.0 for c in c_plus]
    assert [bool(p.violations) for p in lower.points] == [c > h * 2.0 for c in c_minus]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=40))
def test_charts_are_json_safe_even_for_extreme_values(x: list[float]) -> None:
    assert_json_safe(ewma_chart(x))
    assert_json_safe(cusum_charts(x))
