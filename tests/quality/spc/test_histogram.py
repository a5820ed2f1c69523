"""The capability histogram: bin rule, edges and counts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erp_api.quality.spc.histogram import MAX_BINS, histogram


def test_freedman_diaconis_chooses_the_number_of_bins() -> None:
    values = np.arange(1.0, 101.0)  # IQR 49.5, width 2 * 49.5 / 100^(1/3) = 21.33, range 99 -> 5 bins
    result = histogram(values)
    assert result is not None
    assert result.rule == "freedman_diaconis"
    assert len(result.counts) == math.ceil(99 / (2 * 49.5 / 100 ** (1 / 3))) == 5
    assert result.edges[0] == 1.0
    assert result.edges[-1] == 100.0
    assert result.counts == [20, 20, 20, 20, 20]


def test_zero_iqr_falls_back_to_sturges() -> None:
    values = [5.0] * 30 + [1.0, 9.0]  # over half equal: IQR 0; Sturges ceil(log2 32) + 1 = 6
    result = histogram(values)
    assert result is not None
    assert result.rule == "sturges"
    assert len(result.counts) == 6
    assert sum(result.counts) == 32


def test_a_single_value_gets_one_unit_bin() -> None:
    result = histogram([2.5, 2.5, 2.5])
    assert result is not None
    assert (result.edges, result.counts, result.rule) == ([2.0, 3.0], [3], "single_value")


def test_no_values_no_histogram() -> None:
    assert histogram([]) is None


def test_the_number_of_bins_is_bounded() -> None:
    values = np.concatenate([np.zeros(1000), np.linspace(0, 1, 1000), [1e9]])
    result = histogram(values)
    assert result is not None
    assert len(result.counts) == MAX_BINS


def test_huge_range_does_not_overflow() -> None:
    result = histogram([-1e308, 0.0, 1e308])
    assert result is not None
    assert all(math.isfinite(edge) for edge in result.edges)
    assert sum(result.counts) == 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=300))
def test_every_value_is_counted_once_in_the_bin_that_holds_it(values: list[float]) -> None:
    result = histogram(values)
    assert result is not None
    edges, counts = result.edges, result.counts
    assert len(edges) == len(counts) + 1
    assert 1 <= len(counts) <= MAX_BINS
    assert all(a < b for a, b in itertools.pairwise(edges))
    expected = [0] * len(counts)
    for value in values:
        # Half-open bins [a, b), the last closed; plain search over the edges.
        index = next(i for i in range(len(counts)) if value < edges[i + 1] or i == len(counts) - 1)
        expected[index] += 1
    assert counts == expected
    assert sum(counts) == len(values)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_values_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        histogram([1.0, bad])
