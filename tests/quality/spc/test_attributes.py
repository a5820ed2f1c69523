"""p, np, c and u charts: published examples, varying sample sizes, standards and a plain-loop reference.

Reference data (shipped with R's qcc as ``orangejuice`` and ``circuit``):

- Frozen orange juice cans, 30 samples of 50 (Montgomery, "Introduction to Statistical Quality
  Control", Example 7.1; also NIST/SEMATECH e-Handbook 6.3.3.2): p-bar = 0.2313, UCL = 0.4102,
  LCL = 0.0524, samples 15 and 23 beyond the UCL. Without those two: p-bar = 0.2150, UCL = 0.3893,
  LCL = 0.0407 and sample 21 beyond. qcc's output (as recorded by the mistat package's comparison
  with R) gives more digits: 0.2313333, 0.05242755 / 0.4102391, and 0.215, 0.04070284 / 0.3892972.
- Nonconformities on printed circuit boards, 26 samples of 100 boards (Montgomery, Example 7.3):
  c-bar = 19.85, UCL = 33.22, LCL = 6.48 (from the rounded c-bar), samples 6 and 20 outside; from
  the exact c-bar = 516 / 26 the limits are 33.21086 / 6.481447.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erp_api.quality.spc.attributes import c_chart, np_chart, p_chart, u_chart
from erp_api.quality.spc.chart_result import Point
from erp_api.quality.spc.rules import RuleSet
from tests.quality.spc.references import assert_json_safe, chart_violations, location_flags, point_violations

ORANGE_JUICE = [
    12,
    15,
    8,
    10,
    4,
    7,
    16,
    9,
    14,
    10,
    5,
    6,
    17,
    12,
    22,
    8,
    10,
    5,
    13,
    11,
    20,
    18,
    24,
    15,
    9,
    12,
    7,
    13,
    9,
    6,
]
CIRCUIT = [
    21,
    24,
    16,
    12,
    15,
    5,
    28,
    20,
    31,
    25,
    20,
    24,
    16,
    19,
    10,
    17,
    13,
    22,
    18,
    39,
    30,
    24,
    16,
    19,
    17,
    15,
]


def beyond(points: list[Point]) -> list[str]:
    return [p.label for p in points if "N1" in p.violations]


def test_orange_juice_p_chart() -> None:
    [chart] = p_chart(ORANGE_JUICE, 50)

    assert chart.center == pytest.approx(0.2313333, abs=5e-8)
    assert chart.ucl == pytest.approx(0.4102391, abs=5e-8)
    assert chart.lcl == pytest.approx(0.05242755, abs=5e-9)
    assert (round(chart.center or 0, 4), round(chart.ucl or 0, 4), round(chart.lcl or 0, 4)) == (
        0.2313,
        0.4102,
        0.0524,
    )
    assert beyond(chart.points) == ["15", "23"]
    assert chart.sigma_method == "binomial"


def test_orange_juice_p_chart_after_removing_the_assignable_causes() -> None:
    keep = [i for i in range(30) if i + 1 not in (15, 23)]
    [chart] = p_chart([ORANGE_JUICE[i] for i in keep], 50, labels=[str(i + 1) for i in keep])

    assert chart.center == pytest.approx(0.215, abs=1e-12)
    assert chart.ucl == pytest.approx(0.3892972, abs=5e-8)
    assert chart.lcl == pytest.approx(0.04070284, abs=5e-9)
    assert beyond(chart.points) == ["21"]


def test_np_chart_is_the_p_chart_times_n() -> None:
    [p] = p_chart(ORANGE_JUICE, 50)
    [np_] = np_chart(ORANGE_JUICE, 50)

    assert np_.center == pytest.approx(50 * (p.center or 0))
    assert np_.ucl == pytest.approx(50 * (p.ucl or 0))
    assert np_.lcl == pytest.approx(50 * (p.lcl or 0))
    assert chart_violations(np_) == chart_violations(p)


def test_circuit_board_c_chart() -> None:
    [chart] = c_chart(CIRCUIT)

    assert round(chart.center or 0, 2) == 19.85
    assert chart.ucl == pytest.approx(33.21086, abs=5e-6)
    assert chart.lcl == pytest.approx(6.481447, abs=5e-7)
    assert chart.ucl == pytest.approx(33.22, abs=0.01)
    assert chart.lcl == pytest.approx(6.48, abs=0.01)
    assert beyond(chart.points) == ["6", "20"]
    assert chart.points[0].n is None


def test_u_chart_with_varying_sizes_has_per_point_limits_and_no_zone_rules() -> None:
    sizes = [100] * 20 + [50] * 6
    [chart] = u_chart(CIRCUIT, sizes)

    u_bar = sum(CIRCUIT) / sum(sizes)
    assert chart.center == pytest.approx(u_bar)
    assert chart.ucl is chart.lcl is chart.zone_sigma is None
    assert chart.points[0].ucl == pytest.approx(u_bar + 3 * math.sqrt(u_bar / 100))
    assert chart.points[-1].ucl == pytest.approx(u_bar + 3 * math.sqrt(u_bar / 50))
    assert chart.rules == ["N1", "N2", "N3", "N4"]


def test_u_chart_with_equal_sizes_is_the_c_chart_scaled() -> None:
    [u] = u_chart(CIRCUIT, 100)
    [c] = c_chart(CIRCUIT)

    assert u.center == pytest.approx((c.center or 0) / 100)
    assert u.ucl == pytest.approx((c.ucl or 0) / 100)
    assert u.rules == c.rules == ["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8"]
    assert chart_violations(u) == chart_violations(c)


def test_lcl_is_floored_at_zero_and_the_p_ucl_capped_at_one() -> None:
    [chart] = p_chart([1, 0, 2, 1, 9], 10)  # p-bar 0.26, sigma 0.1387

    assert chart.lcl == 0.0
    [small] = p_chart([1, 1, 0], 2)  # p-bar 1/3, 3 sigma = 1.0 above
    assert small.ucl == 1.0
    assert small.lcl == 0.0


def test_a_standard_replaces_the_centre() -> None:
    [chart] = p_chart(ORANGE_JUICE, 50, standard=0.2)

    assert chart.center == 0.2
    assert chart.ucl == pytest.approx(0.2 + 3 * math.sqrt(0.2 * 0.8 / 50))
    assert chart.sigma_method == "baseline"
    assert chart.parameters == {"standard": 0.2}


def test_zero_defects_give_limits_of_zero_width_and_no_flags() -> None:
    [chart] = c_chart([0, 0, 0, 0])
    assert chart.center == chart.ucl == chart.lcl == 0.0
    assert not any(p.violations for p in chart.points)


def test_empty_charts() -> None:
    [chart] = p_chart([], [])
    assert chart.points == [] and chart.center is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: p_chart([1, 2], [5]), "sample sizes"),
        (lambda: p_chart([6], [5]), "more defectives"),
        (lambda: p_chart([1.5], [5]), "whole numbers"),
        (lambda: p_chart([-1], [5]), "whole numbers"),
        (lambda: p_chart([1], [0]), "sample sizes"),
        (lambda: u_chart([1], [2.5]), "sample sizes"),
        (lambda: p_chart([1], [5], standard=1.0), "standard"),
        (lambda: c_chart([1], standard=0.0), "standard"),
        (lambda: c_chart([math.nan]), "finite"),
    ],
)
def test_invalid_input_is_rejected(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


# Plain-loop reference ------------------------------------------------------------------------------


def reference(kind: str, counts: list[int], sizes: list[int], rules: RuleSet) -> dict[str, object]:
    if kind in ("p", "u"):
        center = sum(counts) / sum(sizes)
        values = [c / n for c, n in zip(counts, sizes, strict=True)]
        variance = center * (1 - center) if kind == "p" else center
        sigmas = [math.sqrt(variance / n) for n in sizes]
    elif kind == "np":
        fraction = sum(counts) / sum(sizes)
        center, values = sizes[0] * fraction, [float(c) for c in counts]
        sigmas = [math.sqrt(sizes[0] * fraction * (1 - fraction))] * len(counts)
    else:
        center, values = sum(counts) / len(counts), [float(c) for c in counts]
        sigmas = [math.sqrt(center)] * len(counts)
    cap = {"p": 1.0, "np": float(sizes[0])}.get(kind, math.inf)
    ucl = [min(cap, center + 3 * s) for s in sigmas]
    lcl = [max(0.0, center - 3 * s) for s in sigmas]
    constant = all(s == sigmas[0] for s in sigmas)
    flags = location_flags(values, center, sigmas, ucl, lcl, rules, zones=constant)
    return {"center": center, "values": values, "ucl": ucl, "lcl": lcl,
            "violations": point_violations(flags, len(counts))}  # fmt: skip


@st.composite
def samples(draw: st.DrawFn) -> tuple[str, list[int], list[int]]:
    kind = draw(st.sampled_from(["p", "np", "c", "u"]))
    count = draw(st.integers(1, 40))
    if kind in ("np", "c") or draw(st.booleans()):
        sizes = [draw(st.integers(1, 200))] * count
    else:
        sizes = draw(st.lists(st.integers(1, 200), min_size=count, max_size=count))
    bounded = kind in ("p", "np")
    counts = [draw(st.integers(0, n if bounded else 3 * n)) for n in sizes]
    return kind, counts, sizes


@settings(max_examples=300, deadline=None)
@given(samples(), st.sampled_from(["nelson", "western_electric"]))
def test_charts_match_the_plain_loop_reference(
    sample: tuple[str, list[int], list[int]], rules: RuleSet
) -> None:
    kind, counts, sizes = sample
    if kind == "p":
        [chart] = p_chart(counts, sizes, rules=rules)
    elif kind == "np":
        [chart] = np_chart(counts, sizes[0], rules=rules)
    elif kind == "c":
        [chart] = c_chart(counts, rules=rules)
    else:
        [chart] = u_chart(counts, sizes, rules=rules)
    expected = reference(kind, counts, sizes, rules)
    assert_json_safe(chart)

    assert [p.center for p in chart.points] == pytest.approx([expected["center"]] * len(counts), rel=1e-12)
    assert [p.value for p in chart.points] == pytest.approx(expected["values"], rel=1e-12)
    assert [p.ucl for p in chart.points] == pytest.approx(expected["ucl"], rel=1e-12)
    assert [p.lcl for p in chart.points] == pytest.approx(expected["lcl"], rel=1e-12, abs=1e-15)
    assert chart_violations(chart) == expected["violations"]
