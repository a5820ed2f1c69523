"""The catalogue of every rule the SPC engine checks, for ``GET /api/v1/quality/rules``.

Each entry names a rule id as it appears in ``Point.violations``, what it detects, its parameters, how
many consecutive points its pattern spans, and the charts it is checked on. The exact definitions and
windows of N1-N8 and WE1-WE4 are read from :mod:`~erp_api.quality.spc.rules` (the docstring of the
function that implements each rule), so the catalogue cannot drift from the code; where each rule runs
is explained in :mod:`~erp_api.quality.spc.chart_result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from erp_api.quality.spc.chart_result import ChartName
from erp_api.quality.spc.rules import RULE_DEFINITIONS, RULE_WINDOWS, RuleName
from erp_api.quality.spc.timeweighted import CUSUM_RULE, EWMA_RULE

CatalogueSet = Literal["nelson", "western_electric", "ewma", "cusum"]

SHEWHART: tuple[ChartName, ...] = ("individuals", "mr", "xbar", "r", "s", "p", "np", "c", "u")
LOCATION: tuple[ChartName, ...] = ("individuals", "xbar", "p", "np", "c", "u")
_ZONES_CONSTANT = "p and u charts: only when every sample has the same size (constant limits)"
_ZONES_STANDARDIZED = "X-bar with unequal subgroup sizes: on z = (x-bar - centre) / (sigma / sqrt(n))"


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One rule: id, name, one-line description, exact definition, parameters and where it applies."""

    id: str
    rule_set: CatalogueSet
    name: str
    description: str
    definition: str
    window: int
    parameters: dict[str, float]
    charts: list[ChartName]
    conditions: list[str] = field(default_factory=list)


_SHEWHART_RULES: tuple[tuple[RuleName, str, str, dict[str, float]], ...] = (
    ("N1", "Beyond the limits", "One point beyond 3 sigma, outside a control limit", {"sigmas": 3}),
    ("N2", "Nine on one side", "Nine points in a row on the same side of the centre line", {"points": 9}),
    ("N3", "Six trending", "Six points in a row steadily increasing or decreasing", {"points": 6}),
    ("N4", "Fourteen alternating", "Fourteen points in a row alternating up and down", {"points": 14}),
    (
        "N5",
        "Two of three beyond 2 sigma",
        "Two out of three points in a row beyond 2 sigma on the same side",
        {"count": 2, "points": 3, "sigmas": 2},
    ),
    (
        "N6",
        "Four of five beyond 1 sigma",
        "Four out of five points in a row beyond 1 sigma on the same side",
        {"count": 4, "points": 5, "sigmas": 1},
    ),
    (
        "N7",
        "Fifteen within 1 sigma",
        "Fifteen points in a row within 1 sigma of the centre",
        {"points": 15, "sigmas": 1},
    ),
    (
        "N8",
        "Eight outside 1 sigma",
        "Eight points in a row beyond 1 sigma, on both sides of the centre",
        {"points": 8, "sigmas": 1},
    ),
    ("WE1", "Beyond the limits", "One point beyond 3 sigma, outside a control limit", {"sigmas": 3}),
    (
        "WE2",
        "Two of three beyond 2 sigma",
        "Two out of three points in a row beyond 2 sigma on the same side",
        {"count": 2, "points": 3, "sigmas": 2},
    ),
    (
        "WE3",
        "Four of five beyond 1 sigma",
        "Four out of five points in a row beyond 1 sigma on the same side",
        {"count": 4, "points": 5, "sigmas": 1},
    ),
    ("WE4", "Eight on one side", "Eight points in a row on the same side of the centre line", {"points": 8}),
)
_BEYOND_LIMITS = frozenset({"N1", "WE1"})
_ZONE_FREE = frozenset({"N2", "N3", "N4", "WE4"})


def _shewhart(rule: RuleName, name: str, description: str, parameters: dict[str, float]) -> RuleInfo:
    if rule in _BEYOND_LIMITS:
        charts, conditions = list(SHEWHART), ["every point against its own limits"]
    elif rule in _ZONE_FREE:
        charts, conditions = list(LOCATION), []
    else:
        charts, conditions = list(LOCATION), [_ZONES_CONSTANT, _ZONES_STANDARDIZED]
    return RuleInfo(
        id=rule,
        rule_set="nelson" if rule.startswith("N") else "western_electric",
        name=name,
        description=description,
        definition=RULE_DEFINITIONS[rule],
        window=RULE_WINDOWS[rule],
        parameters=dict(parameters),
        charts=charts,
        conditions=conditions,
    )


RULE_CATALOGUE: tuple[RuleInfo, ...] = (
    *(_shewhart(*entry) for entry in _SHEWHART_RULES),
    RuleInfo(
        id=EWMA_RULE,
        rule_set="ewma",
        name="EWMA beyond its limits",
        description="The exponentially weighted moving average lies beyond its time-varying limits",
        definition=(
            "z_i = lambda x_i + (1 - lambda) z_(i-1), z_0 = target; flagged when z_i is strictly beyond "
            "target +/- L sigma sqrt(lambda / (2 - lambda) (1 - (1 - lambda)^(2i)))."
        ),
        window=1,
        parameters={"lambda": 0.2, "L": 3.0},
        charts=["ewma"],
        conditions=["parameters are the defaults; a request may choose others"],
    ),
    RuleInfo(
        id=CUSUM_RULE,
        rule_set="cusum",
        name="CUSUM beyond the decision interval",
        description="The upper or lower cumulative sum exceeds the decision interval H = h sigma",
        definition=(
            "C+_i = max(0, x_i - (target + k sigma) + C+_(i-1)), C-_i = max(0, (target - k sigma) - x_i "
            "+ C-_(i-1)), C_0 = 0; flagged when C+_i or C-_i is strictly above h sigma."
        ),
        window=1,
        parameters={"k": 0.5, "h": 5.0},
        charts=["cusum_upper", "cusum_lower"],
        conditions=["parameters are the defaults; a request may choose others"],
    ),
)


def rule_catalogue() -> list[RuleInfo]:
    """Every rule, Nelson first, then Western Electric, EWMA and CUSUM."""
    return list(RULE_CATALOGUE)
