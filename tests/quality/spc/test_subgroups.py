"""X-bar/R and X-bar/S charts: published examples, table forms, baselines and a plain-loop reference.

Reference data: the piston-ring inside diameters of Montgomery, "Introduction to Statistical Quality
Control" (Table 6.3, 25 phase I samples of 5), shipped as ``pistonrings`` with R's qcc package. The
expected numbers are qcc's output for that data as recorded by the mistat package's comparison with R
(``test_comparison_with_R.py``): X-bar centre 74.00118, sigma 0.009785039, limits 73.98805 / 74.0143;
R centre 0.02276, UCL 0.04812533; S centre 0.009240037, sigma 0.009829977, UCL 0.019302416; and, with
12 values removed so that sizes vary (3, 4, 5), X-bar centre 74.00075, sigma 0.009856701, limits
73.98753 / 74.01398 (n = 5) and 73.98368 / 74.01782 (n = 3), R centre 0.02230088, UCLs 0.04785198 /
0.04857007, S centre 0.00938731, sigma 0.009930923, UCLs 0.01955302 / 0.02318885. Montgomery's own
rounded figures for the same data are x-double-bar = 74.001, R-bar = 0.023, limits 74.014 / 73.988.

qcc takes d3 to seven digits (0.8640855 for n = 5) where the printed table has 0.864, so the R chart's
limits here differ from qcc's in the sixth decimal; those are compared to 3e-5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erp_api.quality.spc.chart import Baseline
from erp_api.quality.spc.constants import c4, chart_constants
from erp_api.quality.spc.rules import RuleSet
from erp_api.quality.spc.subgroups import subgroup_statistics, xbar_r_charts, xbar_s_charts
from tests.quality.spc.references import (
    assert_json_safe,
    chart_violations,
    location_flags,
    mean,
    point_violations,
    sample_sd,
)

PISTON_RINGS = """
74.030 74.002 74.019 73.992 74.008
73.995 73.992 74.001 74.011 74.004
73.988 74.024 74.021 74.005 74.002
74.002 73.996 73.993 74.015 74.009
73.992 74.007 74.015 73.989 74.014
74.009 73.994 73.997 73.985 73.993
73.995 74.006 73.994 74.000 74.005
73.985 74.003 73.993 74.015 73.988
74.008 73.995 74.009 74.005 74.004
73.998 74.000 73.990 74.007 73.995
73.994 73.998 73.994 73.995 73.990
74.004 74.000 74.007 74.000 73.996
73.983 74.002 73.998 73.997 74.012
74.006 73.967 73.994 74.000 73.984
74.012 74.014 73.998 73.999 74.007
74.000 73.984 74.005 73.998 73.996
73.994 74.012 73.986 74.005 74.007
74.006 74.010 74.018 74.003 74.000
73.984 74.002 74.003 74.005 73.997
74.000 74.010 74.013 74.020 74.003
73.988 74.001 74.009 74.005 73.996
74.004 73.999 73.990 74.006 74.009
74.010 73.989 73.990 74.009 74.014
74.015 74.008 73.993 74.000 74.010
73.982 73.984 73.995 74.017 74.013
"""
SAMPLES = [[float(v) for v in line.split()] for line in PISTON_RINGS.strip().splitlines()]
# The 1-based positions (in the data read row by row) qcc's example removes to make sizes vary.
REMOVED = {9, 10, 30, 35, 45, 64, 65, 74, 75, 85, 99, 100}
UNEQUAL = [
    [v for j, v in enumerate(sample) if 5 * i + j + 1 not in REMOVED] for i, sample in enumerate(SAMPLES)
]


def test_piston_rings_xbar_r_matches_qcc() -> None:
    xbar, r = xbar_r_charts(SAMPLES)

    assert xbar.center == pytest.approx(74.00118, abs=5e-6)
    assert xbar.process_sigma == pytest.approx(0.009785039, abs=5e-10)
    assert xbar.lcl == pytest.approx(73.98805, abs=5e-6)
    assert xbar.ucl == pytest.approx(74.0143, abs=5e-5)
    assert r.center == pytest.approx(0.02276, abs=5e-9)
    assert r.lcl == 0.0
    assert r.ucl == pytest.approx(0.04812533, abs=3e-5)
    assert [p.violations for p in xbar.points + r.points] == [[]] * 50


def test_piston_rings_match_montgomerys_rounded_figures() -> None:
    xbar, r = xbar_r_charts(SAMPLES)

    assert (round(xbar.center or 0, 3), round(r.center or 0, 3)) == (74.001, 0.023)
    assert (round(xbar.ucl or 0, 3), round(xbar.lcl or 0, 3)) == (74.014, 73.988)


def test_piston_rings_xbar_s_matches_qcc() -> None:
    xbar, s = xbar_s_charts(SAMPLES)

    assert s.center == pytest.approx(0.009240037, abs=5e-10)
    assert s.process_sigma == pytest.approx(0.009829977, abs=5e-10)
    assert s.lcl == 0.0
    assert s.ucl == pytest.approx(0.019302416, abs=1e-9)
    assert xbar.center == pytest.approx(74.00118, abs=5e-6)
    assert xbar.sigma_method == s.sigma_method == "s_bar"


def test_unequal_sizes_match_qcc_point_by_point() -> None:
    assert [len(sample) for sample in UNEQUAL][:3] == [5, 3, 5]
    xbar, r = xbar_r_charts(UNEQUAL)
    _, s = xbar_s_charts(UNEQUAL)

    assert xbar.center == pytest.approx(74.00075, abs=5e-6)
    assert xbar.process_sigma == pytest.approx(0.009856701, abs=5e-10)
    assert xbar.ucl is xbar.lcl is xbar.zone_sigma is None  # the limits vary
    assert [p.lcl for p in xbar.points[:2]] == pytest.approx([73.98753, 73.98368], abs=5e-6)
    assert [p.ucl for p in xbar.points[:2]] == pytest.approx([74.01398, 74.01782], abs=5e-6)
    assert r.center == pytest.approx(0.02230088, abs=5e-9)
    assert [p.ucl for p in r.points[:2]] == [
        pytest.approx(0.04785198, abs=3e-5),
        pytest.approx(0.04857007, abs=3e-5),
    ]
    assert s.center == pytest.approx(0.00938731, abs=5e-9)
    assert s.process_sigma == pytest.approx(0.009930923, abs=5e-10)
    assert [p.ucl for p in s.points[:2]] == [
        pytest.approx(0.01955302, abs=5e-9),
        pytest.approx(0.02318885, abs=5e-9),
    ]


def test_equal_sizes_give_the_textbook_table_forms() -> None:
    xbar, r = xbar_r_charts(SAMPLES)
    _, s = xbar_s_charts(SAMPLES)
    k5 = chart_constants(5)
    r_bar, s_bar = r.center or 0, s.center or 0

    # Within the rounding of the printed A2, D4, A3, B4 (three decimals).
    assert xbar.ucl == pytest.approx((xbar.center or 0) + k5.A2 * r_bar, abs=0.0005 * r_bar)
    assert r.ucl == pytest.approx(k5.D4 * r_bar, abs=0.0006 * r_bar)
    assert s.ucl == pytest.approx(k5.B4 * s_bar, abs=0.0005 * s_bar)
    xbar_s, _ = xbar_s_charts(SAMPLES)
    assert xbar_s.ucl == pytest.approx((xbar_s.center or 0) + k5.A3 * s_bar, abs=0.0005 * s_bar)
    assert xbar.process_sigma == pytest.approx(r_bar / 2.326, rel=1e-12)
    assert xbar_s.process_sigma == pytest.approx(s_bar / c4(5), rel=1e-12)


def test_a_baseline_sets_the_xbar_lines_and_the_standard_given_r_and_s_lines() -> None:
    xbar, r = xbar_r_charts([[9.0, 11.0], [10.0, 10.0, 10.5]], baseline=Baseline(center=10.0, sigma=2.0))
    _, s = xbar_s_charts([[9.0, 11.0], [10.0, 10.0, 10.5]], baseline=Baseline(center=10.0, sigma=2.0))

    assert xbar.center == 10.0
    assert xbar.points[0].ucl == pytest.approx(10.0 + 3 * 2.0 / math.sqrt(2))
    assert xbar.points[1].lcl == pytest.approx(10.0 - 3 * 2.0 / math.sqrt(3))
    assert [p.center for p in r.points] == [pytest.approx(1.128 * 2.0), pytest.approx(1.693 * 2.0)]
    assert r.points[0].ucl == pytest.approx((1.128 + 3 * 0.853) * 2.0)
    assert r.points[1].lcl == 0.0
    assert r.center is None  # it varies with the size
    assert s.points[1].center == pytest.approx(c4(3) * 2.0)
    assert s.points[1].ucl == pytest.approx((c4(3) + 3 * math.sqrt(1 - c4(3) ** 2)) * 2.0)
    assert xbar.sigma_method == r.sigma_method == "baseline"


def test_a_shifted_subgroup_breaks_n1_on_xbar_and_a_wide_one_breaks_the_r_chart() -> None:
    samples = [[10.0, 10.2, 9.9, 10.1]] * 12 + [[13.0, 13.2, 12.9, 13.1], [8.0, 12.0, 10.0, 10.0]]
    xbar, r = xbar_r_charts(samples, labels=[f"s{i}" for i in range(14)])

    assert xbar.points[12].violations[:1] == ["N1"]
    assert r.rules == ["N1"]
    assert [p.label for p in r.points if p.violations] == ["s13"]
    assert r.points[13].violations == ["N1"]


def test_western_electric_rules_on_both_charts() -> None:
    samples = [[10.0, 10.2, 9.9, 10.1]] * 8 + [[8.0, 12.0, 10.0, 10.0]]
    xbar, r = xbar_r_charts(samples, rules="western_electric")

    assert xbar.rules == ["WE1", "WE2", "WE3", "WE4"]
    assert r.rules == ["WE1"]
    assert r.points[-1].violations == ["WE1"]


def test_constant_subgroups_have_limits_of_zero_width_that_flag_nothing() -> None:
    xbar, r = xbar_r_charts([[0.1, 0.1, 0.1]] * 10 + [[0.3, 0.3, 0.3]])

    assert xbar.process_sigma == 0.0
    assert r.center == r.ucl == 0.0
    assert xbar.ucl == xbar.lcl == xbar.center
    assert not any(p.violations for p in r.points)
    # Only the zone-free rules remain: ten means below the centre line complete N2 at the 9th and 10th.
    assert [p.violations for p in xbar.points] == [[]] * 8 + [["N2"], ["N2"], []]


def test_constant_subgroup_mean_is_exact() -> None:
    stats = subgroup_statistics([[0.1] * 7, [0.2, 0.1]])
    assert stats.means[0] == 0.1
    assert stats.sds[0] == 0.0
    assert stats.ranges.tolist() == [0.0, pytest.approx(0.1)]


def test_no_subgroups_give_empty_charts() -> None:
    xbar, r = xbar_r_charts([])

    assert xbar.points == r.points == []
    assert xbar.center is xbar.ucl is r.center is None


def test_statistics_beyond_the_floats_keep_the_points_but_draw_no_lines() -> None:
    samples = [[1.7e308, 1.6e308], [1.0, 2.0]]  # the first mean overflows
    xbar, r = xbar_r_charts(samples)
    assert [p.value for p in xbar.points] == [None, 1.5]
    assert xbar.center is None and xbar.rules == [] and r.rules == []

    xbar, _ = xbar_r_charts(samples, baseline=Baseline(center=0.0, sigma=1.0))
    assert xbar.points[0].violations[:1] == ["N1"]  # beyond any finite limit


def test_subgroups_need_two_values() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        xbar_r_charts([[1.0, 2.0], [3.0]])


def test_r_chart_stops_at_25_values_but_s_chart_does_not() -> None:
    big = [list(np.linspace(0, 1, 30)), list(np.linspace(0, 2, 30))]
    with pytest.raises(ValueError, match="X-bar/S"):
        xbar_r_charts(big)
    _, s = xbar_s_charts(big)
    assert s.points[0].n == 30


def test_non_finite_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        xbar_s_charts([[1.0, math.nan]])


# Plain-loop reference ------------------------------------------------------------------------------

D2 = {n: chart_constants(n).d2 for n in range(2, 26)}
D3 = {n: chart_constants(n).d3 for n in range(2, 26)}


def reference(samples: list[list[float]], dispersion: str, rules: RuleSet) -> dict[str, object]:
    sizes = [len(s) for s in samples]
    means = [s[0] if min(s) == max(s) else mean(s) for s in samples]
    spread = [max(s) - min(s) if dispersion == "r" else sample_sd(s) for s in samples]
    unit = [D2[n] if dispersion == "r" else c4(n) for n in sizes]
    unit_sd = [D3[n] if dispersion == "r" else math.sqrt(1 - c4(n) ** 2) for n in sizes]
    sigma = sum(v / u for v, u in zip(spread, unit, strict=True)) / len(samples)
    center = weighted(means, sizes)
    spread_center = weighted(spread, sizes)
    sigmas = [sigma / math.sqrt(n) for n in sizes]
    ucl = [center + 3 * s for s in sigmas]
    lcl = [center - 3 * s for s in sigmas]
    spread_ucl = [spread_center + 3 * u * sigma for u in unit_sd]
    spread_lcl = [max(0.0, spread_center - 3 * u * sigma) for u in unit_sd]
    flags = location_flags(means, center, sigmas, ucl, lcl, rules)
    beyond = "N1" if rules == "nelson" else "WE1"
    spread_flags = {beyond: [i for i, v in enumerate(spread) if v > spread_ucl[i] or v < spread_lcl[i]]}
    if sigma == 0:
        spread_flags = {beyond: []}
    return {
        "means": means, "spread": spread, "sigma": sigma, "center": center, "spread_center": spread_center,
        "ucl": ucl, "lcl": lcl, "spread_ucl": spread_ucl, "spread_lcl": spread_lcl,
        "violations": point_violations(flags, len(samples)),
        "spread_violations": point_violations(spread_flags, len(samples)),
    }  # fmt: skip


def weighted(values: list[float], sizes: list[int]) -> float:
    """The size-weighted mean; exactly the common value when all are equal (the engine's convention)."""
    if all(v == values[0] for v in values):
        return values[0]
    return sum(n * v for n, v in zip(sizes, values, strict=True)) / sum(sizes)


LEVELS = [9.5, 9.75, 10.0, 10.25, 10.5, 11.0, 12.5, 7.0]


@st.composite
def subgroup_sets(draw: st.DrawFn) -> list[list[float]]:
    equal = draw(st.booleans())
    size = draw(st.integers(2, 8))
    count = draw(st.integers(1, 40))
    value = st.one_of(st.sampled_from(LEVELS), st.floats(min_value=5, max_value=15))
    sizes = [size] * count if equal else draw(st.lists(st.integers(2, 10), min_size=count, max_size=count))
    return [draw(st.lists(value, min_size=n, max_size=n)) for n in sizes]


@settings(max_examples=300, deadline=None)
@given(subgroup_sets(), st.sampled_from(["r", "s"]), st.sampled_from(["nelson", "western_electric"]))
def test_charts_match_the_plain_loop_reference(
    samples: list[list[float]], dispersion: str, rules: RuleSet
) -> None:
    build = xbar_r_charts if dispersion == "r" else xbar_s_charts
    xbar, spread = build(samples, rules=rules)
    expected = reference(samples, dispersion, rules)

    assert [p.value for p in xbar.points] == pytest.approx(expected["means"], rel=1e-9, abs=1e-9)
    assert [p.value for p in spread.points] == pytest.approx(expected["spread"], rel=1e-9, abs=1e-9)
    assert xbar.process_sigma == pytest.approx(expected["sigma"], rel=1e-9, abs=1e-9)
    assert xbar.center == pytest.approx(expected["center"], rel=1e-9, abs=1e-9)
    assert [p.ucl for p in xbar.points] == pytest.approx(expected["ucl"], rel=1e-9, abs=1e-9)
    assert [p.lcl for p in xbar.points] == pytest.approx(expected["lcl"], rel=1e-9, abs=1e-9)
    assert [p.center for p in spread.points] == pytest.approx(
        [expected["spread_center"]] * len(samples), rel=1e-9, abs=1e-9
    )
    assert [p.ucl for p in spread.points] == pytest.approx(expected["spread_ucl"], rel=1e-9, abs=1e-9)
    assert [p.lcl for p in spread.points] == pytest.approx(expected["spread_lcl"], rel=1e-9, abs=1e-9)
    assert chart_violations(xbar) == expected["violations"]
    assert chart_violations(spread) == expected["spread_violations"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=2, max_size=6), max_size=12),
    st.sampled_from(["r", "s"]),
)
def test_charts_are_json_safe_even_for_extreme_values(samples: list[list[float]], dispersion: str) -> None:
    build = xbar_r_charts if dispersion == "r" else xbar_s_charts
    assert_json_safe(build(samples))
    assert_json_safe(build(samples, baseline=Baseline(center=1.0, sigma=1e300)))
