"""Control chart constants for subgroups of n = 2..25 (ASTM E2587, Montgomery Appendix VI).

d2 and d3 (mean and standard deviation of the range of n standard normal values) have no closed form;
they are the printed table values, to three decimals, and the chart lines use them. c4 (the mean of the
sample standard deviation of n standard normal values) is computed exactly,
c4(n) = sqrt(2 / (n - 1)) * Gamma(n / 2) / Gamma((n - 1) / 2), through ``math.lgamma`` so it is
defined for any n >= 2. The factors A2, A3, D3, D4, B3, B4 are the printed table values; they are
rounded forms of 3 / (d2 sqrt n), 3 / (c4 sqrt n), max(0, 1 - 3 d3 / d2), 1 + 3 d3 / d2,
max(0, 1 - 3 sqrt(1 - c4^2) / c4) and 1 + 3 sqrt(1 - c4^2) / c4, which the tests check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from erp_api.quality.spc.chart import FloatArray

IntArray = npt.NDArray[np.intp]

MIN_SIZE = 2
MAX_TABLE_SIZE = 25

# The printed table (Montgomery, Appendix VI; ASTM E2587), one row per subgroup size n.
_TABLE = """
n   d2    d3    A2    A3    D3    D4    B3    B4
2   1.128 0.853 1.880 2.659 0.000 3.267 0.000 3.267
3   1.693 0.888 1.023 1.954 0.000 2.574 0.000 2.568
4   2.059 0.880 0.729 1.628 0.000 2.282 0.000 2.266
5   2.326 0.864 0.577 1.427 0.000 2.114 0.000 2.089
6   2.534 0.848 0.483 1.287 0.000 2.004 0.030 1.970
7   2.704 0.833 0.419 1.182 0.076 1.924 0.118 1.882
8   2.847 0.820 0.373 1.099 0.136 1.864 0.185 1.815
9   2.970 0.808 0.337 1.032 0.184 1.816 0.239 1.761
10  3.078 0.797 0.308 0.975 0.223 1.777 0.284 1.716
11  3.173 0.787 0.285 0.927 0.256 1.744 0.321 1.679
12  3.258 0.778 0.266 0.886 0.283 1.717 0.354 1.646
13  3.336 0.770 0.249 0.850 0.307 1.693 0.382 1.618
14  3.407 0.763 0.235 0.817 0.328 1.672 0.406 1.594
15  3.472 0.756 0.223 0.789 0.347 1.653 0.428 1.572
16  3.532 0.750 0.212 0.763 0.363 1.637 0.448 1.552
17  3.588 0.744 0.203 0.739 0.378 1.622 0.466 1.534
18  3.640 0.739 0.194 0.718 0.391 1.608 0.482 1.518
19  3.689 0.734 0.187 0.698 0.403 1.597 0.497 1.503
20  3.735 0.729 0.180 0.680 0.415 1.585 0.510 1.490
21  3.778 0.724 0.173 0.663 0.425 1.575 0.523 1.477
22  3.819 0.720 0.167 0.647 0.434 1.566 0.534 1.466
23  3.858 0.716 0.162 0.633 0.443 1.557 0.545 1.455
24  3.895 0.712 0.157 0.619 0.451 1.548 0.555 1.445
25  3.931 0.708 0.153 0.606 0.459 1.541 0.565 1.435
"""
_HEADER, *_ROWS = (line.split() for line in _TABLE.strip().splitlines())
_COLUMNS = {name: tuple(float(row[i]) for row in _ROWS) for i, name in enumerate(_HEADER) if i > 0}


def c4(n: int) -> float:
    """E[S] / sigma for n normal values: sqrt(2/(n-1)) Gamma(n/2) / Gamma((n-1)/2), exact for any n >= 2."""
    if n < MIN_SIZE:
        raise ValueError(f"c4 needs n >= {MIN_SIZE}, got {n}")
    return math.sqrt(2.0 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


@dataclass(frozen=True, slots=True)
class ChartConstants:
    """The constants of one subgroup size (lower-case d3 is the range's SD, upper-case D3 its LCL factor)."""

    n: int
    d2: float
    d3: float
    c4: float
    A2: float
    A3: float
    D3: float
    D4: float
    B3: float
    B4: float


CONSTANTS: Mapping[int, ChartConstants] = {
    n: ChartConstants(
        n=n,
        d2=_COLUMNS["d2"][i],
        d3=_COLUMNS["d3"][i],
        c4=c4(n),
        A2=_COLUMNS["A2"][i],
        A3=_COLUMNS["A3"][i],
        D3=_COLUMNS["D3"][i],
        D4=_COLUMNS["D4"][i],
        B3=_COLUMNS["B3"][i],
        B4=_COLUMNS["B4"][i],
    )
    for i, n in enumerate(range(MIN_SIZE, MAX_TABLE_SIZE + 1))
}


def chart_constants(n: int) -> ChartConstants:
    """The constants for subgroup size ``n`` (2..25); ``ValueError`` outside the table."""
    if n not in CONSTANTS:
        raise ValueError(f"subgroup size must be {MIN_SIZE}..{MAX_TABLE_SIZE} for the tabulated constants")
    return CONSTANTS[n]


def _lookup(table: tuple[float, ...], sizes: IntArray) -> FloatArray:
    return np.asarray(table, dtype=np.float64)[sizes - MIN_SIZE]


def d2_of(sizes: IntArray) -> FloatArray:
    """d2 for each size of an integer array whose values are all in 2..25."""
    return _lookup(_COLUMNS["d2"], sizes)


def d3_of(sizes: IntArray) -> FloatArray:
    """d3 (the range's standard deviation factor) for each size, all in 2..25."""
    return _lookup(_COLUMNS["d3"], sizes)


def c4_of(sizes: IntArray) -> FloatArray:
    """Exact c4 for each size (any size >= 2), one lgamma pair per distinct size."""
    distinct, inverse = np.unique(sizes, return_inverse=True)
    values = np.array([c4(int(n)) for n in distinct], dtype=np.float64)
    result: FloatArray = values[inverse.reshape(-1)]
    return result
