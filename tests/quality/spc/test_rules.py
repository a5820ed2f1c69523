"""Hand-built series for every Nelson and Western Electric rule, with the exact points each flags.

Unless stated otherwise the chart has centre 0 and sigma 1, so the zone lines sit on exact floats.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from erp_api.quality.spc.rules import (
    RULE_DEFINITIONS,
    RULE_SETS,
    RuleName,
    find_violations,
    rule_mask,
    rule_masks,
)

ABOVE_1 = 1.5  # between 1 and 2 sigma above
ABOVE_2 = 2.5  # between 2 and 3 sigma above


def flagged(rule: RuleName, values: list[float], center: float = 0.0, sigma: float = 1.0) -> list[int]:
    return np.flatnonzero(rule_mask(rule, values, center, sigma)).tolist()


# N1 / WE1: beyond 3 sigma


def test_n1_flags_points_strictly_beyond_three_sigma() -> None:
    assert flagged("N1", [0.0, 3.0, 3.0001, -3.0, -3.5, 2.9]) == [2, 4]


def test_n1_point_exactly_on_a_scaled_limit_is_not_beyond() -> None:
    assert flagged("N1", [16.0, 4.0, 16.000001, 3.999999], center=10.0, sigma=2.0) == [2, 3]


def test_we1_is_n1() -> None:
    values = [0.0, 3.0, 3.0001, -3.0, -3.5, 2.9]
    assert flagged("WE1", values) == flagged("N1", values)


# N2: nine in a row on one side; WE4: eight in a row on one side


def test_n2_run_of_ten_flags_the_ninth_and_tenth() -> None:
    assert flagged("N2", [-0.5] + [0.5] * 10) == [9, 10]


def test_n2_flags_a_run_below_the_centre() -> None:
    assert flagged("N2", [-1.0] * 9) == [8]


def test_n2_point_on_the_centre_line_breaks_the_run() -> None:
    assert flagged("N2", [0.5] * 4 + [0.0] + [0.5] * 8) == []
    assert flagged("N2", [0.5] * 4 + [0.0] + [0.5] * 9) == [13]


def test_n2_needs_all_nine_on_the_same_side() -> None:
    assert flagged("N2", [0.5] * 8 + [-0.5]) == []


def test_we4_needs_eight_where_n2_needs_nine() -> None:
    assert flagged("WE4", [0.5] * 8) == [7]
    assert flagged("N2", [0.5] * 8) == []
    assert flagged("WE4", [-0.5] * 9) == [7, 8]
    assert flagged("N2", [-0.5] * 9) == [8]


def test_we4_point_on_the_centre_line_breaks_the_run() -> None:
    assert flagged("WE4", [0.5] * 7 + [0.0] + [0.5] * 7) == []


# N3: six in a row strictly increasing or decreasing


def test_n3_six_increasing_points_flag_the_sixth() -> None:
    assert flagged("N3", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]) == [5]


def test_n3_every_point_extending_the_trend_is_flagged() -> None:
    assert flagged("N3", [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]) == [5, 6]


def test_n3_five_points_are_not_a_trend() -> None:
    assert flagged("N3", [0.0, 0.1, 0.2, 0.3, 0.4]) == []


def test_n3_tie_breaks_the_trend() -> None:
    # x[2] == x[3]: the rise restarts at index 3 and needs six strictly increasing points from there.
    assert flagged("N3", [0.0, 1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0]) == []
    assert flagged("N3", [0.0, 1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]) == [8]


def test_n3_ignores_the_zones() -> None:
    assert flagged("N3", [100.0, 101.0, 102.0, 103.0, 104.0, 105.0], center=0.0, sigma=0.0) == [5]


# N4: fourteen in a row alternating up and down

ZIGZAG_14 = [0.0, 1.0] * 7


def test_n4_fourteen_alternating_points_flag_the_fourteenth() -> None:
    assert flagged("N4", ZIGZAG_14) == [13]
    assert flagged("N4", [*ZIGZAG_14, 0.0]) == [13, 14]


def test_n4_thirteen_alternating_points_are_not_enough() -> None:
    assert flagged("N4", ZIGZAG_14[:13]) == []


def test_n4_only_the_sign_of_each_step_matters() -> None:
    values = [0.0, 5.0, 4.9, 9.0, -3.0, -2.9, -8.0, 1.0, 0.0, 0.1, -0.1, 7.0, 6.0, 6.5]
    assert flagged("N4", values) == [13]


def test_n4_tie_breaks_the_pattern() -> None:
    with_tie = [*ZIGZAG_14[:7], ZIGZAG_14[6], *ZIGZAG_14[7:]]  # a zero step between index 6 and 7
    assert flagged("N4", with_tie) == []


def test_n4_two_steps_the_same_way_break_the_pattern() -> None:
    # Steps up/down alternate except 1 -> 2 at indices 7 -> 8, which follows the rise 0 -> 1.
    values = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
    assert flagged("N4", values) == []


# N5 / WE2: two of three beyond 2 sigma on the same side


def test_n5_two_of_three_flags_the_completing_point() -> None:
    assert flagged("N5", [0.0, ABOVE_2, ABOVE_2]) == [2]
    assert flagged("N5", [0.0, ABOVE_2, 0.0, ABOVE_2]) == [3]
    assert flagged("N5", [0.0, -ABOVE_2, -ABOVE_2]) == [2]


def test_n5_completing_point_must_itself_be_beyond() -> None:
    assert flagged("N5", [0.0, ABOVE_2, ABOVE_2, 1.0]) == [2]


def test_n5_three_in_a_row_flags_the_second_and_third() -> None:
    assert flagged("N5", [0.0, ABOVE_2, ABOVE_2, ABOVE_2]) == [2, 3]


def test_n5_points_too_far_apart_do_not_count() -> None:
    assert flagged("N5", [ABOVE_2, 0.0, 0.0, ABOVE_2]) == []


def test_n5_needs_the_same_side() -> None:
    assert flagged("N5", [0.0, ABOVE_2, -ABOVE_2]) == []
    assert flagged("N5", [0.0, ABOVE_2, -ABOVE_2, ABOVE_2]) == [3]


def test_n5_point_exactly_at_two_sigma_is_not_beyond() -> None:
    assert flagged("N5", [0.0, 2.0, ABOVE_2]) == []
    assert flagged("N5", [0.0, 2.000001, ABOVE_2]) == [2]


def test_n5_only_complete_windows_count() -> None:
    # Indices 0 and 1 are beyond, but the first window of three is completed by index 2, which is not.
    assert flagged("N5", [ABOVE_2, ABOVE_2, 0.0]) == []


def test_we2_is_n5() -> None:
    values = [0.0, ABOVE_2, 0.0, ABOVE_2, -ABOVE_2, -ABOVE_2, 2.0]
    assert flagged("WE2", values) == flagged("N5", values) == [3, 5]


# N6 / WE3: four of five beyond 1 sigma on the same side


def test_n6_four_of_five_flags_the_completing_point() -> None:
    assert flagged("N6", [0.0, ABOVE_1, ABOVE_1, ABOVE_1, ABOVE_1]) == [4]
    assert flagged("N6", [ABOVE_1, ABOVE_1, 0.0, ABOVE_1, ABOVE_1]) == [4]
    assert flagged("N6", [-ABOVE_1, -ABOVE_1, -ABOVE_1, 0.0, -ABOVE_1]) == [4]


def test_n6_completing_point_must_itself_be_beyond() -> None:
    assert flagged("N6", [0.0, ABOVE_1, ABOVE_1, ABOVE_1, ABOVE_1, 0.5]) == [4]
    assert flagged("N6", [ABOVE_1, ABOVE_1, ABOVE_1, ABOVE_1, 0.0]) == []


def test_n6_point_exactly_at_one_sigma_is_not_beyond() -> None:
    assert flagged("N6", [0.0, 1.0, ABOVE_1, ABOVE_1, ABOVE_1]) == []
    assert flagged("N6", [0.0, 1.000001, ABOVE_1, ABOVE_1, ABOVE_1]) == [4]


def test_n6_counts_one_side_at_a_time() -> None:
    assert flagged("N6", [ABOVE_1, -ABOVE_1, ABOVE_1, -ABOVE_1, ABOVE_1]) == []
    assert flagged("N6", [ABOVE_1, -ABOVE_1, ABOVE_1, ABOVE_1, ABOVE_1]) == [4]


def test_we3_is_n6() -> None:
    values = [0.0, ABOVE_1, ABOVE_1, ABOVE_1, ABOVE_1, 0.5, -ABOVE_1]
    assert flagged("WE3", values) == flagged("N6", values) == [4]


# N7: fifteen in a row within 1 sigma


def test_n7_fifteen_points_within_one_sigma_flag_the_fifteenth() -> None:
    hugging = [0.5, -0.5] * 7 + [0.5]
    assert flagged("N7", hugging) == [14]
    assert flagged("N7", [*hugging, 0.0]) == [14, 15]


def test_n7_point_exactly_at_one_sigma_counts_as_within() -> None:
    assert flagged("N7", [1.0, -1.0, 0.0] * 5) == [14]


def test_n7_point_beyond_one_sigma_breaks_the_run() -> None:
    assert flagged("N7", [0.5] * 7 + [1.000001] + [0.5] * 14) == []
    assert flagged("N7", [0.5] * 7 + [1.000001] + [0.5] * 15) == [22]


def test_n7_fourteen_points_are_not_enough() -> None:
    assert flagged("N7", [0.2] * 14) == []


# N8: eight in a row none within 1 sigma, on both sides


def test_n8_eight_points_outside_one_sigma_on_both_sides_flag_the_eighth() -> None:
    mixture = [ABOVE_1, -ABOVE_1] * 4
    assert flagged("N8", mixture) == [7]
    assert flagged("N8", [*mixture, 3.5]) == [7, 8]


def test_n8_needs_points_on_both_sides() -> None:
    assert flagged("N8", [ABOVE_1] * 8) == []
    assert flagged("N8", [ABOVE_1] * 7 + [-ABOVE_1]) == [7]


def test_n8_point_exactly_at_one_sigma_is_within_and_breaks_the_run() -> None:
    values = [ABOVE_1, -ABOVE_1, ABOVE_1, 1.0, -ABOVE_1, ABOVE_1, -ABOVE_1, ABOVE_1, -ABOVE_1]
    assert flagged("N8", values) == []


# Rule sets, ordering, degenerate charts, validation


def test_violations_are_sorted_by_index_then_rule() -> None:
    violations = find_violations([0.5] * 9 + [3.5], center=0.0, sigma=1.0)

    assert violations == [("N2", 8), ("N1", 9), ("N2", 9)]


def test_western_electric_set_reports_we_rule_names() -> None:
    violations = find_violations([0.5] * 8 + [3.5], center=0.0, sigma=1.0, rules="western_electric")

    assert violations == [("WE4", 7), ("WE1", 8), ("WE4", 8)]


def test_rule_sets_hold_their_rules_in_order() -> None:
    assert list(rule_masks([0.0], 0.0, 1.0, "nelson")) == ["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8"]
    assert list(rule_masks([0.0], 0.0, 1.0, "western_electric")) == ["WE1", "WE2", "WE3", "WE4"]


def test_zero_sigma_constant_data_flags_nothing() -> None:
    assert find_violations([2.0] * 40, center=2.0, sigma=0.0) == []


def test_zero_sigma_switches_off_zone_rules_but_not_run_rules() -> None:
    masks = rule_masks([1.0] * 20, center=0.0, sigma=0.0)

    assert np.flatnonzero(masks["N2"]).tolist() == list(range(8, 20))
    for zone_rule in ("N1", "N5", "N6", "N7", "N8"):
        assert not masks[zone_rule].any(), zone_rule


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], []),
        ([5.0], [("N1", 0)]),
        ([5.0, 5.0], [("N1", 0), ("N1", 1)]),
        ([5.0, -5.0, 5.0], [("N1", 0), ("N1", 1), ("N1", 2), ("N5", 2)]),
    ],
)
def test_short_series_flag_only_what_fits(values: list[float], expected: list[tuple[str, int]]) -> None:
    assert find_violations(values, center=0.0, sigma=1.0) == expected


@pytest.mark.parametrize(("center", "sigma"), [(math.nan, 1.0), (0.0, -1.0), (0.0, math.inf)])
def test_invalid_centre_or_sigma_is_rejected(center: float, sigma: float) -> None:
    with pytest.raises(ValueError):
        find_violations([1.0, 2.0], center=center, sigma=sigma)


def test_non_finite_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        rule_mask("N1", [1.0, math.nan], 0.0, 1.0)


def test_unknown_rule_and_rule_set_are_rejected() -> None:
    with pytest.raises(ValueError, match="rule"):
        rule_mask("N9", [1.0], 0.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rule set"):
        find_violations([1.0], 0.0, 1.0, rules="shewhart")  # type: ignore[arg-type]


def test_every_rule_publishes_its_definition() -> None:
    for rule in (*RULE_SETS["nelson"], *RULE_SETS["western_electric"]):
        assert rule in RULE_DEFINITIONS[rule].split(":")[0], rule
