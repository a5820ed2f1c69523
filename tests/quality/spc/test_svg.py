"""SVG output: well-formed XML, byte-identical across calls, and the elements a reader relies on."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erp_api.quality.spc.attributes import u_chart
from erp_api.quality.spc.capability import capability_report
from erp_api.quality.spc.individuals import individuals_charts
from erp_api.quality.spc.subgroups import xbar_r_charts
from erp_api.quality.spc.svg import capability_svg, control_chart_svg, nice_ticks
from erp_api.quality.spc.timeweighted import cusum_charts

NS = {"svg": "http://www.w3.org/2000/svg"}
NIST_VALUES = [49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def panels(root: ET.Element) -> list[ET.Element]:
    return root.findall("svg:g[@class='panel']", NS)


def classed(element: ET.Element, css: str) -> list[ET.Element]:
    return [e for e in element.iter() if css in (e.get("class") or "").split()]


def test_control_chart_is_xml_with_one_panel_per_chart() -> None:
    root = parse(control_chart_svg(individuals_charts(NIST_VALUES), title="Thickness"))

    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert [p.get("data-chart") for p in panels(root)] == ["individuals", "mr"]
    assert root.find("svg:title", NS) is not None


def test_the_same_charts_give_the_same_bytes() -> None:
    charts = individuals_charts(np.random.default_rng(5).normal(10, 1, 300))
    assert control_chart_svg(charts, title="a", lsl=7.0, usl=13.0) == control_chart_svg(
        charts, title="a", lsl=7.0, usl=13.0
    )
    report = capability_report(np.random.default_rng(5).normal(10, 1, 300), lsl=7.0, usl=13.0, target=10.0)
    assert capability_svg(report, title="c") == capability_svg(report, title="c")


def test_points_are_joined_by_one_polyline_with_every_point() -> None:
    x_chart, mr_chart = individuals_charts(NIST_VALUES)
    root = parse(control_chart_svg([x_chart, mr_chart], title="t"))
    x_panel, mr_panel = panels(root)

    [x_line] = classed(x_panel, "series")
    [mr_line] = classed(mr_panel, "series")
    assert len((x_line.get("points") or "").split()) == 10
    assert len((mr_line.get("points") or "").split()) == 9


def test_violations_are_red_markers_labelled_with_their_rules() -> None:
    values = [10.0, 10.2, 9.8, 10.1, 9.9, 10.0, 10.1, 9.9, 25.0]
    root = parse(control_chart_svg(individuals_charts(values), title="t"))
    x_panel, mr_panel = panels(root)

    [marker] = classed(x_panel, "violation")
    assert marker.get("data-rules") == "N1"
    assert [t.text for t in marker.iter("{http://www.w3.org/2000/svg}text")] == ["N1"]
    assert marker.find("svg:circle", NS) is not None
    assert "#d62728" in (parse(control_chart_svg([], title="x")).find("svg:style", NS).text or "")  # type: ignore[union-attr]
    assert [m.get("data-rules") for m in classed(mr_panel, "violation")] == ["N1"]


def test_constant_limits_are_lines_with_zone_lines_and_varying_limits_are_steps() -> None:
    root = parse(control_chart_svg(individuals_charts(NIST_VALUES), title="t"))
    x_panel = panels(root)[0]
    assert len(classed(x_panel, "zone")) == 4
    assert len([e for e in classed(x_panel, "limit") if e.tag.endswith("line")]) == 2
    assert not classed(x_panel, "stepped")

    u_root = parse(control_chart_svg(u_chart([3, 5, 2, 6], [10, 20, 10, 40]), title="u"))
    stepped = classed(panels(u_root)[0], "stepped")
    assert {e.get("class") for e in stepped} == {"limit stepped"}
    assert all("V" in (e.get("d") or "") for e in stepped)  # the limit changes level between points
    assert not classed(panels(u_root)[0], "zone")


def test_spec_limits_are_drawn_on_the_first_panel_only() -> None:
    root = parse(control_chart_svg(individuals_charts(NIST_VALUES), title="t", lsl=45.0, usl=57.0))
    x_panel, mr_panel = panels(root)
    labels = [t.text or "" for t in x_panel.iter("{http://www.w3.org/2000/svg}text")]
    assert len(classed(x_panel, "spec")) == 2
    assert any(label.startswith("LSL 45") for label in labels)
    assert not classed(mr_panel, "spec")


def test_axes_have_labels_and_readable_ticks() -> None:
    root = parse(control_chart_svg(xbar_r_charts([[1.0, 2.0, 3.0], [2.0, 3.0, 5.0]] * 20), title="t"))
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "Sample" in texts
    ticks = [t.text for t in classed(panels(root)[0], "tick")]
    assert {"10", "20", "30", "40"} <= set(ticks)
    assert all(len(text or "") <= 8 for text in ticks)


def test_text_is_escaped() -> None:
    title = "Batch <7> & \"quoted\" 'single'"
    svg = control_chart_svg(
        individuals_charts(NIST_VALUES, labels=[f"<{i}&>" for i in range(10)]), title=title
    )
    root = parse(svg)
    assert root.find("svg:title", NS).text == title  # type: ignore[union-attr]
    assert "<7>" not in svg


def test_cusum_panels_label_the_decision_interval() -> None:
    svg = control_chart_svg(cusum_charts([1.0, 2.0, 8.0, 9.0, 9.5, 10.0]), title="c")
    texts = [t.text or "" for t in parse(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert any(text.startswith("H ") for text in texts)


def test_no_charts_and_empty_charts_still_draw() -> None:
    parse(control_chart_svg([], title="nothing"))
    parse(control_chart_svg(individuals_charts([]), title="empty"))
    parse(control_chart_svg(individuals_charts([3.0]), title="one"))


def test_capability_picture_has_bars_fits_limits_and_indices() -> None:
    values = np.random.default_rng(2).normal(10, 1, 200)
    report = capability_report(values, lsl=6.0, usl=14.0, target=10.5)
    root = parse(capability_svg(report, title="Capability"))

    assert report.histogram is not None
    assert len(classed(root, "bar")) == len(report.histogram.counts)
    assert len(classed(root, "fit-within")) == len(classed(root, "fit-overall")) == 1
    assert len(classed(root, "spec")) == 2 and len(classed(root, "target")) == 1
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any(text.startswith("Cpk: ") for text in texts)
    assert any(text.startswith("Target 10.5") for text in texts)


def test_capability_picture_without_data_says_so() -> None:
    root = parse(capability_svg(capability_report([1.0]), title="c"))
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "Not enough data" in texts
    assert "warning: too_few_points" in texts


def test_coordinates_have_two_decimals_and_no_negative_zero() -> None:
    svg = control_chart_svg(individuals_charts([0.0, -0.0, 1e-12, -1e-12, 1.0]), title="z")
    assert "-0.00" not in svg
    assert "nan" not in svg.lower() and "inf" not in svg.lower()


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (73.98, 74.02), (-5.0, 1234.0), (1e-9, 3e-9)])
def test_ticks_are_round_numbers_inside_the_range(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert 3 <= len(ticks) <= 11
    assert all(low - 1e-12 <= t <= high + 1e-12 for t in ticks)
    steps = [b - a for a, b in itertools.pairwise(ticks)]
    assert all(math.isclose(step, steps[0], rel_tol=1e-6) for step in steps)
    round_steps = [m * 10.0**e for m in (1, 2, 5) for e in range(-12, 12)]
    assert any(math.isclose(steps[0], step, rel_tol=1e-6) for step in round_steps)


NON_NUMBER = re.compile(r'="[^"]*\b(inf|nan)\b', re.IGNORECASE)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=80), st.text(max_size=30))
def test_any_series_and_title_give_well_formed_svg(values: list[float], title: str) -> None:
    title = "".join(ch for ch in title if ch.isprintable())  # XML 1.0 cannot carry control characters
    svg = control_chart_svg(individuals_charts(values), title=title, lsl=-10.0, usl=10.0)
    root = parse(svg)
    assert root.find("svg:title", NS).text in (title, None)  # type: ignore[union-attr]
    assert not NON_NUMBER.search(svg)
    picture = capability_svg(capability_report(values, lsl=-10.0, usl=10.0, target=0.0), title=title)
    parse(picture)
    assert not NON_NUMBER.search(picture)
