"""The capability study: sigmas, indices, intervals, PPM, warnings, against published and hand results.

Published reference: R's qcc ``processCapability`` on the piston-ring data (Montgomery, Table 6.3)
with sigma_within = R-bar / d2 = 0.009785039 and n = 125, as recorded by the mistat package's tests:
spec 73.95 / 74.05 gives Cp 1.703 [1.491, 1.915] and Cpk 1.663 [1.448, 1.878]; spec 73.99 / 74.01 gives
Cp 0.3407 [0.2983, 0.3830], Cpk 0.3006 [0.2312, 0.3700], expected 13 % below / 18 % above, observed
12 % / 16 %; spec 73.99 / 74.1 gives Cp 1.8736 [1.6406, 2.1063], Cpk 0.3807 [0.3055, 0.4559]. Those use
the same chi-square (n - 1 degrees of freedom) and Bissell intervals as this engine, so the interval
functions are checked with qcc's sigma.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erp_api.quality.spc.capability import (
    WARNINGS,
    capability_indices,
    capability_report,
    cp_interval,
    cpk_interval,
    cpm_index,
    expected_ppm,
    observed_ppm,
    process_capability,
    sigma_within,
)
from erp_api.quality.spc.constants import c4
from erp_api.quality.spc.distributions import normal_ppf
from tests.quality.spc.references import assert_json_safe, mean, sample_sd
from tests.quality.spc.test_subgroups import SAMPLES

QCC_SIGMA = 0.009785039
QCC_MEAN = 74.00118
SERIES = [9.0, 11.0, 10.0, 12.0, 8.0]  # mean 10, MR-bar 2.25, s = sqrt(2.5): see test_capability.py
NORMAL_SCORES = [10 + normal_ppf((i + 0.5) / 40) for i in range(40)]


@pytest.mark.parametrize(
    ("lsl", "usl", "cp", "cp_ci", "cpk", "cpk_ci"),
    [
        (73.95, 74.05, 1.703, (1.491, 1.915), 1.663, (1.448, 1.878)),
        (73.99, 74.01, 0.3407, (0.2983, 0.3830), 0.3006, (0.2312, 0.3700)),
        (73.99, 74.1, 1.8736, (1.6406, 2.1063), 0.3807, (0.3055, 0.4559)),
    ],
)
def test_intervals_match_qcc_on_the_piston_rings(
    lsl: float, usl: float, cp: float, cp_ci: tuple[float, float], cpk: float, cpk_ci: tuple[float, float]
) -> None:
    got_cp, got_cpk = capability_indices(QCC_MEAN, QCC_SIGMA, lsl, usl)
    assert got_cp is not None and got_cpk is not None
    assert got_cp == pytest.approx(cp, rel=5e-4)
    assert got_cpk == pytest.approx(cpk, rel=5e-4)
    interval = cp_interval(got_cp, 125)
    assert interval is not None
    assert (interval.lower, interval.upper) == pytest.approx(cp_ci, rel=5e-4)
    interval = cpk_interval(got_cpk, 125)
    assert interval is not None
    assert (interval.lower, interval.upper) == pytest.approx(cpk_ci, rel=6e-4)


def test_ppm_match_qcc_on_the_piston_rings() -> None:
    expected = expected_ppm(QCC_MEAN, QCC_SIGMA, 73.99, 74.01)
    observed = observed_ppm([v for sample in SAMPLES for v in sample], 73.99, 74.01)
    assert expected is not None and observed is not None
    assert (round((expected.below or 0) / 1e4), round((expected.above or 0) / 1e4)) == (13, 18)  # percent
    assert (observed.below, observed.above) == (120_000.0, 160_000.0)  # 15 and 20 of 125


def test_pooled_sigma_within_matches_the_hand_computation() -> None:
    # Subgroups [1, 3] and [2, 6]: squares 1 + 1 + 4 + 4 = 10 on d = 2 degrees of freedom.
    sigma, method = sigma_within(subgroups=[[1.0, 3.0], [2.0, 6.0]])
    assert method == "pooled_sd"
    assert sigma == pytest.approx(math.sqrt(10 / 2) / c4(3), rel=1e-12)


def test_constant_subgroups_pool_to_exactly_zero() -> None:
    # A float mean of [0.1, 0.1, 0.1] is 0.10000000000000002: the deviations must still be exactly 0.
    assert sigma_within(subgroups=[[0.1] * 3, [0.7] * 5, [1e6 + 0.3] * 7]) == (0.0, "pooled_sd")


@st.composite
def subgroup_sets(draw: st.DrawFn) -> list[list[float]]:
    """Subgroups of a few points about one level, far from 0 or not (a mean off by an ulp shows)."""
    level = draw(st.sampled_from([0.0, 1.0, 1e3, 1e6]))
    spread = draw(st.sampled_from([1e-3, 1.0, 100.0]))
    point = st.floats(min_value=-1, max_value=1).map(lambda v: level + round(v, 3) * spread)
    group = st.one_of(st.lists(point, min_size=1, max_size=8), point.map(lambda v: [v] * 3))
    return draw(st.lists(group, min_size=1, max_size=40))


@settings(max_examples=300, deadline=None)
@given(subgroup_sets())
def test_pooled_sigma_within_matches_a_plain_loop(groups: list[list[float]]) -> None:
    """The pooled SD (one pass over all subgroups) against a loop over each subgroup with exact
    means (math.fsum), as in Montgomery 6.3's s-bar / pooled estimates: sqrt(sum of squares / d) / c4."""
    sigma, method = sigma_within(subgroups=groups)
    degrees = sum(len(group) - 1 for group in groups)
    if degrees == 0:  # subgroups of one: the moving range, which needs two points
        assert method == ("moving_range" if len(groups) > 1 else None)
        return
    squares = 0.0
    for group in groups:
        # A constant subgroup deviates by exactly 0 (fsum / n can miss its value by an ulp).
        centre = group[0] if min(group) == max(group) else math.fsum(group) / len(group)
        squares += math.fsum((v - centre) ** 2 for v in group)
    expected = math.sqrt(squares / degrees) / c4_reference(degrees + 1)
    assert method == "pooled_sd"
    assert sigma == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_subgroups_of_one_fall_back_to_the_moving_range() -> None:
    sigma, method = sigma_within(subgroups=[[v] for v in SERIES])
    assert method == "moving_range"
    assert sigma == pytest.approx(2.25 / 1.128)
    sigma, method = sigma_within(SERIES)
    assert sigma == pytest.approx(2.25 / 1.128)
    assert method == "moving_range"


