"""Statistical process control of one quality parameter: chart lines, rule violations, capability.

This is the entry point the quality service calls: :func:`analyse_series` returns typed results whose
violations are (rule, index) pairs, so a caller can attach its own per-point data (e.g. measured_at) by
index; :func:`spc_report` / :func:`build_report` give the JSON-safe per-parameter dict.

Pure functions on in-memory values: no I/O, and nothing here knows about the rest of erp_api.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from erp_api.quality.spc.capability import Capability, process_capability
from erp_api.quality.spc.chart import (
    Baseline,
    ControlLimits,
    PointZone,
    Values,
    as_series,
    classify_zones,
    individuals_limits,
)
from erp_api.quality.spc.rules import RULE_SETS, RuleName, RuleSet, Violation, find_violations

__all__ = [
    "RULE_SETS",
    "Baseline",
    "Capability",
    "ControlLimits",
    "PointZone",
    "RuleName",
    "RuleSet",
    "SpcAnalysis",
    "SpcReport",
    "Violation",
    "ViolationEntry",
    "analyse_series",
    "build_report",
    "classify_zones",
    "spc_report",
]


@dataclass(frozen=True, slots=True)
class SpcAnalysis:
    """Everything SPC says about one series; ``violations`` sorted by index, then rule order."""

    limits: ControlLimits
    capability: Capability
    violations: tuple[Violation, ...]


class ViolationEntry(TypedDict):
    rule: RuleName
    index: int
    value: float


class SpcReport(TypedDict):
    parameter: str
    n: int
    center: float | None
    sigma: float | None
    ucl: float | None
    lcl: float | None
    mr_bar: float | None
    mr_ucl: float | None
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None
    violations: list[ViolationEntry]


def analyse_series(
    values: Values,
    *,
    rules: RuleSet = "nelson",
    baseline: Baseline | None = None,
    lsl: float | None = None,
    usl: float | None = None,
) -> SpcAnalysis:
    """Analyse ``values`` ordered by measurement time (then id) as an individuals chart.

    Limits come from the data or from ``baseline``; the rule set (``"nelson"`` or
    ``"western_electric"``) runs against those limits; capability always uses the data's own
    statistics and the optional ``lsl`` / ``usl``. With no sigma (n < 2 and no baseline) only the run rules
    could apply, and they need more points, so there are no violations. Raises ``ValueError`` for
    non-finite input, an unknown rule set, or LSL >= USL.
    """
    if rules not in RULE_SETS:
        raise ValueError(f"unknown SPC rule set {rules!r}")
    series = as_series(values)
    limits = individuals_limits(series, baseline)
    capability = process_capability(series, lsl, usl)
    violations: list[Violation] = []
    if limits.center is not None and limits.sigma is not None:
        violations = find_violations(series, limits.center, limits.sigma, rules)
    return SpcAnalysis(limits=limits, capability=capability, violations=tuple(violations))


def build_report(parameter: str, values: Values, analysis: SpcAnalysis) -> SpcReport:
    """The per-parameter dict for the API from an analysis of ``values``; every float is finite or None."""
    series = as_series(values)
    limits, capability = analysis.limits, analysis.capability
    if series.size != limits.n:
        raise ValueError(f"analysis is of {limits.n} values, got {series.size}")
    return {
        "parameter": parameter,
        "n": limits.n,
        "center": limits.center,
        "sigma": limits.sigma,
        "ucl": limits.ucl,
        "lcl": limits.lcl,
        "mr_bar": limits.mr_bar,
        "mr_ucl": limits.mr_ucl,
        "cp": capability.cp,
        "cpk": capability.cpk,
        "pp": capability.pp,
        "ppk": capability.ppk,
        "violations": [
            {"rule": rule, "index": index, "value": float(series[index])}
            for rule, index in analysis.violations
        ],
    }


def spc_report(
    parameter: str,
    values: Values,
    *,
    rules: RuleSet = "nelson",
    baseline: Baseline | None = None,
    lsl: float | None = None,
    usl: float | None = None,
) -> SpcReport:
    """:func:`analyse_series` followed by :func:`build_report`."""
    series = as_series(values)
    analysis = analyse_series(series, rules=rules, baseline=baseline, lsl=lsl, usl=usl)
    return build_report(parameter, series, analysis)
