"""Control charts over HTTP and the charge analysis service, both fed by the SPC engine."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from erp_api.errors import NotFound
from erp_api.quality.service import QualityService
from erp_api.quality.spc.series import Baseline
from tests.charges.helpers import assert_problem
from tests.quality.helpers import CHART, at, given_spec, measurements_url, new_charge, post_one, put_spec

# Stable around 10 with one outlier at index 15.
SERIES = [
    10.0,
    10.1,
    9.9,
    10.0,
    10.2,
    9.8,
    10.1,
    9.9,
    10.0,
    10.1,
    9.9,
    10.0,
    10.1,
    9.9,
    10.0,
    13.0,
    10.0,
    9.9,
    10.1,
    10.0,
]
OUTLIER = 15
POST_ORDER = [*range(19, 9, -1), *range(10)]


def chart_lines(values: list[float]) -> tuple[float, float]:
    center = statistics.mean(values)
    sigma = statistics.mean(abs(b - a) for a, b in itertools.pairwise(values)) / 1.128
    return center, sigma


def zone_of(value: float, center: float, sigma: float) -> str:
    distance = abs(value - center)
    for name, k in (("C", 1), ("B", 2), ("A", 3)):
        if distance <= k * sigma:
            return name
    return "beyond"


async def _post_series(client: httpx.AsyncClient, charge_id: int, parameter: str = "diameter_mm") -> None:
    await given_spec(client, parameter)
    items = [{"parameter": parameter, "value": SERIES[i], "measured_at": at(i)} for i in POST_ORDER]
    response = await client.post(measurements_url(charge_id), json={"items": items})
    assert response.status_code == 201, response.text


async def _chart(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(CHART, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_control_chart_has_hand_computed_lines_zones_and_the_outlier(client: httpx.AsyncClient) -> None:
    charge_id = await new_charge(client, 1)
    await _post_series(client, charge_id)
    chart = await _chart(client, charge_id=charge_id, parameter="diameter_mm")
    center, sigma = chart_lines(SERIES)
    limits = chart["limits"]
    assert limits["center"] == pytest.approx(center, rel=1e-12)
    assert limits["sigma"] == pytest.approx(sigma, rel=1e-12)
    assert (limits["lcl"], limits["ucl"]) == (
        pytest.approx(center - 3 * sigma),
        pytest.approx(center + 3 * sigma),
    )
    for name, k in (("C", 1), ("B", 2), ("A", 3)):
        assert limits["zones"][name] == {
            "lower": pytest.approx(center - k * sigma),
            "upper": pytest.approx(center + k * sigma),
        }

    points = chart["points"]
    assert [point["index"] for point in points] == list(range(len(SERIES)))
    assert [point["value"] for point in points] == SERIES
    assert [point["measured_at"] for point in points] == [at(i) for i in range(len(SERIES))]
    assert [point["zone"] for point in points] == [zone_of(value, center, sigma) for value in SERIES]
    assert points[OUTLIER]["zone"] == "beyond"
    assert [point["index"] for point in points if "N1" in point["violations"]] == [OUTLIER]
    # The first fifteen points all lie within one sigma: Nelson rule 7 completes at index 14.
    assert all(zone_of(value, center, sigma) == "C" for value in SERIES[:15])
    assert "N7" in points[14]["violations"]

    western = await _chart(client, charge_id=charge_id, parameter="diameter_mm", rules="western_electric")
    assert [point["index"] for point in western["points"] if "WE1" in point["violations"]] == [OUTLIER]
    assert not any(rule.startswith("N") for point in western["points"] for rule in point["violations"])


async def test_control_chart_shows_the_latest_points_and_follows_new_measurements(
    client: httpx.AsyncClient,
) -> None:
    charge_id = await new_charge(client, 1)
    await _post_series(client, charge_id)
    latest = await _chart(client, charge_id=charge_id, parameter="diameter_mm", limit=5)
    assert [point["value"] for point in latest["points"]] == SERIES[-5:]
    assert latest["limits"]["center"] == pytest.approx(statistics.mean(SERIES[-5:]))

    assert (await post_one(client, charge_id, "diameter_mm", 11.0, measured_at=at(100))).status_code == 201
    after = await _chart(client, charge_id=charge_id, parameter="diameter_mm", limit=5)
    assert [point["value"] for point in after["points"]] == [*SERIES[-4:], 11.0]


async def test_control_chart_of_an_empty_series_has_no_lines(client: httpx.AsyncClient) -> None:
    charge_id = await new_charge(client, 1)
    chart = await _chart(client, charge_id=charge_id, parameter="diameter_mm")
    assert chart["points"] == []
    assert chart["limits"] == dict.fromkeys(("center", "sigma", "ucl", "lcl", "mr_bar", "mr_ucl", "zones"))


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"charge_id": 424242, "parameter": "x"}, 404),
        ({"charge_id": 1}, 422),
        ({"charge_id": "one", "parameter": "x"}, 422),
        ({"charge_id": 1, "parameter": "x", "rules": "shewhart"}, 422),
        ({"charge_id": 1, "parameter": "x", "limit": 10_001}, 422),
    ],
)
async def test_control_chart_query_is_validated(
    client: httpx.AsyncClient, params: dict[str, Any], status: int
) -> None:
    await new_charge(client, 1)
    assert_problem(await client.get(CHART, params=params), status)


async def test_analyze_charge_reports_every_parameter_with_time_ordered_indices(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    charge_id = await new_charge(client, 1)
    await _post_series(client, charge_id)
    await _post_series(client, charge_id, parameter="bore_mm")
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=9.0, usl=11.0)
    context = app.state.resources
    # As a background task would: a session factory and a cache, no request.
    service = QualityService(context.sessions, context.cache)
    report = await service.analyze_charge(charge_id)

    assert [parameter["parameter"] for parameter in report["parameters"]] == ["bore_mm", "diameter_mm"]
    diameter = report["parameters"][1]
    center, sigma = chart_lines(SERIES)
    assert diameter["n"] == len(SERIES)
    assert (diameter["center"], diameter["sigma"]) == (pytest.approx(center), pytest.approx(sigma))
    assert diameter["mr_bar"] == pytest.approx(sigma * 1.128)
    assert diameter["cp"] == pytest.approx(2.0 / (6 * sigma))
    assert diameter["cpk"] == pytest.approx(min(11.0 - center, center - 9.0) / (3 * sigma))
    assert diameter["ppk"] == pytest.approx(min(11.0 - center, center - 9.0) / (3 * statistics.stdev(SERIES)))
    assert report["parameters"][0]["cp"] is None
    outlier = {"rule": "N1", "index": OUTLIER, "value": 13.0, "measured_at": at(OUTLIER)}
    assert outlier in diameter["violations"]
    assert all(
        set(violation) == {"rule", "index", "value", "measured_at"} for violation in diameter["violations"]
    )
    assert report["anomaly_count"] == sum(len(parameter["violations"]) for parameter in report["parameters"])

    western = await service.analyze_charge(charge_id, rules="western_electric")
    assert {"rule": "WE1", "index": OUTLIER, "value": 13.0, "measured_at": at(OUTLIER)} in western[
        "parameters"
    ][1]["violations"]


async def test_analyze_charge_uses_a_baseline_and_refuses_unknown_charges(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    charge_id = await new_charge(client, 1)
    await _post_series(client, charge_id)
    service = QualityService(app.state.resources.sessions, app.state.resources.cache)
    report = await service.analyze_charge(
        charge_id, baseline={"diameter_mm": Baseline(center=9.0, sigma=0.1)}
    )
    (diameter,) = report["parameters"]
    assert (diameter["center"], diameter["sigma"], diameter["ucl"]) == (9.0, 0.1, pytest.approx(9.3))
    # Every point lies above 9.3: all of them break rule 1 against that baseline.
    assert [v["index"] for v in diameter["violations"] if v["rule"] == "N1"] == list(range(len(SERIES)))
    with pytest.raises(NotFound):
        await service.analyze_charge(424242)
