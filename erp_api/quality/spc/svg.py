"""Deterministic SVG pictures of control charts and of a capability study.

The same input gives the same bytes: no randomness, no timestamps, no ids drawn from counters that
outlive a call, coordinates written with two decimals (and "-0.00" written "0.00"), numbers in text
with six significant digits. Every piece of text (titles, labels, rule ids) is XML-escaped.

Control charts (:func:`control_chart_svg`): one panel per chart, stacked in the given order, each with
its centre line, control limits (straight when constant, stepped per point when they vary), the
+/- 1 and 2 sigma zone lines when the chart has constant zones, the spec limits on the first panel
when given, the points joined in order, and every violation as a red marker labelled with its rule
ids. Charts with fewer points than the longest (the MR chart) are aligned right, so a moving range
sits under the later of its two values. Y ticks are "nice" numbers (1, 2 or 5 times a power of ten).

Capability (:func:`capability_svg`): the histogram, the spec limits and target, the normal curves
with the mean and sigma_within (dashed) and sigma_overall (solid) scaled to the counts, and the
indices as text.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

from erp_api.quality.spc.capability import CapabilityReport, Interval, Ppm
from erp_api.quality.spc.chart_result import Chart, ChartName, Point
from erp_api.quality.spc.distributions import normal_pdf

TITLE_HEIGHT = 36
LEFT, RIGHT = 72, 104
PANEL_TOP, PANEL_BOTTOM = 28, 44
POINT_MARKERS_UP_TO = 250
CURVE_SAMPLES = 121

CHART_TITLES: dict[ChartName, str] = {
    "individuals": "Individuals (X)",
    "mr": "Moving range (MR)",
    "xbar": "Subgroup means (X\u0304)",
    "r": "Subgroup ranges (R)",
    "s": "Subgroup standard deviations (S)",
    "p": "Fraction defective (p)",
    "np": "Number defective (np)",
    "c": "Defects (c)",
    "u": "Defects per unit (u)",
    "ewma": "EWMA",
    "cusum_upper": "Upper CUSUM (C+)",
    "cusum_lower": "Lower CUSUM (C\u2212)",
}
_STYLE = (
    "text{font-family:sans-serif;font-size:11px;fill:#222}"
    ".title{font-size:15px;font-weight:bold}.panel-title{font-size:12px;font-weight:bold}"
    ".frame{fill:none;stroke:#888}.grid{stroke:#eee}.series{fill:none;stroke:#1f77b4;stroke-width:1.2}"
    ".point{fill:#1f77b4}.center{stroke:#2ca02c;fill:none}.limit{stroke:#d62728;fill:none;stroke-dasharray:6 3}"
    ".zone{stroke:#bbb;stroke-dasharray:2 3}.spec{stroke:#9467bd;stroke-dasharray:10 4}"
    ".violation circle{fill:#d62728}.violation text{fill:#d62728;font-size:10px}"
    ".bar{fill:#aec7e8;stroke:#fff}.fit-within{fill:none;stroke:#ff7f0e;stroke-dasharray:5 3}"
    ".fit-overall{fill:none;stroke:#222}.target{stroke:#2ca02c;stroke-dasharray:3 3}"
)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _xy(value: float) -> str:
    """A coordinate with two decimals; never "-0.00"."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def _number(value: float | None) -> str:
    """A value for display: six significant digits, "n/a" when missing."""
    if value is None:
        return "n/a"
    text = f"{value:.6g}"
    return "0" if text == "-0" else text


