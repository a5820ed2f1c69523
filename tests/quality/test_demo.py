"""The demo data: specs for every demo product and measurements that tell a story, seeded quickly once."""

from __future__ import annotations

import statistics
import time

import httpx
from sqlalchemy import select
from starlette.applications import Starlette

from erp_api.charges.models import Charge
from erp_api.charges.states import ChargeStatus
from erp_api.demo import DEMO_SPECS, PRODUCTS, seed_charges, seed_quality
from erp_api.http import API_PREFIX
from erp_api.quality.models import Measurement
from tests.quality.helpers import SPECS, SUMMARY


async def _charge_means(app: Starlette, product: str, parameter: str, line: str) -> list[float]:
    """Mean measured value per charge of one line, oldest charge first."""
    stmt = (
        select(Charge.id, Measurement.value)
        .join(Measurement, Measurement.charge_id == Charge.id)
        .where(Charge.product_sku == product, Charge.line == line, Measurement.parameter == parameter)
        .order_by(Charge.produced_at, Charge.id)
    )
    values: dict[int, list[float]] = {}
    async with app.state.resources.sessions() as session:
        for charge_id, value in await session.execute(stmt):
            values.setdefault(charge_id, []).append(value)
    return [statistics.mean(series) for series in values.values()]


async def test_demo_quality_data_is_seeded_once_fast_and_shows_drift_and_out_of_spec(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    sessions = app.state.resources.sessions
    started = time.monotonic()
    await seed_charges(sessions)
    specs, measurements = await seed_quality(sessions)
    assert time.monotonic() - started < 10
    assert specs == sum(len(parameters) for parameters in DEMO_SPECS.values()) and set(DEMO_SPECS) == set(
        PRODUCTS
    )
    assert measurements > 10_000
    assert await seed_quality(sessions) == (0, 0)

    listed = (await client.get(SPECS, params={"limit": 500})).json()["items"]
    assert len(listed) == specs
    assert any(spec["lsl"] is None for spec in listed) and any(spec["usl"] is None for spec in listed)

    summary = (await client.get(SUMMARY)).json()["items"]
    assert {(row["product_sku"], row["parameter"]) for row in summary} == {
        (product, parameter[0]) for product, parameters in DEMO_SPECS.items() for parameter in parameters
    }
    assert sum(row["n"] for row in summary) == measurements
    assert sum(row["out_of_spec"] for row in summary) > 0
    assert all(row["cpk"] is not None and row["ppk"] is not None for row in summary)

    # Line L3 drifts upward over the period; line L1 stays centred.
    drifting = await _charge_means(app, PRODUCTS[0], "diameter_mm", "L3")
    steady = await _charge_means(app, PRODUCTS[0], "diameter_mm", "L1")
    assert len(drifting) >= 10 and len(steady) >= 10
    third = len(drifting) // 3
    target = DEMO_SPECS[PRODUCTS[0]][0][4]
    assert statistics.mean(drifting[-third:]) - statistics.mean(drifting[:third]) > 0.05
    assert abs(statistics.mean(steady) - target) < 0.01


async def test_every_demo_charge_has_the_history_that_led_to_its_status(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    sessions = app.state.resources.sessions
    await seed_charges(sessions)
    async with sessions() as session:
        charges = (await session.execute(select(Charge.id, Charge.status))).all()
    assert {status for _id, status in charges} == {status.value for status in ChargeStatus}
    for charge_id, status in charges[:: len(charges) // 25]:
        items = (await client.get(f"{API_PREFIX}/charges/{charge_id}/history")).json()["items"]
        path = ["planned", *(item["to"] for item in items)]
        assert path[-1] == status
        assert [item["from"] for item in items] == path[:-1]
        assert all(item["by"]["name"] == "system (demo seed)" for item in items)