def test_individuals_report_agrees_with_the_existing_indices() -> None:
    report = capability_report(SERIES, lsl=4.0, usl=19.0)
    existing = process_capability(SERIES, lsl=4.0, usl=19.0)

    assert (report.cp, report.cpk, report.pp, report.ppk) == pytest.approx(
        (existing.cp, existing.cpk, existing.pp, existing.ppk)
    )
    assert report.cpl == pytest.approx(6 / (3 * 2.25 / 1.128))
    assert report.cpu == pytest.approx(9 / (3 * 2.25 / 1.128))
    assert report.sigma_overall == pytest.approx(math.sqrt(2.5))
    assert report.sigma_within_method == "moving_range"


def test_cpm_uses_the_spread_about_the_target() -> None:
    tau = math.sqrt(10 / 4)  # sum (x - 10)^2 = 10 over n - 1 = 4
    assert cpm_index(SERIES, 10.0, 4.0, 19.0) == pytest.approx(6 / (3 * tau))  # nearer limit: LSL
    assert cpm_index(SERIES, 11.5, 4.0, 19.0) == pytest.approx(
        15 / (6 * math.sqrt(sum((x - 11.5) ** 2 for x in SERIES) / 4))
    )
    assert cpm_index(SERIES, 10.0, None, 19.0) == pytest.approx(9 / (3 * tau))
    assert cpm_index(SERIES, 10.0, None, None) is None