_MAX_TICKS = 12
_LARGEST = 1.7976931348623157e308


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten) covering [low, high].

    Falls back to the two ends when no round step fits the floats (ranges near the float limits).
    """
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high / count - low / count) if count > 0 else high - low
    power = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 0.0
    step = next((m * power for m in (1, 2, 5, 10) if m * power >= raw), math.inf)
    if not (0 < step < math.inf):
        return [low, high]
    first, last = math.ceil(low / step), math.floor(high / step)
    if not 0 <= last - first < _MAX_TICKS:
        return [low, high]
    decimals = max(0, -math.floor(math.log10(step)))
    return [round(i * step, decimals) for i in range(first, last + 1)]


def _tick_label(value: float, ticks: Sequence[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 0.0
    if not 1e-4 <= step < 1e6 or abs(value) >= 1e9:
        return _number(value)
    decimals = max(0, -math.floor(math.log10(step)))
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


class _Scale:
    """Maps data values linearly onto pixels (y grows downwards), without overflow near the float limits."""

    def __init__(self, low: float, high: float, start: float, end: float) -> None:
        # Halved, a difference of two finite floats cannot overflow; a span too small to divide by
        # (no spread, or a few denormals) is widened around its values.
        if not (high / 2 - low / 2) * 1e-300 > 0:
            pad = max(abs(low), abs(high)) * 0.1
            pad = pad if pad > 1e-300 else 1.0
            low, high = max(low - pad, -_LARGEST), min(high + pad, _LARGEST)
        self.low, self.high, self.start, self.end = low, high, start, end
        self._ratio = (end - start) / (high / 2 - low / 2)

    def __call__(self, value: float) -> float:
        return self.start + (value / 2 - self.low / 2) * self._ratio


def _padded(values: Iterable[float | None]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    pad = high * 0.06 - low * 0.06
    return max(low - pad, -_LARGEST), min(high + pad, _LARGEST)


def _line(css: str, x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line class="{css}" x1="{_xy(x1)}" y1="{_xy(y1)}" x2="{_xy(x2)}" y2="{_xy(y2)}"/>'


def _text(css: str, x: float, y: float, text: str, anchor: str = "start") -> str:
    return f'<text class="{css}" x="{_xy(x)}" y="{_xy(y)}" text-anchor="{anchor}">{_esc(text)}</text>'


def _stepped(values: Sequence[float | None], slot_left: Sequence[float], slot: float, y: _Scale) -> str:
    """An SVG path drawing ``values[i]`` across slot i; a missing value breaks the path."""
    parts: list[str] = []
    previous: float | None = None
    for value, left in zip(values, slot_left, strict=True):
        if value is None:
            previous = None
            continue
        height = _xy(y(value))
        if previous is None:
            parts.append(f"M{_xy(left)} {height}")
        elif previous != value:
            parts.append(f"V{height}")
        parts.append(f"H{_xy(left + slot)}")
        previous = value
    return "".join(parts)


def _panel(
    chart: Chart, *, top: float, width: int, height: int, slots: int, specs: dict[str, float]
) -> list[str]:
    right = width - RIGHT
    plot_top, plot_bottom = top + PANEL_TOP, top + height - PANEL_BOTTOM
    points = chart.points
    offset = slots - len(points)
    slot = (right - LEFT) / max(slots, 1)
    lefts = [LEFT + (offset + i) * slot for i in range(len(points))]
    xs = [left + slot / 2 for left in lefts]
    zones: list[tuple[str, float]] = []
    if chart.zone_sigma is not None and chart.zone_sigma > 0 and chart.center is not None:
        candidates = ((f"{k:+d}\u03c3", chart.center + k * chart.zone_sigma) for k in (-2, -1, 1, 2))
        zones = [(label, value) for label, value in candidates if math.isfinite(value)]
    values = [p.value for p in points]
    lines = [v for p in points for v in (p.center, p.ucl, p.lcl)]
    low, high = _padded([*values, *lines, *(v for _, v in zones), *specs.values()])
    y = _Scale(low, high, plot_bottom, plot_top)
    out = [f'<g class="panel" data-chart="{_esc(chart.name)}">']
    out.append(_text("panel-title", LEFT, top + 18, CHART_TITLES.get(chart.name, chart.name)))
    ticks = nice_ticks(y.low, y.high)
    for tick in ticks:
        out.append(_line("grid", LEFT, y(tick), right, y(tick)))
        out.append(_text("tick", LEFT - 6, y(tick) + 4, _tick_label(tick, ticks), "end"))
    for tick in nice_ticks(1, max(slots, 1), 8) if slots > 1 else [1.0]:
        index = int(tick)
        if index == tick and 1 <= index <= slots:
            x = LEFT + (index - 0.5) * slot
            out.append(_line("frame", x, plot_bottom, x, plot_bottom + 4))
            out.append(_text("tick", x, plot_bottom + 16, str(index), "middle"))
    out.append(_text("axis-label", (LEFT + right) / 2, plot_bottom + 34, "Sample", "middle"))
    side: list[tuple[float, str]] = []  # labels right of the plot, at the height of their line
    for label, value in zones:
        out.append(_line("zone", LEFT, y(value), right, y(value)))
        side.append((y(value), label))
    for name, value in specs.items():
        out.append(_line("spec", LEFT, y(value), right, y(value)))
        side.append((y(value), f"{name} {_number(value)}"))
    upper_name = "H" if chart.name.startswith("cusum") else "UCL"
    for css, label, constant, per_point in (
        ("center", "CL", chart.center, [p.center for p in points]),
        ("limit", upper_name, chart.ucl, [p.ucl for p in points]),
        ("limit", "LCL", chart.lcl, [p.lcl for p in points]),
    ):
        if constant is not None:
            out.append(_line(css, LEFT, y(constant), right, y(constant)))
            side.append((y(constant), f"{label} {_number(constant)}"))
        elif any(v is not None for v in per_point):
            out.append(f'<path class="{css} stepped" d="{_stepped(per_point, lefts, slot, y)}"/>')
            last = next(v for v in reversed(per_point) if v is not None)
            side.append((y(last), label))
    out.extend(_text("line-label", right + 4, level + 4, label) for level, label in _spread_out(side))
    out.extend(_series(points, xs, y))
    out.append(
        f'<rect class="frame" x="{_xy(LEFT)}" y="{_xy(plot_top)}" width="{_xy(right - LEFT)}" '
        f'height="{_xy(plot_bottom - plot_top)}"/>'
    )
    out.append("</g>")
    return out


def _spread_out(labels: list[tuple[float, str]], gap: float = 12.0) -> list[tuple[float, str]]:
    """The labels top to bottom, each moved down as far as needed to clear the one above it."""
    placed: list[tuple[float, str]] = []
    for height, label in sorted(labels):
        lowest = placed[-1][0] + gap if placed else height
        placed.append((max(height, lowest), label))
    return placed


def _series(points: Sequence[Point], xs: Sequence[float], y: _Scale) -> list[str]:
    out: list[str] = []
    run: list[str] = []
    for point, x in zip(points, xs, strict=True):
        if point.value is None:
            if run:
                out.append(f'<polyline class="series" points="{" ".join(run)}"/>')
            run = []
        else:
            run.append(f"{_xy(x)},{_xy(y(point.value))}")
    if run:
        out.append(f'<polyline class="series" points="{" ".join(run)}"/>')
    if len(points) <= POINT_MARKERS_UP_TO:
        out.extend(
            f'<circle class="point" cx="{_xy(x)}" cy="{_xy(y(p.value))}" r="2.5"/>'
            for p, x in zip(points, xs, strict=True)
            if p.value is not None
        )
    for point, x in zip(points, xs, strict=True):
        if point.violations and point.value is not None:
            rules = ",".join(point.violations)
            cy = y(point.value)
            out.append(
                f'<g class="violation" data-rules="{_esc(rules)}">'
                f"<title>{_esc(point.label)}: {_esc(rules)}</title>"
                f'<circle cx="{_xy(x)}" cy="{_xy(cy)}" r="4.5"/>'
                f"{_text('violation-label', x, cy - 8, rules, 'middle')}</g>"
            )
    return out


def _document(width: int, height: int, title: str, body: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
        f"<title>{_esc(title)}</title><style>{_STYLE}</style>"
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f"{_text('title', width / 2, 24, title, 'middle')}"
    )
    return head + "".join(body) + "</svg>"


def control_chart_svg(
    charts: Sequence[Chart],
    *,
    title: str,
    lsl: float | None = None,
    usl: float | None = None,
    width: int = 800,
    panel_height: int = 260,
) -> str:
    """An SVG of ``charts`` stacked top to bottom (see the module docstring); spec limits on the first."""
    slots = max((len(chart.points) for chart in charts), default=0)
    body: list[str] = []
    for index, chart in enumerate(charts):
        specs = {}
        if index == 0:
            specs = {name: value for name, value in (("LSL", lsl), ("USL", usl)) if value is not None}
        body.extend(
            _panel(
                chart,
                top=TITLE_HEIGHT + index * panel_height,
                width=width,
                height=panel_height,
                slots=slots,
                specs=specs,
            )
        )
    return _document(width, TITLE_HEIGHT + len(charts) * panel_height + 8, title, body)


def _interval(interval: Interval | None) -> str:
    return "" if interval is None else f" [{_number(interval.lower)}, {_number(interval.upper)}]"


def _ppm(ppm: Ppm | None) -> str:
    return "n/a" if ppm is None else _number(round(ppm.total, 2))


def capability_svg(report: CapabilityReport, *, title: str, width: int = 800, height: int = 420) -> str:
    """An SVG of a capability study: histogram, limits, fitted normals and indices (module docstring)."""
    text_left = width - 236
    right, top, bottom = text_left - 24, TITLE_HEIGHT + 8, height - 44
    body: list[str] = []
    stats = [
        ("n", str(report.n)),
        ("Mean", _number(report.mean)),
        ("StDev within", f"{_number(report.sigma_within)} ({report.sigma_within_method or 'n/a'})"),
        ("StDev overall", _number(report.sigma_overall)),
        ("Cp", _number(report.cp) + _interval(report.cp_ci)),
        ("Cpk", _number(report.cpk) + _interval(report.cpk_ci)),
        ("Pp", _number(report.pp) + _interval(report.pp_ci)),
        ("Ppk", _number(report.ppk) + _interval(report.ppk_ci)),
        ("Cpm", _number(report.cpm)),
        ("PPM observed", _ppm(report.ppm_observed)),
        ("PPM exp. within", _ppm(report.ppm_expected_within)),
        ("PPM exp. overall", _ppm(report.ppm_expected_overall)),
        ("AD p-value", _number(None if report.anderson_darling is None else report.anderson_darling.p_value)),
    ]
    for row, (name, shown) in enumerate(stats):
        body.append(_text("stat", text_left, top + 14 + row * 17, f"{name}: {shown}"))
    for row, warning in enumerate(report.warnings):
        body.append(_text("warning", text_left, top + 20 + (len(stats) + row) * 17, f"warning: {warning}"))
    hist = report.histogram
    if hist is None or report.mean is None:
        body.append(_text("empty", (LEFT + right) / 2, (top + bottom) / 2, "Not enough data", "middle"))
        return _document(width, height, title, body)
    mean = report.mean
    fits = [
        (css, sigma)
        for css, sigma in (("fit-within", report.sigma_within), ("fit-overall", report.sigma_overall))
        if sigma is not None and sigma > 0
    ]
    markers = [v for v in (report.lsl, report.usl, report.target) if v is not None]
    spread = [mean + k * sigma for _, sigma in fits for k in (-3.5, 3.5)]
    x = _Scale(*_padded([hist.edges[0], hist.edges[-1], *markers, *spread]), LEFT, right)
    bin_width = hist.edges[1] - hist.edges[0]
    # A fitted curve scaled to the counts; one that overflows the floats is not drawn.
    fits = [
        (css, sigma) for css, sigma in fits if math.isfinite(report.n * bin_width * normal_pdf(0.0) / sigma)
    ]
    peaks = [report.n * bin_width * normal_pdf(0.0) / sigma for _, sigma in fits]
    y = _Scale(0.0, max([*hist.counts, *peaks, 1]) * 1.08, bottom, top)
    ticks = nice_ticks(y.low, y.high)
    for tick in ticks:
        body.append(_line("grid", LEFT, y(tick), right, y(tick)))
        body.append(_text("tick", LEFT - 6, y(tick) + 4, _tick_label(tick, ticks), "end"))
    x_ticks = nice_ticks(x.low, x.high, 6)
    for tick in x_ticks:
        body.append(_line("frame", x(tick), bottom, x(tick), bottom + 4))
        body.append(_text("tick", x(tick), bottom + 16, _tick_label(tick, x_ticks), "middle"))
    for low_edge, high_edge, count in zip(hist.edges, hist.edges[1:], hist.counts, strict=False):
        body.append(
            f'<rect class="bar" x="{_xy(x(low_edge))}" y="{_xy(y(count))}" '
            f'width="{_xy(x(high_edge) - x(low_edge))}" height="{_xy(y(0.0) - y(count))}"/>'
        )
    for css, sigma in fits:
        fractions = [i / (CURVE_SAMPLES - 1) for i in range(CURVE_SAMPLES)]
        samples = [x.low * (1 - t) + x.high * t for t in fractions]  # no overflow, ends exact
        heights = [report.n * bin_width * normal_pdf((v - mean) / sigma) / sigma for v in samples]
        coordinates = " ".join(f"{_xy(x(v))},{_xy(y(h))}" for v, h in zip(samples, heights, strict=True))
        body.append(f'<polyline class="{css}" points="{coordinates}"/>')
    for name, value, css in (
        ("LSL", report.lsl, "spec"),
        ("USL", report.usl, "spec"),
        ("Target", report.target, "target"),
    ):
        if value is not None:
            body.append(_line(css, x(value), top, x(value), bottom))
            body.append(_text("line-label", x(value), top - 2, f"{name} {_number(value)}", "middle"))
    body.append(
        f'<rect class="frame" x="{_xy(LEFT)}" y="{_xy(top)}" width="{_xy(right - LEFT)}" '
        f'height="{_xy(bottom - top)}"/>'
    )
    return _document(width, height, title, body)
