"""Control limits of a spec: set by hand, computed from a baseline, listed with their history, and used
by the control chart and the charge analysis (``erp_api/quality/limits/service.py``), on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from erp_api.quality.limits import service as limits_module
from erp_api.quality.service import QualityService
from erp_api.quality.spc.series import Baseline
from tests.charges.helpers import assert_problem
from tests.quality.helpers import (
    CHART,
    at,
    given_spec,
    limits_url,
    measurement_ids,
    new_charge,
    post_series,
    void,
)

ClientAs = Callable[[str], Awaitable[httpx.AsyncClient]]
SERIES = [10.0, 10.2, 9.9, 10.1, 9.7, 10.3, 10.0, 9.8]


def individuals(values: list[float]) -> tuple[float, float]:
    """(center, sigma) of an individuals chart by hand: mean, and mean moving range / 1.128."""
    return statistics.mean(values), statistics.mean(abs(b - a) for a, b in itertools.pairwise(values)) / 1.128


async def _limits(client: httpx.AsyncClient, **path: str) -> dict[str, Any]:
    response = await client.get(limits_url(**path))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _chart(client: httpx.AsyncClient, charge_id: int) -> dict[str, Any]:
    response = await client.get(CHART, params={"charge_id": charge_id, "parameter": "diameter_mm"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_limits_set_by_hand_become_current_and_the_history_says_who_set_what(
    client: httpx.AsyncClient, client_as: ClientAs
) -> None:
    await given_spec(client, "diameter_mm")
    assert await _limits(client) == {"current": None, "history": []}
    manager = await client_as("quality_manager")

    first = await manager.put(limits_url(), json={"center": 10.0, "sigma": 0.5})
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["center"], body["sigma"], body["ucl"], body["lcl"]) == (10.0, 0.5, 11.5, 8.5)
    assert (body["source"], body["basis"], body["created_by"]) == ("manual", None, "test quality_manager")
    assert (body["product_sku"], body["parameter"]) == ("PUMP-A", "diameter_mm")

    second = (await manager.put(limits_url(), json={"center": 10.1, "sigma": 0.25})).json()
    listed = await _limits(client)
    assert listed["current"] == second
    assert listed["history"] == [second, body]
    assert second["id"] > body["id"]

    trail = (await client.get("/api/v1/audit", params={"entity": "control_limits"})).json()["items"]
    assert len(trail) == 2
    assert {row["entity_id"] for row in trail} == {"PUMP-A/diameter_mm"}
    assert {row["after"]["id"] for row in trail} == {body["id"], second["id"]}


async def test_computed_limits_are_the_mean_and_moving_range_of_the_non_voided_points_in_the_range(
    client: httpx.AsyncClient,
) -> None:
    await given_spec(client, "diameter_mm")
    charge_id = await new_charge(client, 1)
    # Points at minutes 0..7 (posted in one batch), plus one at minute 20 outside the range.
    await post_series(client, charge_id, "diameter_mm", SERIES)
    await post_series(client, charge_id, "diameter_mm", [50.0], start=20)
    ids = await measurement_ids(client, charge_id)
    await void(client, ids[4], "transcription error")  # 9.7 at minute 4

    response = await client.post(f"{limits_url()}/compute", json={"from": at(0), "to": at(10)})
    assert response.status_code == 201, response.text
    body = response.json()
    kept = [value for index, value in enumerate(SERIES) if index != 4]
    center, sigma = individuals(kept)
    assert (body["center"], body["sigma"]) == (
        pytest.approx(center, rel=1e-12),
        pytest.approx(sigma, rel=1e-12),
    )
    assert (body["ucl"], body["lcl"]) == (
        pytest.approx(center + 3 * sigma),
        pytest.approx(center - 3 * sigma),
    )
    assert body["source"] == "computed"
    assert body["basis"] == {"from": at(0), "to": at(10), "n": len(kept)}
    assert (await _limits(client))["current"] == body


async def test_computed_limits_from_charges_use_only_the_points_of_those_charges(
    client: httpx.AsyncClient,
) -> None:
    await given_spec(client, "diameter_mm")
    first, second = await new_charge(client, 1), await new_charge(client, 2)
    await post_series(client, first, "diameter_mm", SERIES[:4])
    await post_series(client, second, "diameter_mm", SERIES[4:], start=4)
    response = await client.post(f"{limits_url()}/compute", json={"charge_ids": [second, second]})
    assert response.status_code == 201, response.text
    body = response.json()
    center, sigma = individuals(SERIES[4:])
    assert (body["center"], body["sigma"]) == (pytest.approx(center), pytest.approx(sigma))
    assert body["basis"] == {"charge_ids": [second], "n": 4}


async def test_a_baseline_of_unknown_or_foreign_charges_is_422_naming_them(client: httpx.AsyncClient) -> None:
    await given_spec(client, "diameter_mm")
    mine = await new_charge(client, 1)
    foreign = await new_charge(client, 2, product_sku="VALVE-B")
    await post_series(client, mine, "diameter_mm", SERIES)
    url = f"{limits_url()}/compute"
    problem = assert_problem(await client.post(url, json={"charge_ids": [mine, 424242]}), 422)
    assert "424242" in problem["detail"]
    problem = assert_problem(await client.post(url, json={"charge_ids": [mine, foreign]}), 422)
    assert str(foreign) in problem["detail"] and "VALVE-B" not in problem["detail"]
    assert (await _limits(client))["current"] is None


async def test_a_baseline_needs_two_points_with_a_spread_and_at_most_the_bound(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await given_spec(client, "diameter_mm")
    charge_id = await new_charge(client, 1)
    await post_series(client, charge_id, "diameter_mm", [10.0, 10.0, 10.0, 10.5])
    url = f"{limits_url()}/compute"
    problem = assert_problem(await client.post(url, json={"from": at(0), "to": at(1)}), 422)
    assert "1 non-voided point" in problem["detail"]
    assert_problem(await client.post(url, json={"from": at(100), "to": at(200)}), 422)
    problem = assert_problem(await client.post(url, json={"from": at(0), "to": at(3)}), 422)
    assert "no spread" in problem["detail"]

    monkeypatch.setattr(limits_module, "MAX_BASELINE_POINTS", 3)
    problem = assert_problem(await client.post(url, json={"from": at(0), "to": at(10)}), 422)
    assert "more than 3 points" in problem["detail"]
    assert (await _limits(client))["current"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"center": 10.0, "sigma": 0},
        {"center": 10.0, "sigma": -1},
        {"center": 10.0},
        {"sigma": 1.0},
        {"center": "10", "sigma": 1.0},
        {"center": 1e16, "sigma": 1.0},
        {"center": 10.0, "sigma": 1.0, "ucl": 13.0},
    ],
)
async def test_limits_set_by_hand_are_validated(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    await given_spec(client, "diameter_mm")
    assert_problem(await client.put(limits_url(), json=body), 422)
    raw = b'{"center": 10.0, "sigma": Infinity}'
    headers = {"content-type": "application/json"}
    assert (await client.put(limits_url(), content=raw, headers=headers)).status_code in {400, 422}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"from": "2026-04-01T06:00:00+00:00"},
        {"to": "2026-04-01T06:00:00+00:00"},
        {"from": "2026-04-01T07:00:00+00:00", "to": "2026-04-01T06:00:00+00:00"},
        {"from": "2026-04-01T06:00:00", "to": "2026-04-01T07:00:00"},
        {"from": "2026-04-01T06:00:00+00:00", "to": "2026-04-01T07:00:00+00:00", "charge_ids": [1]},
        {"charge_ids": []},
        {"charge_ids": [0]},
        {"charge_ids": ["1"]},
    ],
)
async def test_a_baseline_takes_exactly_one_form(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    await given_spec(client, "diameter_mm")
    assert_problem(await client.post(f"{limits_url()}/compute", json=body), 422)


async def test_limits_of_a_parameter_without_a_spec_are_404(client: httpx.AsyncClient) -> None:
    await given_spec(client, "diameter_mm")
    url = limits_url(parameter="bore_mm")
    assert_problem(await client.get(url), 404)
    assert_problem(await client.put(url, json={"center": 1.0, "sigma": 1.0}), 404)
    assert_problem(await client.post(f"{url}/compute", json={"charge_ids": [1]}), 404)
    assert_problem(await client.get(limits_url(product_sku="OTHER")), 404)


async def test_viewers_read_limits_and_only_quality_managers_write_them(
    client: httpx.AsyncClient, client_as: ClientAs
) -> None:
    await given_spec(client, "diameter_mm")
    viewer, operator = await client_as("viewer"), await client_as("operator")
    assert (await viewer.get(limits_url())).status_code == 200
    for http in (viewer, operator):
        assert_problem(await http.put(limits_url(), json={"center": 1.0, "sigma": 1.0}), 403)
        assert_problem(await http.post(f"{limits_url()}/compute", json={"charge_ids": [1]}), 403)


async def test_the_control_chart_uses_the_current_stored_limits_once_they_are_set(
    client: httpx.AsyncClient,
) -> None:
    await given_spec(client, "diameter_mm")
    charge_id = await new_charge(client, 1)
    await post_series(client, charge_id, "diameter_mm", SERIES)
    before = await _chart(client, charge_id)  # cached from here on
    center, sigma = individuals(SERIES)
    assert (before["limits_source"], before["limits_id"]) == ("computed", None)
    assert (before["limits"]["center"], before["limits"]["sigma"]) == (
        pytest.approx(center),
        pytest.approx(sigma),
    )

    stored = (await client.put(limits_url(), json={"center": 10.0, "sigma": 0.25})).json()
    chart = await _chart(client, charge_id)
    assert (chart["limits_source"], chart["limits_id"]) == ("stored", stored["id"])
    assert (chart["limits"]["center"], chart["limits"]["sigma"]) == (10.0, 0.25)
    assert (chart["limits"]["ucl"], chart["limits"]["lcl"]) == (10.75, 9.25)
    assert chart["limits"]["zones"]["C"] == {"lower": 9.75, "upper": 10.25}
    assert [point["zone"] for point in chart["points"]] == ["C", "C", "C", "C", "B", "B", "C", "C"]

    newer = (await client.put(limits_url(), json={"center": 9.0, "sigma": 0.2})).json()
    chart = await _chart(client, charge_id)
    assert (chart["limits_id"], chart["limits"]["center"]) == (newer["id"], 9.0)
    assert all("N1" in point["violations"] for point in chart["points"])


async def test_an_analysis_uses_the_stored_limits_unless_given_a_baseline(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    await given_spec(client, "diameter_mm")
    await given_spec(client, "bore_mm")
    charge_id = await new_charge(client, 1)
    await post_series(client, charge_id, "diameter_mm", SERIES)
    await post_series(client, charge_id, "bore_mm", SERIES)
    stored = (await client.put(limits_url(), json={"center": 9.0, "sigma": 0.2})).json()
    service = QualityService(app.state.resources.sessions, app.state.resources.cache)

    report = await service.analyze_charge(charge_id)
    bore, diameter = report["parameters"]
    assert (diameter["limits_source"], diameter["limits_id"]) == ("stored", stored["id"])
    assert (diameter["center"], diameter["sigma"]) == (9.0, 0.2)
    assert [v["index"] for v in diameter["violations"] if v["rule"] == "N1"] == list(range(len(SERIES)))
    assert (bore["limits_source"], bore["limits_id"]) == ("computed", None)
    assert bore["center"] == pytest.approx(statistics.mean(SERIES))

    given = await service.analyze_charge(
        charge_id, baseline={"diameter_mm": Baseline(center=10.0, sigma=1.0)}
    )
    diameter = given["parameters"][1]
    assert (diameter["limits_source"], diameter["limits_id"]) == ("baseline", None)
    assert (diameter["center"], diameter["sigma"]) == (10.0, 1.0)
    assert diameter["violations"] == []
