"""Adapter from stored series to the SPC engine (``spc*.py``) and back to JSON-ready dicts.

The engine works on bare values and reports violations as (rule, index); this module attaches the
ids and timestamps of the points and shapes the control chart and the charge analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from erp_api.quality.spc.chart import zone_line
from erp_api.quality.spc.series import (
    Baseline,
    RuleSet,
    SpcReport,
    analyse_series,
    build_report,
    classify_zones,
)

# Where a chart's centre and sigma come from: a baseline given with the request, the series' stored
# control limits, or the points themselves.
LimitsSource = Literal["baseline", "stored", "computed"]


class SeriesPoint(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def value(self) -> float: ...
    @property
    def measured_at(self) -> datetime: ...


def parameter_analysis(
    parameter: str,
    points: Sequence[SeriesPoint],
    *,
    offset: int,
    rules: RuleSet,
    baseline: Baseline | None,
    limits: tuple[float | None, float | None],
    limits_source: LimitsSource,
    limits_id: int | None,
) -> dict[str, Any]:
    """The SPC report of one series; violation indices count from the start of the whole series.

    ``points`` are the last points of the series in time order, ``offset`` how many came before them;
    ``baseline`` (``None``: the points' own) comes from ``limits_source``, stored limits ``limits_id``.
    """
    values = [point.value for point in points]
    lsl, usl = limits
    analysis = analyse_series(values, rules=rules, baseline=baseline, lsl=lsl, usl=usl)
    report: SpcReport = build_report(parameter, values, analysis)
    result: dict[str, Any] = dict(report)
    result["limits_source"] = limits_source
    result["limits_id"] = limits_id
    result["violations"] = [
        {
            "rule": violation["rule"],
            "index": offset + violation["index"],
            "value": violation["value"],
            "measured_at": points[violation["index"]].measured_at.isoformat(),
        }
        for violation in report["violations"]
    ]
    return result


def control_chart(
    charge_id: int,
    parameter: str,
    points: Sequence[SeriesPoint],
    *,
    rules: RuleSet,
    stored: tuple[int, Baseline] | None = None,
) -> dict[str, Any]:
    """Points with their zone and violated rules, and the chart's lines, for one series.

    ``stored`` is the series' current control limits (id, centre and sigma); without them the lines
    come from the points shown.
    """
    values = [point.value for point in points]
    analysis = analyse_series(values, rules=rules, baseline=None if stored is None else stored[1])
    limits = analysis.limits
    zones: list[str | None] = [None] * len(points)
    zone_bounds: dict[str, dict[str, float]] | None = None
    if limits.center is not None and limits.sigma is not None:
        zones = [zone.zone for zone in classify_zones(values, limits.center, limits.sigma)]
        zone_bounds = {}
        for name, k in (("C", 1), ("B", 2), ("A", 3)):
            lower, upper = zone_line(limits.center, limits.sigma, k)
            zone_bounds[name] = {"lower": lower, "upper": upper}
    violated: list[list[str]] = [[] for _ in points]
    for rule, index in analysis.violations:
        violated[index].append(rule)
    return {
        "charge_id": charge_id,
        "parameter": parameter,
        "rules": rules,
        "limits_source": "computed" if stored is None else "stored",
        "limits_id": None if stored is None else stored[0],
        "limits": {
            "center": limits.center,
            "sigma": limits.sigma,
            "ucl": limits.ucl,
            "lcl": limits.lcl,
            "mr_bar": limits.mr_bar,
            "mr_ucl": limits.mr_ucl,
            "zones": zone_bounds,
        },
        "points": [
            {
                "index": index,
                "id": point.id,
                "value": point.value,
                "measured_at": point.measured_at,
                "zone": zones[index],
                "violations": violated[index],
            }
            for index, point in enumerate(points)
        ],
    }
