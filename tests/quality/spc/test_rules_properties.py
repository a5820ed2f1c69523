"""The vectorised rules agree with a plain-loop reference written straight from the rule definitions.

Series are built from segments (scattered points, repeats, trends, zigzags) at levels that often sit
exactly on a zone line or the centre, so the boundary conventions are exercised, not only the middle
of the zones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from erp_api.quality.spc.chart import classify_zones
from erp_api.quality.spc.rules import RULE_SETS, RuleName, RuleSet, find_violations, rule_masks

Series = list[float]
Window = Callable[[float], bool]


def reference_flags(rule: RuleName, x: Series, c: float, s: float) -> list[int]:
    """Indices flagged by ``rule``, checking every complete window with explicit loops."""

    def above(k: int) -> Window:
        return lambda v: v > c + k * s

    def below(k: int) -> Window:
        return lambda v: v < c - k * s

    def within_1(v: float) -> bool:
        return c - 1 * s <= v <= c + 1 * s

    def step(a: float, b: float) -> int:
        return (b > a) - (b < a)

    def k_of_m(window: Series, side: Window, k: int) -> bool:
        return side(window[-1]) and sum(1 for v in window if side(v)) >= k

    def check(window: Series) -> bool:
        steps = [step(window[j], window[j + 1]) for j in range(len(window) - 1)]
        if rule in ("N1", "WE1"):
            return above(3)(window[0]) or below(3)(window[0])
        if rule in ("N2", "WE4"):
            return all(map(above(0), window)) or all(map(below(0), window))
        if rule == "N3":
            return all(d == 1 for d in steps) or all(d == -1 for d in steps)
        if rule == "N4":
            return all(d != 0 for d in steps) and all(steps[j] != steps[j + 1] for j in range(len(steps) - 1))
        if rule in ("N5", "WE2"):
            return k_of_m(window, above(2), 2) or k_of_m(window, below(2), 2)
        if rule in ("N6", "WE3"):
            return k_of_m(window, above(1), 4) or k_of_m(window, below(1), 4)
        if rule == "N7":
            return all(within_1(v) for v in window)
        if rule == "N8":
            outside = all(not within_1(v) for v in window)
            return outside and any(map(above(1), window)) and any(map(below(1), window))
        raise AssertionError(rule)

    length = {"N1": 1, "WE1": 1, "N2": 9, "WE4": 8, "N3": 6, "N4": 14, "N5": 3, "WE2": 3}
    length |= {"N6": 5, "WE3": 5, "N7": 15, "N8": 8}
    if s == 0 and rule not in ("N2", "N3", "N4", "WE4"):
        return []
    m = length[rule]
    return [i for i in range(m - 1, len(x)) if check(x[i - m + 1 : i + 1])]


@st.composite
def charts(draw: st.DrawFn) -> tuple[Series, float, float]:
    center = draw(st.sampled_from([0.0, 1.5, -10.0, 0.1]))
    sigma = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 0.3]))
    on_lines = [center + k * sigma for k in range(-4, 5)] + [center - k * sigma for k in range(1, 5)]
    between = [center + (k + 0.5) * sigma for k in range(-4, 4)]
    level = st.one_of(
        st.sampled_from(on_lines + between),
        st.floats(min_value=center - 5 * sigma - 1, max_value=center + 5 * sigma + 1),
    )
    values: Series = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["points", "repeat", "trend", "zigzag"]))
        count = draw(st.integers(1, 20))
        if kind == "points":
            values += draw(st.lists(level, max_size=12))
        elif kind == "repeat":
            values += [draw(level)] * count
        elif kind == "trend":
            start, slope = draw(level), draw(st.sampled_from([-1.0, -0.25, 0.0, 0.25, 1.0]))
            values += [start + j * slope * max(sigma, 0.1) for j in range(count)]
        else:
            low, high = draw(level), draw(level)
            values += [low if j % 2 == 0 else high for j in range(count)]
    return values, center, sigma


RULE_SET_NAMES: list[RuleSet] = ["nelson", "western_electric"]


@settings(max_examples=400, deadline=None)
@given(charts())
def test_every_rule_matches_the_reference(chart: tuple[Series, float, float]) -> None:
    values, center, sigma = chart
    for rule_set in RULE_SET_NAMES:
        masks = rule_masks(values, center, sigma, rule_set)
        for rule, mask in masks.items():
            assert np.flatnonzero(mask).tolist() == reference_flags(rule, values, center, sigma), rule


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.05, 0.3]), st.integers(0, 400))
def test_every_rule_matches_the_reference_on_noisy_drifting_data(seed: int, drift: float, n: int) -> None:
    rng = np.random.default_rng(seed)
    values = (rng.normal(size=n) + drift * np.arange(n) / 10).round(1).tolist()
    for rule_set in RULE_SET_NAMES:
        for rule, mask in rule_masks(values, 0.0, 1.0, rule_set).items():
            assert np.flatnonzero(mask).tolist() == reference_flags(rule, values, 0.0, 1.0), rule


@settings(max_examples=200, deadline=None)
@given(charts(), st.sampled_from(RULE_SET_NAMES))
def test_violations_list_every_flag_sorted_by_index_then_rule(
    chart: tuple[Series, float, float], rule_set: RuleSet
) -> None:
    values, center, sigma = chart
    rules = RULE_SETS[rule_set]
    expected = sorted(
        ((rule, i) for rule in rules for i in reference_flags(rule, values, center, sigma)),
        key=lambda violation: (violation[1], rules.index(violation[0])),
    )
    assert find_violations(values, center, sigma, rule_set) == expected


@settings(max_examples=200, deadline=None)
@given(charts())
def test_zone_beyond_is_exactly_what_n1_flags(chart: tuple[Series, float, float]) -> None:
    values, center, sigma = chart
    assume(sigma > 0)
    beyond = [i for i, zone in enumerate(classify_zones(values, center, sigma)) if zone.zone == "beyond"]
    assert beyond == reference_flags("N1", values, center, sigma)
