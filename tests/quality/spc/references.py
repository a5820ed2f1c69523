"""Plain-loop reference implementations the chart tests compare the vectorised engine with.

Each is written straight from the conventions in the module docstrings, one point at a time, and
shares nothing with the engine but the rule definitions' own loop reference (``reference_flags``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import orjson

from erp_api.quality.spc.chart_result import Chart
from erp_api.quality.spc.rules import RULE_SETS, RuleSet
from tests.quality.spc.test_rules_properties import reference_flags

ZONE_FREE = {"N2", "N3", "N4", "WE4"}
BEYOND = {"nelson": "N1", "western_electric": "WE1"}


def beyond_limits(values: Sequence[float], ucl: Sequence[float], lcl: Sequence[float]) -> list[int]:
    return [
        i
        for i, (v, upper, lower) in enumerate(zip(values, ucl, lcl, strict=True))
        if upper > lower and (v > upper or v < lower)
    ]


def location_flags(
    values: Sequence[float],
    center: float,
    sigmas: Sequence[float],
    ucl: Sequence[float],
    lcl: Sequence[float],
    rules: RuleSet,
    *,
    zones: bool = True,
) -> dict[str, list[int]]:
    """{rule: flagged indices} for a location chart, per the conventions of ``chart_result``."""
    constant = all(s == sigmas[0] for s in sigmas)
    flags: dict[str, list[int]] = {}
    for rule in RULE_SETS[rules]:
        if constant and zones and sigmas:
            flags[rule] = reference_flags(rule, list(values), center, sigmas[0])
        elif rule == BEYOND[rules]:
            flags[rule] = beyond_limits(values, ucl, lcl)
        elif rule in ZONE_FREE:
            flags[rule] = reference_flags(rule, list(values), center, 0.0)
        elif zones and sigmas and all(s > 0 for s in sigmas):
            z = [(v - center) / s for v, s in zip(values, sigmas, strict=True)]
            flags[rule] = reference_flags(rule, z, 0.0, 1.0)
    return flags


def point_violations(flags: dict[str, list[int]], count: int) -> list[list[str]]:
    """Per point, the rules flagging it, in rule order."""
    return [[rule for rule, hits in flags.items() if i in hits] for i in range(count)]


def chart_violations(chart: Chart) -> list[list[str]]:
    return [point.violations for point in chart.points]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def sample_sd(values: Sequence[float]) -> float:
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def assert_json_safe(result: Any) -> None:
    """Every float in the dataclass(es) is finite (orjson would quietly write NaN as null) and it dumps."""

    def walk(node: object) -> None:
        if isinstance(node, float):
            assert math.isfinite(node), node
        elif isinstance(node, dict):
            for child in node.values():
                walk(child)
        elif isinstance(node, (list, tuple)):
            for child in node:
                walk(child)

    body = (
        [dataclasses.asdict(item) for item in result]
        if isinstance(result, list)
        else dataclasses.asdict(result)
    )
    walk(body)
    orjson.dumps(body)