def test_expected_ppm_of_a_standard_normal_at_three_sigma() -> None:
    ppm = expected_ppm(0.0, 1.0, -3.0, 3.0)
    assert ppm is not None
    assert ppm.below == ppm.above == pytest.approx(1349.898031630095, rel=1e-10)
    assert ppm.total == pytest.approx(2699.79606326019, rel=1e-10)


def test_observed_ppm_counts_values_on_a_limit_as_in_spec() -> None:
    ppm = observed_ppm([1.0, 2.0, 3.0, 4.0], 1.0, 3.5)
    assert ppm is not None
    assert (ppm.below, ppm.above, ppm.total) == (0.0, 250_000.0, 250_000.0)


def test_one_sided_spec_gives_only_the_defined_indices() -> None:
    report = capability_report(NORMAL_SCORES, usl=19.0)

    assert report.cp is report.pp is report.cpl is report.ppl is None
    assert report.cpk == report.cpu
    assert report.ppk == report.ppu
    assert report.cp_ci is None and report.cpk_ci is not None
    assert report.ppm_expected_within is not None and report.ppm_expected_within.below is None
    assert report.warnings == ["one_sided"]


def test_fewer_than_two_points_give_nothing_but_a_warning() -> None:
    for values in ([], [5.0]):
        report = capability_report(values, lsl=0.0, usl=10.0)
        assert report.warnings[:2] == ["too_few_points", "n_below_30"]
        assert report.mean is None and report.sigma_within is None and report.cp is None
        assert report.histogram is None and report.anderson_darling is None
        assert report.ppm_observed is None and report.cp_ci is None


def test_zero_sigma_gives_no_indices_and_a_warning() -> None:
    report = capability_report([0.1] * 40, lsl=0.0, usl=1.0)

    assert report.sigma_within == report.sigma_overall == 0.0
    assert report.cp is report.cpk is report.pp is report.ppk is None
    assert report.cp_ci is None
    assert report.ppm_expected_within is None
    assert report.ppm_observed is not None and report.ppm_observed.total == 0.0
    assert report.warnings == ["zero_sigma"]


def test_skewed_data_warn_not_normal_and_flags_pass_through() -> None:
    skewed = np.exp(np.linspace(-2, 2, 60)) ** 2
    report = capability_report(skewed, lsl=0.0, usl=100.0, rule_violations_present=True)

    assert report.anderson_darling is not None and report.anderson_darling.p_value < 0.05
    assert report.warnings == ["not_normal", "rule_violations_present"]


def test_warnings_come_in_catalogue_order() -> None:
    report = capability_report([1.0, 1.0], target=5.0, lsl=0.0, rule_violations_present=True)
    assert report.warnings == [
        "n_below_30", "one_sided", "zero_sigma", "rule_violations_present",
    ]  # fmt: skip
    report = capability_report(SERIES, target=50.0, lsl=0.0, usl=20.0)
    assert report.warnings == ["n_below_30", "target_outside_spec"]
    assert next(iter(WARNINGS)) == "too_few_points"


def test_piston_rings_report_is_complete_and_json_safe() -> None:
    report = capability_report(subgroups=SAMPLES, lsl=73.95, usl=74.05, target=74.0)

    assert report.n == 125
    assert report.sigma_within_method == "pooled_sd"
    assert report.histogram is not None and sum(report.histogram.counts) == 125
    assert report.warnings == []
    body = orjson.dumps(dataclasses.asdict(report))
    assert b"NaN" not in body and b"Infinity" not in body


@pytest.mark.parametrize(
    "kwargs",
    [
        {"values": [1.0], "subgroups": [[1.0]]},
        {},
        {"values": [1.0, 2.0], "lsl": 2.0, "usl": 1.0},
        {"values": [1.0, 2.0], "target": math.nan},
        {"subgroups": [[1.0], []]},
    ],
)
def test_invalid_input_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        capability_report(**kwargs)  # type: ignore[arg-type]


