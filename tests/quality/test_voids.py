"""Voiding a measurement (``POST /measurements/{id}/void``): it stays stored and listed as voided, and
counts in no summary, control chart or analysis from then on; on SQLite and PostgreSQL."""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from erp_api.quality.service import QualityService
from tests.charges.helpers import assert_problem
from tests.quality.helpers import (
    CHART,
    SUMMARY,
    given_spec,
    measurement_ids,
    measurements_url,
    new_charge,
    post_series,
    void,
    void_url,
)

ClientAs = Callable[[str], Awaitable[httpx.AsyncClient]]
# A stable series with one typo (100.0 instead of 10.0) at index 3.
SERIES = [10.0, 10.1, 9.9, 100.0, 10.2, 9.8, 10.0, 10.1]
TYPO = 3


async def _measured(client: httpx.AsyncClient) -> tuple[int, list[int]]:
    await given_spec(client, "diameter_mm", lsl=9.0, usl=11.0)
    charge_id = await new_charge(client, 1)
    await post_series(client, charge_id, "diameter_mm", SERIES)
    return charge_id, await measurement_ids(client, charge_id)


async def test_a_voided_measurement_stays_listed_with_who_voided_it_when_and_why(
    client: httpx.AsyncClient, client_as: ClientAs
) -> None:
    charge_id, ids = await _measured(client)
    listed_before = (await client.get(measurements_url(charge_id))).json()["items"]
    assert all(
        (item["voided"], item["void_reason"], item["voided_at"], item["voided_by"])
        == (False, None, None, None)
        for item in listed_before
    )
    manager = await client_as("quality_manager")
    before = datetime.now().astimezone()
    voided = await void(manager, ids[TYPO], "typed 100.0 for 10.0")
    assert (voided["id"], voided["value"], voided["voided"]) == (ids[TYPO], 100.0, True)
    assert (voided["void_reason"], voided["voided_by"]) == ("typed 100.0 for 10.0", "test quality_manager")
    assert datetime.fromisoformat(voided["voided_at"]) >= before.replace(microsecond=0)

    listed = (await client.get(measurements_url(charge_id))).json()["items"]
    assert [item["id"] for item in listed] == ids
    assert listed[TYPO] == voided
    assert [item["voided"] for item in listed] == [index == TYPO for index in range(len(SERIES))]

    trail = (await client.get("/api/v1/audit", params={"entity": "measurement", "id": ids[TYPO]})).json()
    (event,) = trail["items"]
    assert event["action"] == "void"
    assert event["actor"]["name"] == "test quality_manager"
    assert event["after"]["reason"] == "typed 100.0 for 10.0"


async def test_voiding_twice_is_409_and_an_unknown_measurement_is_404(client: httpx.AsyncClient) -> None:
    _charge_id, ids = await _measured(client)
    first = await void(client, ids[0], "first reason")
    problem = assert_problem(await client.post(void_url(ids[0]), json={"reason": "second reason"}), 409)
    assert "already voided" in problem["detail"]
    listed = await client.get(measurements_url(first["charge_id"]))
    assert listed.json()["items"][0]["void_reason"] == "first reason"
    assert_problem(await client.post(void_url(424242), json={"reason": "x"}), 404)
    assert_problem(await client.post("/api/v1/measurements/abc/void", json={"reason": "x"}), 404)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "x" * 501},
        {"reason": "two\nlines"},
        {"reason": "tab\there"},
        {"reason": 5},
    ],
)
async def test_a_void_needs_a_reason_of_1_to_500_printable_characters(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    charge_id, ids = await _measured(client)
    problem = assert_problem(await client.post(void_url(ids[0]), json=body), 422)
    assert problem["errors"][0]["field"].startswith("body")
    assert not any(item["voided"] for item in (await client.get(measurements_url(charge_id))).json()["items"])


async def test_a_reason_of_500_characters_is_accepted(client: httpx.AsyncClient) -> None:
    _charge_id, ids = await _measured(client)
    assert (await void(client, ids[0], "é" * 500))["void_reason"] == "é" * 500


async def test_only_quality_managers_void(client: httpx.AsyncClient, client_as: ClientAs) -> None:
    _charge_id, ids = await _measured(client)
    for role in ("viewer", "operator"):
        http = await client_as(role)
        assert_problem(await http.post(void_url(ids[0]), json={"reason": "typo"}), 403)


async def test_a_voided_measurement_leaves_the_cached_summary_and_chart(client: httpx.AsyncClient) -> None:
    charge_id, ids = await _measured(client)
    summary = (await client.get(SUMMARY, params={"product_sku": "PUMP-A"})).json()["items"][0]
    assert (summary["n"], summary["max"], summary["out_of_spec"]) == (8, 100.0, 1)
    chart_params = {"charge_id": charge_id, "parameter": "diameter_mm"}
    chart = (await client.get(CHART, params=chart_params)).json()
    assert len(chart["points"]) == 8

    await void(client, ids[TYPO])
    kept = [value for index, value in enumerate(SERIES) if index != TYPO]
    summary = (await client.get(SUMMARY, params={"product_sku": "PUMP-A"})).json()["items"][0]
    assert (summary["n"], summary["max"], summary["out_of_spec"]) == (7, 10.2, 0)
    assert summary["mean"] == pytest.approx(statistics.mean(kept))
    assert summary["std"] == pytest.approx(statistics.stdev(kept))
    chart = (await client.get(CHART, params=chart_params)).json()
    assert [point["id"] for point in chart["points"]] == [i for index, i in enumerate(ids) if index != TYPO]
    assert chart["limits"]["center"] == pytest.approx(statistics.mean(kept))
    assert not any("N1" in point["violations"] for point in chart["points"])


async def test_an_analysis_leaves_voided_measurements_out(app: Starlette, client: httpx.AsyncClient) -> None:
    charge_id, ids = await _measured(client)
    service = QualityService(app.state.resources.sessions, app.state.resources.cache)
    (before,) = (await service.analyze_charge(charge_id))["parameters"]
    assert before["n"] == 8
    await void(client, ids[TYPO])
    (after,) = (await service.analyze_charge(charge_id))["parameters"]
    assert after["n"] == 7
    assert after["center"] == pytest.approx(statistics.mean(SERIES[:TYPO] + SERIES[TYPO + 1 :]))
    assert not [violation for violation in after["violations"] if violation["rule"] == "N1"]

    for measurement_id in ids:
        if measurement_id != ids[TYPO]:
            await void(client, measurement_id)
    assert (await service.analyze_charge(charge_id))["parameters"] == []
