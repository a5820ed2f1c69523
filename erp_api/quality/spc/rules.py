"""Nelson and Western Electric run rules on an individuals chart, vectorised with numpy.

Conventions shared by every rule. x is the series, c the centre line, s the sigma, and the lines
c - k*s and c + k*s come from :func:`~erp_api.quality.spc.chart.zone_line`:

- "Beyond k sigma" is strict: above means x > c + k*s, below means x < c - k*s. "Within k sigma" is
  inclusive: c - k*s <= x <= c + k*s. "Above/below the centre" is x > c / x < c; a point exactly on
  the centre line is on neither side, so it breaks a one-side run.
- A rule looks at windows of m consecutive points; point i is flagged when it completes (is the last
  point of) a window x[i-m+1..i] that satisfies the rule. Every such point is flagged, so a run of
  ten points on one side flags the 9th and the 10th under N2. Windows are complete windows only: no
  rule flags a point before m points have been seen.
- For the k-of-m rules (N5, N6) the completing point is flagged only if it is itself one of the
  points beyond the zone on that side.
- The zone rules (N1, N5, N6, N7, N8 and WE1-WE3) need a spread: with s = 0 they flag nothing.

Each rule is computed as a boolean mask over the points from window counts taken with cumulative
sums, so a rule costs a handful of linear numpy passes whatever its window length.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from erp_api.quality.spc.chart import BoolArray, FloatArray, Values, as_series, check_center_sigma, zone_line

RuleSet = Literal["nelson", "western_electric"]
RuleName = Literal["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "WE1", "WE2", "WE3", "WE4"]

RULE_SETS: Mapping[RuleSet, tuple[RuleName, ...]] = {
    "nelson": ("N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8"),
    "western_electric": ("WE1", "WE2", "WE3", "WE4"),
}


# (rule, index): point ``index`` (0-based, in measurement order) completes a window breaking ``rule``.
Violation: TypeAlias = tuple[RuleName, int]


class _Chart:
    """One series against one centre and sigma, with the comparisons the rules share computed once."""

    def __init__(self, series: FloatArray, center: float, sigma: float) -> None:
        self.series = series
        self.center = center
        self.sigma = sigma
        self._beyond: dict[tuple[int, bool], BoolArray] = {}
        self._steps: tuple[BoolArray, BoolArray] | None = None

    def above(self, k: int) -> BoolArray:
        """x > c + k sigma (k = 0: above the centre line)."""
        return self._compare(k, upper=True)

    def below(self, k: int) -> BoolArray:
        """x < c - k sigma (k = 0: below the centre line)."""
        return self._compare(k, upper=False)

    def _compare(self, k: int, *, upper: bool) -> BoolArray:
        key = (k, upper)
        if key not in self._beyond:
            lower_line, upper_line = zone_line(self.center, self.sigma, k)
            self._beyond[key] = self.series > upper_line if upper else self.series < lower_line
        return self._beyond[key]

    def steps(self) -> tuple[BoolArray, BoolArray]:
        """(rising, falling): element j compares x[j+1] with x[j], strictly; length n - 1."""
        if self._steps is None:
            later, earlier = self.series[1:], self.series[:-1]
            self._steps = (later > earlier, later < earlier)
        return self._steps

    def nothing(self) -> BoolArray:
        return np.zeros(self.series.size, dtype=np.bool_)


def _window_count(mask: BoolArray, m: int) -> npt.NDArray[np.signedinteger[Any]]:
    """Element i = number of True in mask[i-m+1..i]; 0 where that window is incomplete (i < m-1)."""
    # numpy sums bool into int32 over ten times faster than into int64; int32 holds any count < 2**31.
    dtype: type[np.signedinteger[Any]] = np.int32 if mask.size < 2**31 else np.int64
    counts: npt.NDArray[np.signedinteger[Any]] = np.zeros(mask.size, dtype=dtype)
    if mask.size >= m:
        cumulative: npt.NDArray[np.signedinteger[Any]] = np.zeros(mask.size + 1, dtype=dtype)
        np.cumsum(mask, dtype=dtype, out=cumulative[1:])
        counts[m - 1 :] = cumulative[m:] - cumulative[: mask.size - m + 1]
    return counts


def _run(mask: BoolArray, m: int) -> BoolArray:
    """True where mask[i-m+1..i] are all True."""
    full: BoolArray = _window_count(mask, m) == m
    return full


def _k_of_m(mask: BoolArray, k: int, m: int) -> BoolArray:
    """True where mask[i] and at least k of mask[i-m+1..i] are True (complete windows only)."""
    return mask & (_window_count(mask, m) >= k)


def _shift(mask: BoolArray, offset: int, n: int) -> BoolArray:
    """Map a mask over steps (or pairs of steps) onto the point completing each: pad ``offset`` Falses."""
    points = np.zeros(n, dtype=np.bool_)
    if n > offset:
        points[offset:] = mask
    return points


def _beyond_3_sigma(chart: _Chart) -> BoolArray:
    """N1 / WE1: the point is beyond 3 sigma: x > c + 3*s or x < c - 3*s."""
    return chart.above(3) | chart.below(3)


def _nine_on_one_side(chart: _Chart) -> BoolArray:
    """N2: nine points in a row all above the centre (x > c) or all below it (x < c)."""
    return _run(chart.above(0), 9) | _run(chart.below(0), 9)


def _six_trending(chart: _Chart) -> BoolArray:
    """N3: six points in a row steadily increasing, x[i-5] < x[i-4] < ... < x[i], or decreasing (strict).

    A tie (two equal successive points) breaks the trend.
    """
    rising, falling = chart.steps()
    return _shift(_run(rising, 5) | _run(falling, 5), 1, chart.series.size)


def _fourteen_alternating(chart: _Chart) -> BoolArray:
    """N4: fourteen points x[i-13..i] whose 13 successive differences alternate in sign (up, down, ...).

    A zero difference (a tie) has no sign and breaks the pattern.
    """
    rising, falling = chart.steps()
    flips = (rising[:-1] & falling[1:]) | (falling[:-1] & rising[1:])
    return _shift(_run(flips, 12), 2, chart.series.size)


def _two_of_three_beyond_2_sigma(chart: _Chart) -> BoolArray:
    """N5 / WE2: two of three points in a row beyond 2 sigma on the same side, the last one among them.

    Flags x[i] when x[i] > c + 2*s and at least one of x[i-2], x[i-1] is too; likewise below c - 2*s.
    """
    return _k_of_m(chart.above(2), 2, 3) | _k_of_m(chart.below(2), 2, 3)


def _four_of_five_beyond_1_sigma(chart: _Chart) -> BoolArray:
    """N6 / WE3: four of five points in a row beyond 1 sigma on the same side, the last one among them.

    Flags x[i] when x[i] > c + s and at least three of x[i-4..i-1] are too; likewise below c - s.
    """
    return _k_of_m(chart.above(1), 4, 5) | _k_of_m(chart.below(1), 4, 5)


def _fifteen_within_1_sigma(chart: _Chart) -> BoolArray:
    """N7: fifteen points in a row within 1 sigma (c - s <= x <= c + s), either side or on the centre."""
    return _run(~(chart.above(1) | chart.below(1)), 15)


def _eight_outside_1_sigma(chart: _Chart) -> BoolArray:
    """N8: eight points in a row none within 1 sigma (each x > c + s or x < c - s), some on each side.

    At least one of the eight is above c + s and at least one is below c - s.
    """
    above, below = chart.above(1), chart.below(1)
    both_sides = (_window_count(above, 8) > 0) & (_window_count(below, 8) > 0)
    return _run(above | below, 8) & both_sides


def _eight_on_one_side(chart: _Chart) -> BoolArray:
    """WE4: eight points in a row all above the centre (x > c) or all below it (x < c)."""
    return _run(chart.above(0), 8) | _run(chart.below(0), 8)


_RULES: Mapping[RuleName, Callable[[_Chart], BoolArray]] = {
    "N1": _beyond_3_sigma,
    "N2": _nine_on_one_side,
    "N3": _six_trending,
    "N4": _fourteen_alternating,
    "N5": _two_of_three_beyond_2_sigma,
    "N6": _four_of_five_beyond_1_sigma,
    "N7": _fifteen_within_1_sigma,
    "N8": _eight_outside_1_sigma,
    "WE1": _beyond_3_sigma,
    "WE2": _two_of_three_beyond_2_sigma,
    "WE3": _four_of_five_beyond_1_sigma,
    "WE4": _eight_on_one_side,
}
# How many consecutive points each rule's pattern spans (m above): the points an alert names, and
# why a check of new points needs at most RULE_LOOKBACK points before each of them.
RULE_WINDOWS: Mapping[RuleName, int] = {
    "N1": 1,
    "N2": 9,
    "N3": 6,
    "N4": 14,
    "N5": 3,
    "N6": 5,
    "N7": 15,
    "N8": 8,
    "WE1": 1,
    "WE2": 3,
    "WE3": 5,
    "WE4": 8,
}
RULE_LOOKBACK = max(RULE_WINDOWS.values()) - 1
_ZONE_RULES: frozenset[RuleName] = frozenset({"N1", "N5", "N6", "N7", "N8", "WE1", "WE2", "WE3"})
# The exact definition of each rule, for API consumers: the docstring of the function implementing it.
RULE_DEFINITIONS: Mapping[RuleName, str] = {
    name: inspect.cleandoc(rule.__doc__ or "") for name, rule in _RULES.items()
}


def _mask(chart: _Chart, rule: RuleName) -> BoolArray:
    if rule not in _RULES:
        raise ValueError(f"unknown SPC rule {rule!r}")
    if chart.sigma == 0 and rule in _ZONE_RULES:
        return chart.nothing()
    return _RULES[rule](chart)


def rule_mask(rule: RuleName, values: Values, center: float, sigma: float) -> BoolArray:
    """Boolean mask over ``values``: True at each point flagged by ``rule`` (see the module docstring)."""
    check_center_sigma(center, sigma)
    return _mask(_Chart(as_series(values), center, sigma), rule)


def rule_masks(
    values: Values, center: float, sigma: float, rules: RuleSet = "nelson"
) -> dict[RuleName, BoolArray]:
    """Masks for every rule of the set ``"nelson"`` (N1-N8) or ``"western_electric"`` (WE1-WE4)."""
    if rules not in RULE_SETS:
        raise ValueError(f"unknown SPC rule set {rules!r}")
    check_center_sigma(center, sigma)
    chart = _Chart(as_series(values), center, sigma)
    return {rule: _mask(chart, rule) for rule in RULE_SETS[rules]}


def find_violations(
    values: Values, center: float, sigma: float, rules: RuleSet = "nelson"
) -> list[Violation]:
    """Every (rule, index) flagged by the rule set, sorted by index, then by rule order in the set."""
    masks = list(rule_masks(values, center, sigma, rules).values())
    names = RULE_SETS[rules]
    indices = [np.flatnonzero(mask) for mask in masks]
    index = np.concatenate(indices)
    code = np.repeat(np.arange(len(names)), [hits.size for hits in indices])
    order = np.lexsort((code, index))
    return [(names[c], i) for c, i in zip(code[order].tolist(), index[order].tolist(), strict=True)]