# Plain-loop reference ------------------------------------------------------------------------------


def c4_reference(n: int) -> float:
    return math.sqrt(2 / (n - 1)) * math.gamma(n / 2) / math.gamma((n - 1) / 2)


@st.composite
def studies(draw: st.DrawFn) -> tuple[list[list[float]], float | None, float | None, float | None]:
    value = st.floats(min_value=-100, max_value=100).map(lambda v: round(v, 2))
    groups = draw(st.lists(st.lists(value, min_size=1, max_size=6), min_size=1, max_size=15))
    lsl = draw(st.one_of(st.none(), st.floats(min_value=-150, max_value=0)))
    usl = draw(st.one_of(st.none(), st.floats(min_value=1, max_value=150)))
    target = draw(st.one_of(st.none(), st.floats(min_value=-150, max_value=150)))
    return groups, lsl, usl, target


@settings(max_examples=300, deadline=None)
@given(studies())
def test_report_matches_the_plain_loop_reference(
    study: tuple[list[list[float]], float | None, float | None, float | None],
) -> None:
    groups, lsl, usl, target = study
    report = capability_report(subgroups=groups, lsl=lsl, usl=usl, target=target)
    x = [v for group in groups for v in group]
    n = len(x)
    if n < 2:
        assert report.cp is report.sigma_within is None
        return
    m = mean(x)
    degrees = sum(len(group) - 1 for group in groups)
    if degrees > 0:
        squares = sum((v - mean(group)) ** 2 for group in groups for v in group)
        within = math.sqrt(squares / degrees) / c4_reference(degrees + 1)
    else:
        within = sum(abs(b - a) for a, b in itertools.pairwise(x)) / (n - 1) / 1.128
    overall = sample_sd(x)
    assert report.mean == pytest.approx(m, abs=1e-9)
    assert report.sigma_within == pytest.approx(within, rel=1e-9, abs=1e-9)
    assert report.sigma_overall == pytest.approx(overall, rel=1e-9, abs=1e-9)
    if within > 1e-6 and overall > 1e-6:
        sides = [distance for distance in (gap(m, usl), gap(lsl, m)) if distance is not None]
        for sigma, pot, act in ((within, report.cp, report.cpk), (overall, report.pp, report.ppk)):
            both = gap(lsl, usl)
            assert_close(pot, None if both is None else both / (6 * sigma))
            assert_close(act, min(sides) / (3 * sigma) if sides else None)
    if lsl is not None or usl is not None:
        outside = sum(1 for v in x if (lsl is not None and v < lsl) or (usl is not None and v > usl))
        assert report.ppm_observed is not None
        assert report.ppm_observed.total == pytest.approx(1e6 * outside / n)
    if target is not None and (lsl is not None or usl is not None):
        tau = math.sqrt(sum((v - target) ** 2 for v in x) / (n - 1))
        distances = [distance for distance in (gap(target, usl), gap(lsl, target)) if distance is not None]
        if tau > 1e-9:
            assert report.cpm == pytest.approx(min(distances) / (3 * tau), rel=1e-9)


def gap(low: float | None, high: float | None) -> float | None:
    return None if low is None or high is None else high - low


def assert_close(got: float | None, expected: float | None) -> None:
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-7, abs=1e-7)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=5), max_size=10),
    st.one_of(st.none(), st.floats(min_value=-1e300, max_value=0.0)),
    st.one_of(st.none(), st.floats(min_value=1.0, max_value=1e300)),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
)
def test_report_is_json_safe_even_for_extreme_values(
    groups: list[list[float]], lsl: float | None, usl: float | None, target: float | None
) -> None:
    assert_json_safe(capability_report(subgroups=groups, lsl=lsl, usl=usl, target=target))
