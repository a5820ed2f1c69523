"""The individuals and moving-range charts as Chart objects: lines, points and rules on both charts."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erp_api.quality.spc.chart import Baseline, individuals_limits
from erp_api.quality.spc.individuals import individuals_charts
from erp_api.quality.spc.rules import find_violations
from tests.quality.spc.references import assert_json_safe

# NIST/SEMATECH e-Handbook 6.3.2.2, individuals control chart example.
NIST_VALUES = [49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1]
# Montgomery, viscosity of an aircraft primer (individuals example; the qcc output for it, as checked
# by the mistat package against R, is centre 33.52333, sigma 0.4261651, limits 32.24484 / 34.80183).
VISCOSITY = [
    33.75,
    33.05,
    34,
    33.81,
    33.46,
    34.02,
    33.68,
    33.27,
    33.49,
    33.20,
    33.62,
    33.00,
    33.54,
    33.12,
    33.84,
]


def test_nist_example_lines() -> None:
    x_chart, mr_chart = individuals_charts(NIST_VALUES)

    assert (x_chart.name, mr_chart.name) == ("individuals", "mr")
    assert round(x_chart.center or 0, 2) == 50.81
    assert round(x_chart.ucl or 0, 4) == 55.8041
    assert round(x_chart.lcl or 0, 4) == 45.8159
    assert round(mr_chart.center or 0, 4) == 1.8778
    assert round(mr_chart.ucl or 0, 4) == 6.1347
    assert mr_chart.lcl == 0.0
    assert x_chart.sigma_method == "mr_bar"


def test_viscosity_example_matches_qcc() -> None:
    x_chart, _ = individuals_charts(VISCOSITY)

    assert x_chart.center == pytest.approx(33.52333, abs=5e-6)
    assert x_chart.process_sigma == pytest.approx(0.4261651, abs=5e-8)
    assert x_chart.lcl == pytest.approx(32.24484, abs=5e-6)
    assert x_chart.ucl == pytest.approx(34.80183, abs=5e-6)


def test_mr_chart_has_one_point_per_moving_range_labelled_with_the_later_value() -> None:
    _, mr_chart = individuals_charts([1.0, 4.0, 2.0], labels=["a", "b", "c"])

    assert [(p.label, p.value, p.n) for p in mr_chart.points] == [("b", 3.0, 2), ("c", 2.0, 2)]


def test_mr_chart_flags_a_jump_beyond_d4_times_mr_bar() -> None:
    values = [10.0, 10.5, 10.0, 10.5, 10.0, 10.5, 10.0, 10.5, 10.0, 10.5, 30.0]
    _, mr_chart = individuals_charts(values)

    mr_bar = (9 * 0.5 + 19.5) / 10  # nine ranges of 0.5 and the jump of 19.5
    assert mr_chart.ucl == pytest.approx(3.267 * mr_bar)
    assert mr_chart.rules == ["N1"]
    assert [p.label for p in mr_chart.points if p.violations] == ["11"]
    assert mr_chart.points[-1].violations == ["N1"]


def test_western_electric_names_the_mr_rule_we1() -> None:
    _, mr_chart = individuals_charts([0.0, 0.1, 0.0, 0.1, 0.0, 5.0], rules="western_electric")

    assert mr_chart.rules == ["WE1"]
    assert mr_chart.points[-1].violations == ["WE1"]


def test_x_chart_violations_are_exactly_the_rule_engines() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(0, 1, 60), rng.normal(2.0, 1, 40)]).round(2)
    x_chart, _ = individuals_charts(values)
    limits = individuals_limits(values)
    assert limits.center is not None and limits.sigma is not None

    expected = find_violations(values, limits.center, limits.sigma)
    got = [(rule, i) for i, point in enumerate(x_chart.points) for rule in point.violations]
    assert sorted(got, key=lambda v: (v[1], v[0])) == sorted(expected, key=lambda v: (v[1], v[0]))
    assert x_chart.zone_sigma == limits.sigma
    assert x_chart.rules == ["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8"]


def test_baseline_sets_the_x_chart_and_the_mr_chart_still_describes_the_data() -> None:
    x_chart, mr_chart = individuals_charts(NIST_VALUES, baseline=Baseline(center=50.0, sigma=2.0))

    assert (x_chart.center, x_chart.ucl, x_chart.lcl, x_chart.sigma_method) == (50.0, 56.0, 44.0, "baseline")
    assert round(mr_chart.center or 0, 4) == 1.8778


def test_single_point_has_no_lines_and_no_rules() -> None:
    x_chart, mr_chart = individuals_charts([4.2])

    assert x_chart.center == 4.2
    assert x_chart.ucl is x_chart.lcl is None
    assert x_chart.rules == [] and mr_chart.rules == []
    assert mr_chart.points == []


def test_no_points() -> None:
    x_chart, mr_chart = individuals_charts([])

    assert x_chart.points == mr_chart.points == []
    assert x_chart.center is None


def test_labels_must_match_the_points() -> None:
    with pytest.raises(ValueError, match="labels"):
        individuals_charts([1.0, 2.0], labels=["only one"])


def test_unknown_rule_set_is_rejected() -> None:
    with pytest.raises(ValueError, match="rule set"):
        individuals_charts([1.0], rules="bogus")  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=60))
def test_charts_are_json_safe_even_for_extreme_values(values: list[float]) -> None:
    charts = individuals_charts(values)
    assert_json_safe(charts)
    assert (
        orjson.loads(orjson.dumps([dataclasses.asdict(chart) for chart in charts]))[0]["name"]
        == "individuals"
    )
