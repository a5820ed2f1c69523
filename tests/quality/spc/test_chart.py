"""Individuals / moving-range chart lines, zones and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from erp_api.quality.spc.chart import Baseline, PointZone, classify_zones, individuals_limits

# NIST/SEMATECH e-Handbook of Statistical Methods, section 6.3.2.2 (individuals control chart example).
NIST_VALUES = [49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1]


def rounded(value: float | None, digits: int) -> float:
    assert value is not None
    return round(value, digits)


def test_nist_example_lines_match_the_handbook() -> None:
    limits = individuals_limits(NIST_VALUES)

    assert limits.n == 10
    assert rounded(limits.center, 2) == 50.81
    assert rounded(limits.mr_bar, 4) == 1.8778
    assert rounded(limits.ucl, 4) == 55.8041
    assert rounded(limits.lcl, 4) == 45.8159
    assert rounded(limits.mr_ucl, 4) == 6.1347


def test_sigma_is_mr_bar_over_d2_and_limits_are_three_sigma() -> None:
    limits = individuals_limits([1.0, 3.0, 2.0, 6.0])  # moving ranges 2, 1, 4 -> MR-bar 7/3

    assert limits.mr_bar == pytest.approx(7 / 3)
    assert limits.sigma == pytest.approx(7 / 3 / 1.128)
    assert limits.ucl == pytest.approx(3.0 + 3 * 7 / 3 / 1.128)
    assert limits.lcl == pytest.approx(3.0 - 3 * 7 / 3 / 1.128)
    assert limits.mr_ucl == pytest.approx(3.267 * 7 / 3)


def test_baseline_replaces_centre_and_sigma_but_mr_chart_describes_the_data() -> None:
    limits = individuals_limits(NIST_VALUES, Baseline(center=50.0, sigma=2.0))

    assert (limits.center, limits.sigma, limits.ucl, limits.lcl) == (50.0, 2.0, 56.0, 44.0)
    assert rounded(limits.mr_bar, 4) == 1.8778


def test_baseline_gives_limits_even_for_a_single_point() -> None:
    limits = individuals_limits([7.0], Baseline(center=5.0, sigma=1.0))

    assert (limits.n, limits.center, limits.ucl, limits.lcl) == (1, 5.0, 8.0, 2.0)
    assert limits.mr_bar is None
    assert limits.mr_ucl is None


def test_constant_data_has_zero_sigma_and_its_exact_value_as_centre() -> None:
    # A float mean of twenty 0.1s is not 0.1; the centre must still be exactly the common value.
    limits = individuals_limits([0.1] * 20)

    assert limits.center == 0.1
    assert limits.sigma == 0.0
    assert limits.ucl == limits.lcl == 0.1
    assert limits.mr_bar == 0.0
    assert limits.mr_ucl == 0.0


def test_single_point_has_a_centre_but_no_sigma() -> None:
    limits = individuals_limits([4.2])

    assert limits.n == 1
    assert limits.center == 4.2
    assert limits.sigma is limits.ucl is limits.lcl is limits.mr_bar is limits.mr_ucl is None


def test_no_points_have_no_lines() -> None:
    limits = individuals_limits([])

    assert limits.n == 0
    assert limits.center is limits.sigma is limits.ucl is limits.lcl is limits.mr_bar is None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        individuals_limits([1.0, bad, 2.0])


def test_two_dimensional_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        individuals_limits(np.ones((2, 2)))


@pytest.mark.parametrize(("center", "sigma"), [(0.0, 0.0), (0.0, -1.0), (math.nan, 1.0), (0.0, math.inf)])
def test_baseline_needs_finite_centre_and_positive_sigma(center: float, sigma: float) -> None:
    with pytest.raises(ValueError, match="baseline"):
        Baseline(center=center, sigma=sigma)


def test_zones_put_points_on_a_line_in_the_inner_band() -> None:
    values = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, -1.0, -1.5, -2.0, -2.5, -3.0, -3.01]

    zones = classify_zones(values, center=0.0, sigma=1.0)

    assert zones == [
        PointZone("C", "center"),
        PointZone("C", "upper"),
        PointZone("C", "upper"),
        PointZone("B", "upper"),
        PointZone("B", "upper"),
        PointZone("A", "upper"),
        PointZone("A", "upper"),
        PointZone("beyond", "upper"),
        PointZone("C", "lower"),
        PointZone("B", "lower"),
        PointZone("B", "lower"),
        PointZone("A", "lower"),
        PointZone("A", "lower"),
        PointZone("beyond", "lower"),
    ]


def test_zones_use_the_scaled_lines_of_a_non_unit_chart() -> None:
    zones = classify_zones([16.0, 16.5, 4.0, 3.5], center=10.0, sigma=2.0)

    assert [zone.zone for zone in zones] == ["A", "beyond", "A", "beyond"]


def test_zones_with_zero_sigma_have_no_width() -> None:
    zones = classify_zones([5.0, 5.0, 5.5, 4.5], center=5.0, sigma=0.0)

    assert zones == [
        PointZone("C", "center"),
        PointZone("C", "center"),
        PointZone("beyond", "upper"),
        PointZone("beyond", "lower"),
    ]


def test_zones_reject_negative_sigma() -> None:
    with pytest.raises(ValueError, match="sigma"):
        classify_zones([1.0], center=0.0, sigma=-1.0)
