"""GET /quality/trend: one series' figures per hour, day or ISO week, from the rollups, cached."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.charges.helpers import assert_problem
from tests.quality.helpers import (
    API_PREFIX,
    given_spec,
    measurements_url,
    new_charge,
    post_one,
    put_spec,
    void,
)

TREND = f"{API_PREFIX}/quality/trend"
D2 = 1.128
# Wednesday 2026-04-01 22:00 UTC: the points run over midnight into Thursday.
START = datetime(2026, 4, 1, 22, 0, tzinfo=UTC)
VALUES = [10.0, 10.4, 9.7, 10.1, 10.9, 9.9, 10.2, 10.0, 9.6, 10.3, 10.5, 9.8]


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


async def _post(client: httpx.AsyncClient, charge_id: int, points: list[tuple[float, float]]) -> None:
    items = [
        {"parameter": "diameter_mm", "value": value, "measured_at": at(m).isoformat()} for m, value in points
    ]
    response = await client.post(measurements_url(charge_id), json={"items": items})
    assert response.status_code == 201, response.text


async def _trend(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    query = {"product_sku": "PUMP-A", "parameter": "diameter_mm", **params}
    response = await client.get(TREND, params=query)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def _expected(values: list[float], lsl: float, usl: float) -> dict[str, Any]:
    mean = statistics.mean(values)
    sigma = statistics.mean(abs(b - a) for a, b in itertools.pairwise(values)) / D2
    return {
        "n": len(values),
        "mean": mean,
        "std": statistics.stdev(values),
        "min": min(values),
        "max": max(values),
        "out_of_spec": sum(v < lsl or v > usl for v in values),
        "cpk": min(usl - mean, mean - lsl) / (3 * sigma),
    }


def _assert_point(point: dict[str, Any], want: dict[str, Any]) -> None:
    for name, value in want.items():
        assert point[name] == (value if isinstance(value, int) else pytest.approx(value, rel=1e-9)), name


async def test_each_day_has_the_figures_of_its_points_in_time_order(client: httpx.AsyncClient) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=9.65, usl=10.8)
    charge_id = await new_charge(client, 1)
    # Every 20 minutes from 22:00: six points on Wednesday, six on Thursday; posted out of order.
    points = [(20.0 * i, value) for i, value in enumerate(VALUES)]
    await _post(client, charge_id, points[6:] + points[:6])
    document = await _trend(client, period="day", **{"from": at(-600).isoformat(), "to": at(300).isoformat()})
    assert (document["from"], document["to"]) == ("2026-04-01T00:00:00+00:00", "2026-04-03T00:00:00+00:00")
    assert (document["lsl"], document["usl"], document["period"]) == (9.65, 10.8, "day")
    wednesday, thursday = document["items"]
    assert (wednesday["start"], thursday["start"]) == (
        "2026-04-01T00:00:00+00:00",
        "2026-04-02T00:00:00+00:00",
    )
    _assert_point(wednesday, _expected(VALUES[:6], 9.65, 10.8))
    _assert_point(thursday, _expected(VALUES[6:], 9.65, 10.8))


async def test_hours_and_weeks_are_whole_periods_and_empty_ones_are_left_out(
    client: httpx.AsyncClient,
) -> None:
    await given_spec(client, "diameter_mm", lsl=0.0, usl=100.0)
    charge_id = await new_charge(client, 1)
    await _post(client, charge_id, [(0, 1.0), (10, 2.0), (130, 4.0), (131, 4.0)])
    hours = await _trend(client, period="hour", **{"from": at(5).isoformat(), "to": at(200).isoformat()})
    assert (hours["from"], hours["to"]) == ("2026-04-01T22:00:00+00:00", "2026-04-02T02:00:00+00:00")
    assert [(p["start"], p["n"], p["mean"]) for p in hours["items"]] == [
        ("2026-04-01T22:00:00+00:00", 2, 1.5),
        ("2026-04-02T00:00:00+00:00", 2, 4.0),
    ]
    constant = hours["items"][1]
    assert (constant["std"], constant["cpk"]) == (0.0, None)
    weeks = await _trend(client, period="week", **{"from": at(0).isoformat(), "to": at(1).isoformat()})
    # ISO weeks start on Monday: 2026-03-30.
    assert (weeks["from"], weeks["to"]) == ("2026-03-30T00:00:00+00:00", "2026-04-06T00:00:00+00:00")
    assert [(p["start"], p["n"]) for p in weeks["items"]] == [("2026-03-30T00:00:00+00:00", 4)]


async def test_the_cached_trend_follows_new_and_voided_measurements_and_spec_changes(
    client: httpx.AsyncClient,
) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=9.0, usl=11.0)
    charge_id = await new_charge(client, 1)
    await _post(client, charge_id, [(0, 10.0), (1, 10.5)])
    window = {"period": "day", "from": at(0).isoformat(), "to": at(60).isoformat()}
    assert [p["n"] for p in (await _trend(client, **window))["items"]] == [2]
    assert [p["n"] for p in (await _trend(client, **window))["items"]] == [2]

    response = await post_one(client, charge_id, "diameter_mm", 12.0, measured_at=at(2).isoformat())
    assert response.status_code == 201
    (point,) = (await _trend(client, **window))["items"]
    assert (point["n"], point["max"], point["out_of_spec"]) == (3, 12.0, 1)

    await put_spec(client, "PUMP-A", "diameter_mm", lsl=9.0, usl=13.0)
    (point,) = (await _trend(client, **window))["items"]
    assert point["out_of_spec"] == 0

    await void(client, response.json()["id"])
    (point,) = (await _trend(client, **window))["items"]
    assert (point["n"], point["max"]) == (2, 10.5)


@pytest.mark.parametrize(
    "params",
    [
        {"period": "hour", "from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
        {"period": "day", "from": "2026-01-01T00:00:00+00:00", "to": "2029-01-01T00:00:00+00:00"},
        {"period": "day", "from": "2026-01-02T00:00:00+00:00", "to": "2026-01-01T00:00:00+00:00"},
        {"period": "month", "from": "2026-01-01T00:00:00+00:00", "to": "2026-02-01T00:00:00+00:00"},
        {"period": "day", "from": "2026-01-01T00:00:00+00:00"},
        {"period": "day", "from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00+00:00"},
    ],
)
async def test_the_trend_query_is_validated_and_bounded(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get(TREND, params={"product_sku": "PUMP-A", "parameter": "diameter_mm", **params})
    assert_problem(response, 422)


async def test_a_series_without_measurements_has_an_empty_trend(client: httpx.AsyncClient) -> None:
    await given_spec(client, "diameter_mm")
    document = await _trend(client, period="week", **{"from": at(0).isoformat(), "to": at(1).isoformat()})
    assert document["items"] == []
    assert document["usl"] == 1e6
