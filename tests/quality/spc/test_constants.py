"""Control chart constants against their definitions and the printed tables.

c4 is checked against the printed table (Montgomery, Appendix VI; ASTM E2587) to its four decimals and
against its closed forms for n = 2 and 3. d2 and d3 have no closed form: they are recomputed here as
the mean and standard deviation of the range of n standard normal values, by numerical integration of
P(W > w) = 1 - n * integral phi(x) [Phi(x + w) - Phi(x)]^(n-1) dx (Simpson's rule on a fine grid; for
n = 2 it reproduces the exact 2 / sqrt(pi) and sqrt(2 - 4 / pi) to 1e-7). The derived factors are
then recomputed from those exact values. The printed tables were rounded from four-decimal
intermediates, so a few entries (e.g. D4(3) = 2.574 against the exact 2.5746) differ from the exact
value by up to one unit in the third decimal; everything else agrees to rounding.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from erp_api.quality.spc.constants import (
    CONSTANTS,
    MAX_TABLE_SIZE,
    MIN_SIZE,
    c4,
    c4_of,
    chart_constants,
    d2_of,
    d3_of,
)

# c4 as printed in Montgomery, Appendix VI (n = 2..25).
PRINTED_C4 = [
    0.7979, 0.8862, 0.9213, 0.9400, 0.9515, 0.9594, 0.9650, 0.9693, 0.9727, 0.9754, 0.9776, 0.9794,
    0.9810, 0.9823, 0.9835, 0.9845, 0.9854, 0.9862, 0.9869, 0.9876, 0.9882, 0.9887, 0.9892, 0.9896,
]  # fmt: skip
SIZES = list(range(MIN_SIZE, MAX_TABLE_SIZE + 1))
_ERF = np.frompyfunc(math.erf, 1, 1)


def _simpson(y: npt.NDArray[np.float64], h: float) -> npt.NDArray[np.float64]:
    total: npt.NDArray[np.float64] = (
        y[..., 0] + y[..., -1] + 4 * y[..., 1:-1:2].sum(-1) + 2 * y[..., 2:-1:2].sum(-1)
    )
    return h / 3 * total


@pytest.fixture(scope="module")
def range_moments() -> dict[int, tuple[float, float]]:
    """{n: (d2, d3)} by integrating the distribution of the range of n standard normals."""
    h = 0.02
    x = np.arange(-9.0, 9.0 + h / 2, h)
    w = np.arange(0.0, 14.0 + h / 2, h)  # an odd number of points, as Simpson's rule needs
    cdf = 0.5 * (1 + np.asarray(_ERF(x / math.sqrt(2)), dtype=np.float64))
    pdf = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    shifted = np.minimum(np.arange(x.size)[None, :] + np.arange(w.size)[:, None], x.size - 1)
    between = cdf[shifted] - cdf[None, :]  # Phi(x + w) - Phi(x), w on the rows (w is a multiple of h)
    moments = {}
    for n in SIZES:
        survival = 1 - n * _simpson(pdf[None, :] * between ** (n - 1), h)
        mean = float(_simpson(survival, h))
        second = float(_simpson(2 * w * survival, h))
        moments[n] = (mean, math.sqrt(second - mean * mean))
    return moments


def test_c4_has_its_closed_forms_for_two_and_three() -> None:
    assert c4(2) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-14)
    assert c4(3) == pytest.approx(math.sqrt(math.pi) / 2, rel=1e-14)


@pytest.mark.parametrize(("n", "printed"), list(zip(SIZES, PRINTED_C4, strict=True)))
def test_c4_matches_the_printed_table(n: int, printed: float) -> None:
    assert round(c4(n), 4) == printed
    assert CONSTANTS[n].c4 == c4(n)


def test_c4_is_defined_beyond_the_table_and_tends_to_one() -> None:
    assert c4(1000) == pytest.approx(1 - 1 / (4 * 999), abs=1e-6)  # c4 ~ 1 - 1/(4(n-1))
    assert c4(10**6) < 1


def test_integration_reproduces_the_exact_moments_for_pairs(
    range_moments: dict[int, tuple[float, float]],
) -> None:
    d2, d3 = range_moments[2]
    assert d2 == pytest.approx(2 / math.sqrt(math.pi), abs=1e-6)
    assert d3 == pytest.approx(math.sqrt(2 - 4 / math.pi), abs=1e-6)


@pytest.mark.parametrize("n", SIZES)
def test_printed_d2_and_d3_are_the_range_moments(
    n: int, range_moments: dict[int, tuple[float, float]]
) -> None:
    d2, d3 = range_moments[n]
    table = chart_constants(n)
    assert abs(table.d2 - d2) <= 0.0005 + 1e-9
    assert abs(table.d3 - d3) <= 0.001


@pytest.mark.parametrize("n", SIZES)
def test_printed_factors_follow_from_d2_d3_and_c4(
    n: int, range_moments: dict[int, tuple[float, float]]
) -> None:
    d2, d3 = range_moments[n]
    root_n, c = math.sqrt(n), c4(n)
    s_spread = math.sqrt(1 - c * c) / c
    exact = {
        "A2": 3 / (d2 * root_n),
        "A3": 3 / (c * root_n),
        "D3": max(0.0, 1 - 3 * d3 / d2),
        "D4": 1 + 3 * d3 / d2,
        "B3": max(0.0, 1 - 3 * s_spread),
        "B4": 1 + 3 * s_spread,
    }
    table = chart_constants(n)
    for name, value in exact.items():
        assert abs(getattr(table, name) - value) <= 0.001, name


def test_the_mr_chart_factor_is_the_tables_d4_of_two() -> None:
    assert chart_constants(2).D4 == 3.267
    assert chart_constants(2).D3 == 0.0
    assert chart_constants(2).d2 == 1.128


@pytest.mark.parametrize("n", [0, 1, 26])
def test_sizes_outside_the_table_are_rejected(n: int) -> None:
    with pytest.raises(ValueError, match="subgroup size"):
        chart_constants(n)


def test_c4_needs_two_values() -> None:
    with pytest.raises(ValueError, match="n >= 2"):
        c4(1)


def test_vectorised_lookups_match_the_table() -> None:
    sizes = np.array([2, 5, 25, 5, 3], dtype=np.intp)
    assert d2_of(sizes).tolist() == [chart_constants(int(n)).d2 for n in sizes]
    assert d3_of(sizes).tolist() == [chart_constants(int(n)).d3 for n in sizes]
    assert c4_of(np.array([2, 40, 2, 7], dtype=np.intp)).tolist() == [c4(2), c4(40), c4(2), c4(7)]
