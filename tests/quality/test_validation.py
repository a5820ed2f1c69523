"""What a measurement must satisfy to be stored (``erp_api/quality/validation.py``): a spec for its
parameter, and no date in the future; checked by the writer for single, grouped and batch writes; and an
analysis baseline only for measured parameters. The checks alone, then through the app on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event
from starlette.applications import Starlette

from erp_api.errors import ValidationFailed
from erp_api.quality.records import NewMeasurement, StoredMeasurement
from erp_api.quality.validation import FUTURE_TOLERANCE, MAX_LISTED_ERRORS, batch_refusal, measurement_refusal
from erp_api.quality.writer import MeasurementWriter
from erp_api.settings import Settings
from tests.analyses.helpers import analyses_url
from tests.charges.helpers import assert_problem
from tests.quality.helpers import (
    at,
    given_spec,
    measurements_url,
    new_charge,
    post_one,
    post_series,
    serving,
    tuned,
    void,
)

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
KNOWN = {"bore_mm", "diameter_mm"}


# The checks on their own ---------------------------------------------------------------------------


def test_a_parameter_without_a_spec_is_refused_naming_the_known_ones() -> None:
    refusal = measurement_refusal("diamter_mm", NOW, product_sku="PUMP-A", known=KNOWN, now=NOW)
    assert isinstance(refusal, ValidationFailed)
    (error,) = refusal.extra["errors"]
    assert (error["field"], error["type"]) == ("body.parameter", "unknown_parameter")
    assert error["known_parameters"] == ["bore_mm", "diameter_mm"]
    assert "bore_mm, diameter_mm" in refusal.detail and "diamter_mm" in refusal.detail
    assert measurement_refusal("diameter_mm", NOW, product_sku="PUMP-A", known=KNOWN, now=NOW) is None


def test_measured_at_may_be_at_most_five_minutes_ahead_of_the_server() -> None:
    edge = NOW + FUTURE_TOLERANCE
    assert timedelta(minutes=5) == FUTURE_TOLERANCE
    assert measurement_refusal("bore_mm", edge, product_sku="P", known=KNOWN, now=NOW) is None
    late = measurement_refusal(
        "bore_mm", edge + timedelta(microseconds=1), product_sku="P", known=KNOWN, now=NOW
    )
    assert isinstance(late, ValidationFailed)
    assert late.extra["errors"][0]["field"] == "body.measured_at"
    assert (
        measurement_refusal("bore_mm", NOW - timedelta(days=3650), product_sku="P", known=KNOWN, now=NOW)
        is None
    )


def test_a_batch_refusal_names_each_item_and_counts_beyond_the_listed_errors() -> None:
    items = [("bore_mm", 1.0, NOW)] * 3 + [("nope", 1.0, NOW)] + [("bore_mm", 1.0, NOW + timedelta(hours=1))]
    refusal = batch_refusal(items, product_sku="PUMP-A", known=KNOWN, now=NOW)
    assert isinstance(refusal, ValidationFailed)
    assert [error["field"] for error in refusal.extra["errors"]] == [
        "body.items.3.parameter",
        "body.items.4.measured_at",
    ]
    assert refusal.detail.endswith("(and 1 more)")
    assert batch_refusal(items[:3], product_sku="PUMP-A", known=KNOWN, now=NOW) is None

    many = [("nope", 1.0, NOW)] * (MAX_LISTED_ERRORS + 10)
    refusal = batch_refusal(many, product_sku="PUMP-A", known=KNOWN, now=NOW)
    assert refusal is not None
    assert len(refusal.extra["errors"]) == MAX_LISTED_ERRORS
    assert refusal.detail.endswith(f"(and {MAX_LISTED_ERRORS + 9} more)")


# Through the app ------------------------------------------------------------------------------------


async def _listed(client: httpx.AsyncClient, charge_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.get(measurements_url(charge_id))).json()["items"]
    return items


async def test_a_measurement_of_a_parameter_without_a_spec_is_422_and_not_stored(
    client: httpx.AsyncClient,
) -> None:
    await given_spec(client, "diameter_mm", "bore_mm")
    await given_spec(client, "weight_g", product_sku="VALVE-B")
    charge_id = await new_charge(client, 1)
    problem = assert_problem(await post_one(client, charge_id, "diamter_mm", 25.0), 422)
    assert problem["errors"][0]["field"] == "body.parameter"
    assert problem["errors"][0]["known_parameters"] == ["bore_mm", "diameter_mm"]
    # A spec of another product does not count.
    assert_problem(await post_one(client, charge_id, "weight_g", 25.0), 422)
    assert await _listed(client, charge_id) == []
    assert (await post_one(client, charge_id, "diameter_mm", 25.0)).status_code == 201


async def test_a_batch_with_one_unknown_parameter_stores_nothing_and_names_the_item(
    client: httpx.AsyncClient,
) -> None:
    await given_spec(client, "diameter_mm")
    charge_id = await new_charge(client, 1)
    items = [{"parameter": "diameter_mm", "value": 1.0, "measured_at": at(i)} for i in range(5)]
    items[3] = {"parameter": "diameter", "value": 1.0, "measured_at": at(3)}
    problem = assert_problem(await client.post(measurements_url(charge_id), json={"items": items}), 422)
    assert [error["field"] for error in problem["errors"]] == ["body.items.3.parameter"]
    assert "diameter_mm" in problem["detail"]
    assert await _listed(client, charge_id) == []


async def test_a_measurement_dated_more_than_five_minutes_ahead_is_422(client: httpx.AsyncClient) -> None:
    await given_spec(client, "diameter_mm")
    charge_id = await new_charge(client, 1)
    far = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    near = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    problem = assert_problem(await post_one(client, charge_id, "diameter_mm", 1.0, measured_at=far), 422)
    assert problem["errors"][0]["field"] == "body.measured_at"
    assert_problem(
        await post_one(client, charge_id, "diameter_mm", 1.0, measured_at="2099-01-01T00:00:00Z"), 422
    )
    batch = {"items": [{"parameter": "diameter_mm", "value": 1.0, "measured_at": far}]}
    problem = assert_problem(await client.post(measurements_url(charge_id), json=batch), 422)
    assert problem["errors"][0]["field"] == "body.items.0.measured_at"
    assert await _listed(client, charge_id) == []
    assert (await post_one(client, charge_id, "diameter_mm", 1.0, measured_at=near)).status_code == 201


async def test_refused_rows_of_a_group_commit_do_not_fail_the_rows_they_share_it_with(
    settings: Settings,
) -> None:
    async with serving(tuned(settings, ingest_window_ms=50)) as (_app, client):
        await given_spec(client, "diameter_mm")
        charge_id = await new_charge(client, 1)
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        posts = [post_one(client, charge_id, "diameter_mm", float(i)) for i in range(6)]
        posts += [
            post_one(client, charge_id, "unknown", 7.0),
            post_one(client, charge_id, "diameter_mm", 8.0, measured_at=future),
        ]
        responses = await asyncio.gather(*posts)
        assert [response.status_code for response in responses] == [201] * 6 + [422, 422]
        assert sorted(item["value"] for item in await _listed(client, charge_id)) == [
            float(i) for i in range(6)
        ]


async def test_the_writer_reads_the_specs_once_per_write_and_refuses_row_by_row(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    await given_spec(client, "diameter_mm")
    await given_spec(client, "weight_g", product_sku="VALVE-B")
    pump, valve = await new_charge(client, 1), await new_charge(client, 2, product_sku="VALVE-B")
    spec_reads: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM quality_specs" in statement:
            spec_reads.append(statement)

    engine = app.state.resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    now = datetime.now(UTC)
    rows = [
        NewMeasurement(pump, "PUMP-A", "diameter_mm", 1.0, now),
        NewMeasurement(valve, "VALVE-B", "weight_g", 2.0, now),
        NewMeasurement(pump, "PUMP-A", "weight_g", 3.0, now),
        NewMeasurement(valve, "VALVE-B", "weight_g", 4.0, now + timedelta(hours=1)),
    ]
    results = await MeasurementWriter(app.state.resources.sessions, app.state.resources.cache).write(rows)
    event.remove(engine, "before_cursor_execute", record)
    assert len(spec_reads) == 1
    assert [type(result) for result in results] == [
        StoredMeasurement,
        StoredMeasurement,
        ValidationFailed,
        ValidationFailed,
    ]
    assert [item["value"] for item in await _listed(client, pump)] == [1.0]
    assert [item["value"] for item in await _listed(client, valve)] == [2.0]


async def test_an_analysis_baseline_for_a_parameter_without_data_is_422_at_submit(
    client: httpx.AsyncClient,
) -> None:
    await given_spec(client, "diameter_mm", "bore_mm")
    charge_id = await new_charge(client, 1)
    await post_series(client, charge_id, "diameter_mm", [10.0, 10.1, 9.9])
    await post_series(client, charge_id, "bore_mm", [5.0])
    baseline = {"center": 10.0, "sigma": 0.1}
    url = analyses_url(charge_id)

    problem = assert_problem(
        await client.post(url, json={"rules": "nelson", "baseline": {"diamter_mm": baseline}}), 422
    )
    assert problem["errors"][0]["field"] == "body.baseline.diamter_mm"
    assert "bore_mm, diameter_mm" in problem["detail"]
    (bore_id,) = [item["id"] for item in await _listed(client, charge_id) if item["parameter"] == "bore_mm"]
    await void(client, bore_id)
    assert_problem(await client.post(url, json={"rules": "nelson", "baseline": {"bore_mm": baseline}}), 422)
    assert_problem(
        await client.post(analyses_url(424242), json={"rules": "nelson", "baseline": {"x": baseline}}), 404
    )

    accepted = await client.post(url, json={"rules": "nelson", "baseline": {"diameter_mm": baseline}})
    assert accepted.status_code == 202, accepted.text
