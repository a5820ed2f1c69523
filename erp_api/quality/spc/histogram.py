"""The histogram of a capability study: equal-width bins over the data's range.

Bin rule: Freedman-Diaconis, width 2 IQR / n^(1/3) (IQR from numpy's linear-interpolation quartiles),
so the number of bins is ceil(range / width); when the IQR is 0 (over half the values equal) Sturges'
ceil(log2 n) + 1 instead. Either way between 1 and ``MAX_BINS`` bins. Edges run from the minimum to the
maximum; every bin is half-open [a, b) except the last, which holds the maximum. A single distinct
value gets one bin [x - 0.5, x + 0.5], as numpy does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from erp_api.quality.spc.chart import Values, as_series

MAX_BINS = 50
BinRule = Literal["freedman_diaconis", "sturges", "single_value"]


@dataclass(frozen=True, slots=True)
class Histogram:
    """Bin edges (one more than the counts), the count in each bin, and the rule that chose the bins."""

    edges: list[float]
    counts: list[int]
    rule: BinRule


def histogram(values: Values) -> Histogram | None:
    """The histogram of ``values``; ``None`` when there are none."""
    series = as_series(values)
    n = series.size
    if n == 0:
        return None
    low, high = float(series.min()), float(series.max())
    if low == high:
        return Histogram(edges=[low - 0.5, low + 0.5], counts=[n], rule="single_value")
    rule: BinRule
    with np.errstate(over="ignore", invalid="ignore"):
        quartile_1, quartile_3 = np.percentile(series, [25, 75])
        iqr = float(quartile_3 - quartile_1)
        spread = high - low
    if iqr > 0 and math.isfinite(iqr) and math.isfinite(spread):
        rule = "freedman_diaconis"
        width = 2 * iqr / n ** (1 / 3)
        # A denormal IQR can make the width 0 and the ratio infinite: that is simply "many bins".
        ratio = spread / width if width > 0 else math.inf
        bins = math.ceil(ratio) if ratio < MAX_BINS else MAX_BINS
    else:
        rule = "sturges"
        bins = math.ceil(math.log2(n)) + 1
    bins = min(max(bins, 1), MAX_BINS)
    # low (1 - t) + high t cannot overflow where high - low would, and hits both ends exactly.
    t = np.linspace(0.0, 1.0, bins + 1)
    edges = low * (1 - t) + high * t
    counts, _ = np.histogram(series, bins=edges)
    return Histogram(edges=edges.tolist(), counts=[int(c) for c in counts.tolist()], rule=rule)
