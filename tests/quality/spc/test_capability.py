"""Capability and performance indices against hand computations.

Series [9, 11, 10, 12, 8]: mean 10; moving ranges 2, 1, 2, 4 so MR-bar = 2.25 and
sigma_within = 2.25 / 1.128 = 1.994681; sample variance (1 + 1 + 0 + 4 + 4) / 4 = 2.5, s = 1.581139.
With LSL 4 and USL 19 the distances to the limits are 6 (lower) and 9 (upper):
Cp = 15 / (6 * 1.994681) = 1.253333, Cpk = 6 / (3 * 1.994681) = 1.002667,
Pp = 15 / (6 * 1.581139) = 1.581139, Ppk = 6 / (3 * 1.581139) = 1.264911.
"""

from __future__ import annotations

import math

import pytest

from erp_api.quality.spc.capability import Capability, process_capability

SERIES = [9.0, 11.0, 10.0, 12.0, 8.0]
UNDEFINED = Capability(cp=None, cpk=None, pp=None, ppk=None)


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-6)


def test_two_sided_indices_match_hand_computation() -> None:
    capability = process_capability(SERIES, lsl=4.0, usl=19.0)

    assert capability.cp == approx(1.253333)
    assert capability.cpk == approx(1.002667)
    assert capability.pp == approx(1.581139)
    assert capability.ppk == approx(1.264911)


def test_upper_limit_only_gives_one_sided_indices() -> None:
    capability = process_capability(SERIES, usl=19.0)

    assert capability.cp is None
    assert capability.pp is None
    assert capability.cpk == approx(1.504)  # 9 / (3 * 1.994681)
    assert capability.ppk == approx(1.897367)  # 9 / (3 * 1.581139)


def test_lower_limit_only_gives_one_sided_indices() -> None:
    capability = process_capability(SERIES, lsl=4.0)

    assert capability.cp is None
    assert capability.pp is None
    assert capability.cpk == approx(1.002667)
    assert capability.ppk == approx(1.264911)


def test_mean_outside_the_limits_gives_a_negative_cpk() -> None:
    capability = process_capability(SERIES, lsl=0.0, usl=9.0)

    assert capability.cpk == approx(-0.167111)  # (9 - 10) / (3 * 1.994681)
    assert capability.ppk == approx(-0.210819)  # (9 - 10) / (3 * 1.581139)


def test_no_limits_give_no_indices() -> None:
    assert process_capability(SERIES) == UNDEFINED


@pytest.mark.parametrize("values", [[], [5.0]])
def test_fewer_than_two_points_give_no_indices(values: list[float]) -> None:
    assert process_capability(values, lsl=0.0, usl=10.0) == UNDEFINED


def test_constant_data_gives_no_indices() -> None:
    # Twenty 0.1s: a float standard deviation would be ~1e-17 and Pp astronomically large.
    assert process_capability([0.1] * 20, lsl=0.0, usl=1.0) == UNDEFINED


@pytest.mark.parametrize(("lsl", "usl"), [(5.0, 5.0), (6.0, 5.0)])
def test_lower_limit_must_be_below_upper_limit(lsl: float, usl: float) -> None:
    with pytest.raises(ValueError, match="lsl"):
        process_capability(SERIES, lsl=lsl, usl=usl)


@pytest.mark.parametrize(("lsl", "usl"), [(math.nan, 5.0), (None, math.inf)])
def test_spec_limits_must_be_finite(lsl: float | None, usl: float | None) -> None:
    with pytest.raises(ValueError, match="finite"):
        process_capability(SERIES, lsl=lsl, usl=usl)


def test_non_finite_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        process_capability([1.0, math.inf], lsl=0.0, usl=2.0)
