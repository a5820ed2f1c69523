"""The rule catalogue: every rule the engine checks, described from the code that checks it."""

from __future__ import annotations

import dataclasses
from typing import get_args

import orjson

from erp_api.quality.spc.catalogue import RULE_CATALOGUE, RuleInfo, rule_catalogue
from erp_api.quality.spc.chart_result import ChartName
from erp_api.quality.spc.rules import RULE_DEFINITIONS, RULE_SETS, RULE_WINDOWS
from erp_api.quality.spc.timeweighted import CUSUM_RULE, EWMA_RULE, cusum_charts, ewma_chart


def by_id() -> dict[str, RuleInfo]:
    return {rule.id: rule for rule in rule_catalogue()}


def test_every_rule_of_every_set_is_listed_once_in_order() -> None:
    ids = [rule.id for rule in rule_catalogue()]
    assert ids == [*RULE_SETS["nelson"], *RULE_SETS["western_electric"], EWMA_RULE, CUSUM_RULE]
    assert len(set(ids)) == len(ids)


def test_definitions_and_windows_come_from_the_rule_engine() -> None:
    for rule in RULE_CATALOGUE:
        if rule.id in RULE_WINDOWS:
            assert rule.definition == RULE_DEFINITIONS[rule.id]  # type: ignore[index]
            assert rule.window == RULE_WINDOWS[rule.id]  # type: ignore[index]
            assert rule.rule_set == ("nelson" if rule.id.startswith("N") else "western_electric")


def test_run_lengths_in_the_parameters_are_the_windows() -> None:
    for rule in RULE_CATALOGUE:
        if "points" in rule.parameters:
            assert rule.parameters["points"] == rule.window, rule.id
    assert by_id()["N2"].parameters == {"points": 9}
    assert by_id()["N5"].parameters == {"count": 2, "points": 3, "sigmas": 2}


def test_beyond_the_limits_applies_to_every_shewhart_chart_and_zones_only_to_location_charts() -> None:
    assert "mr" in by_id()["N1"].charts and "r" in by_id()["WE1"].charts
    for rule_id in ("N2", "N5", "N7", "WE2", "WE4"):
        charts = by_id()[rule_id].charts
        assert "r" not in charts and "s" not in charts and "mr" not in charts
        assert "xbar" in charts and "individuals" in charts


def test_time_weighted_rules_use_the_ids_and_defaults_of_their_charts() -> None:
    [ewma] = ewma_chart([1.0, 2.0, 3.0])
    upper, _ = cusum_charts([1.0, 2.0, 3.0])
    assert by_id()[EWMA_RULE].parameters == {"lambda": ewma.parameters["lambda"], "L": ewma.parameters["L"]}
    assert by_id()[CUSUM_RULE].parameters == {"k": upper.parameters["k"], "h": upper.parameters["h"]}
    assert ewma.rules == [EWMA_RULE] and upper.rules == [CUSUM_RULE]


def test_charts_named_are_real_chart_names() -> None:
    names = set(get_args(ChartName))
    for rule in RULE_CATALOGUE:
        assert set(rule.charts) <= names, rule.id


def test_catalogue_serialises_to_json() -> None:
    body = orjson.loads(orjson.dumps([dataclasses.asdict(rule) for rule in rule_catalogue()]))
    assert body[0]["id"] == "N1"
    assert {"id", "name", "description", "definition", "parameters", "window", "charts"} <= set(body[0])
