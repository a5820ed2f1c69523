"""The per-parameter SPC result: chart lines, violations and capability together, JSON-safe."""

from __future__ import annotations

import math

import orjson
import pytest

from erp_api.quality.spc.series import Baseline, analyse_series, build_report, spc_report

NIST_VALUES = [49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1]


def rounded(value: float | None, digits: int) -> float:
    assert value is not None
    return round(value, digits)


REPORT_KEYS = {
    "parameter",
    "n",
    "center",
    "sigma",
    "ucl",
    "lcl",
    "mr_bar",
    "mr_ucl",
    "cp",
    "cpk",
    "pp",
    "ppk",
    "violations",
}


def assert_json_safe(report: object) -> None:
    """Every float is finite (orjson would quietly write NaN as null) and the dict round-trips."""

    def walk(node: object) -> None:
        if isinstance(node, float):
            assert math.isfinite(node)
        elif isinstance(node, dict):
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(report)
    assert orjson.loads(orjson.dumps(report)) == report


def test_report_of_the_nist_example_has_the_exact_shape_and_handbook_lines() -> None:
    report = spc_report("diameter", NIST_VALUES, lsl=40.0, usl=60.0)

    assert set(report) == REPORT_KEYS
    assert report["parameter"] == "diameter"
    assert report["n"] == 10
    assert rounded(report["center"], 2) == 50.81
    assert rounded(report["mr_bar"], 4) == 1.8778
    assert rounded(report["ucl"], 4) == 55.8041
    assert rounded(report["lcl"], 4) == 45.8159
    assert report["violations"] == []
    assert report["cp"] == pytest.approx(20 / (6 * 1.8777777777777 / 1.128))
    assert_json_safe(report)


def test_report_lists_violations_with_their_values_in_index_order() -> None:
    values = [0.0, 1.0, -1.0, 0.5, -0.5, 0.0, 1.0, -1.0, 0.5, -0.5, 9.0]

    report = spc_report("weight", values, baseline=Baseline(center=0.0, sigma=1.0))

    assert report["violations"] == [{"rule": "N1", "index": 10, "value": 9.0}]
    assert (report["center"], report["sigma"], report["ucl"], report["lcl"]) == (0.0, 1.0, 3.0, -3.0)


def test_baseline_detects_a_shift_the_data_alone_would_absorb() -> None:
    shifted = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.1, 10.0, 10.2]

    own = analyse_series(shifted)
    against_baseline = analyse_series(shifted, baseline=Baseline(center=9.0, sigma=0.5))

    # Baseline lines: c + s = 9.5, c + 2s = 10.0 (10.0 itself is not beyond), c + 3s = 10.5.
    assert own.violations == ()
    assert against_baseline.violations == (
        ("N5", 3),
        ("N6", 4),
        ("N6", 5),
        ("N6", 6),
        ("N6", 7),
        ("N2", 8),
        ("N5", 8),
        ("N6", 8),
    )


def test_western_electric_report_uses_we_rule_names() -> None:
    report = spc_report("pH", [0.5] * 8, rules="western_electric", baseline=Baseline(center=0.0, sigma=1.0))

    assert report["violations"] == [{"rule": "WE4", "index": 7, "value": 0.5}]


def test_capability_uses_the_data_even_with_a_baseline() -> None:
    values = [9.0, 11.0, 10.0, 12.0, 8.0]

    with_baseline = analyse_series(values, baseline=Baseline(center=0.0, sigma=100.0), lsl=4.0, usl=19.0)

    assert with_baseline.capability == analyse_series(values, lsl=4.0, usl=19.0).capability


def test_constant_data_reports_zero_sigma_no_capability_and_no_violations() -> None:
    report = spc_report("temperature", [0.1] * 30, lsl=0.0, usl=1.0)

    assert (report["center"], report["sigma"], report["ucl"], report["lcl"]) == (0.1, 0.0, 0.1, 0.1)
    assert (report["cp"], report["cpk"], report["pp"], report["ppk"]) == (None, None, None, None)
    assert report["violations"] == []
    assert_json_safe(report)


@pytest.mark.parametrize("values", [[], [3.0]])
def test_fewer_than_two_points_report_nulls_without_failing(values: list[float]) -> None:
    report = spc_report("hardness", values, lsl=0.0, usl=10.0)

    assert report["n"] == len(values)
    assert report["sigma"] is report["ucl"] is report["lcl"] is report["mr_bar"] is None
    assert report["cp"] is report["cpk"] is report["pp"] is report["ppk"] is None
    assert report["violations"] == []
    assert_json_safe(report)


def test_single_point_against_a_baseline_can_break_n1() -> None:
    report = spc_report("hardness", [7.5], baseline=Baseline(center=5.0, sigma=0.5))

    assert report["violations"] == [{"rule": "N1", "index": 0, "value": 7.5}]


def test_violation_indices_address_the_callers_rows() -> None:
    # The service attaches measured_at per violation by index into its own ordered rows.
    rows = [(f"2024-01-{day:02d}", value) for day, value in enumerate([0.0, 0.2, 4.0, 0.1], start=1)]

    analysis = analyse_series([value for _, value in rows], baseline=Baseline(center=0.0, sigma=1.0))

    assert [(rule, rows[index][0]) for rule, index in analysis.violations] == [("N1", "2024-01-03")]


def test_build_report_refuses_values_of_another_length() -> None:
    analysis = analyse_series([1.0, 2.0, 3.0])

    with pytest.raises(ValueError, match="3 values"):
        build_report("x", [1.0, 2.0], analysis)


@pytest.mark.parametrize(
    "kwargs",
    [{"rules": "shewhart"}, {"lsl": 5.0, "usl": 1.0}],
)
def test_invalid_options_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        spc_report("x", [1.0, 2.0, 3.0], **kwargs)  # type: ignore[arg-type]


def test_non_finite_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        spc_report("x", [1.0, math.nan])
