"""The shared chart model and rule plumbing: where each rule runs, and JSON-safe points."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erp_api.quality.spc.chart_result import (
    as_list,
    assemble_chart,
    beyond_limits,
    build_points,
    dispersion_flags,
    location_flags,
    point_labels,
)
from erp_api.quality.spc.rules import RuleSet, rule_masks
from tests.quality.spc.references import location_flags as reference_location_flags


def flagged(flags: dict[str, np.ndarray]) -> dict[str, list[int]]:
    return {rule: np.flatnonzero(mask).tolist() for rule, mask in flags.items()}


def test_beyond_limits_is_strict_and_ignores_limits_of_zero_width() -> None:
    values = np.array([3.0, 3.0001, -3.0, -3.5, 1.0])
    ucl = np.array([3.0, 3.0, 3.0, 3.0, 1.0])
    lcl = np.array([-3.0, -3.0, -3.0, -3.0, 1.0])
    assert beyond_limits(values, ucl, lcl).tolist() == [False, True, False, True, False]


def test_constant_sigma_runs_the_rule_engine_unchanged() -> None:
    values = np.array([0.5] * 9 + [3.5])
    sigmas = np.ones(10)
    flags = location_flags(values, 0.0, sigmas, ucl=sigmas * 3, lcl=-sigmas * 3, rules="nelson")
    assert flagged(flags) == {
        rule: np.flatnonzero(m).tolist() for rule, m in rule_masks(values, 0.0, 1.0).items()
    }


def test_varying_sigma_standardizes_the_zone_rules() -> None:
    # 2.5 with sigma 1 is z = 2.5, beyond 2 sigma; 2.5 with sigma 2 is z = 1.25, not.
    values = np.array([0.0, 2.5, 2.5, 0.0, 2.5, 2.5])
    sigmas = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
    flags = location_flags(values, 0.0, sigmas, ucl=3 * sigmas, lcl=-3 * sigmas, rules="nelson")
    assert flagged(flags)["N5"] == [2]


def test_zone_free_rules_see_the_plotted_values_when_sigma_varies() -> None:
    # Rising values whose standardized z would not rise (the sigma grows faster).
    values = np.arange(1.0, 7.0)
    sigmas = np.array([0.1, 0.5, 1.0, 2.0, 4.0, 8.0])
    flags = location_flags(values, 0.0, sigmas, ucl=3 * sigmas, lcl=-3 * sigmas, rules="nelson")
    assert flagged(flags)["N3"] == [5]


def test_without_zones_only_the_limit_and_zone_free_rules_run() -> None:
    values = np.array([1.0, 2.0])
    sigmas = np.array([1.0, 2.0])
    flags = location_flags(values, 0.0, sigmas, ucl=3 * sigmas, lcl=-3 * sigmas, rules="nelson", zones=False)
    assert list(flags) == ["N1", "N2", "N3", "N4"]
    flags = location_flags(
        values, 0.0, sigmas, ucl=3 * sigmas, lcl=-3 * sigmas, rules="western_electric", zones=False
    )
    assert list(flags) == ["WE1", "WE4"]


def test_dispersion_charts_check_only_the_limits() -> None:
    flags = dispersion_flags(np.array([1.0, 9.0]), np.array([5.0, 5.0]), np.zeros(2), "western_electric")
    assert flagged(flags) == {"WE1": [1]}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([-3.5, -2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, 3.5, 7.0]),
            st.sampled_from([0.5, 1.0, 2.0]),
        ),
        max_size=40,
    ),
    st.sampled_from(["nelson", "western_electric"]),
    st.booleans(),
)
def test_location_flags_match_the_plain_loop(
    pairs: list[tuple[float, float]], rules: RuleSet, zones: bool
) -> None:
    values = np.array([v for v, _ in pairs], dtype=np.float64)
    sigmas = np.array([s for _, s in pairs], dtype=np.float64)
    ucl, lcl = 1.0 + 3 * sigmas, 1.0 - 3 * sigmas
    got = flagged(location_flags(values, 1.0, sigmas, ucl=ucl, lcl=lcl, rules=rules, zones=zones))
    expected = reference_location_flags(
        values.tolist(), 1.0, sigmas.tolist(), ucl.tolist(), lcl.tolist(), rules, zones=zones
    )
    assert got == expected


def test_points_carry_their_rules_in_rule_order_and_none_for_non_finite() -> None:
    flags = {"N1": np.array([True, False]), "N5": np.array([True, True])}
    points = build_points(
        ["a", "b"],
        np.array([1.0, math.inf]),
        sizes=[3, None],
        centers=0.0,
        ucls=np.array([0.5, math.nan]),
        lcls=None,
        flags=flags,
    )
    assert [(p.label, p.value, p.n, p.center, p.ucl, p.lcl, p.violations) for p in points] == [
        ("a", 1.0, 3, 0.0, 0.5, None, ["N1", "N5"]),
        ("b", None, None, 0.0, None, None, ["N5"]),
    ]


def test_a_chart_has_constant_lines_only_when_every_point_shares_them() -> None:
    points = build_points(
        ["a", "b"], np.zeros(2), sizes=[2, 3], centers=1.0, ucls=np.array([2.0, 3.0]), lcls=0.0, flags={}
    )
    chart = assemble_chart("xbar", points, zone_sigma=None, process_sigma=1.0, sigma_method="r_bar", rules=[])
    assert (chart.center, chart.ucl, chart.lcl) == (1.0, None, 0.0)


def test_labels_default_to_positions_and_must_match() -> None:
    assert point_labels(None, 3) == ["1", "2", "3"]
    assert point_labels([7, "x"], 2) == ["7", "x"]  # type: ignore[list-item]
    with pytest.raises(ValueError, match="labels"):
        point_labels(["a"], 2)
    assert as_list(None, 2) == [None, None]
