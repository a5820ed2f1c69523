"""QualityService as routes and tasks call it, on the real database (SQLite and PostgreSQL).

Without an ingestor, as in a background task: every measurement commits on its own. What a caller
relies on: a spec write or a measurement shows in the next read of every cached listing, summary
and chart it changes; batches are all or nothing; summary and chart figures are those of the series
in time order (checked here by hand on series of a few points).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.charges.schemas import ChargeCreate
from erp_api.charges.service import ChargeService
from erp_api.charges.states import ChargeStatus
from erp_api.errors import Conflict, NotFound
from erp_api.quality.models import Measurement
from erp_api.quality.schemas import (
    ControlChartQuery,
    MeasurementBatchIn,
    MeasurementIn,
    MeasurementListQuery,
    SpecBody,
    SpecListQuery,
    SummaryQuery,
)
from erp_api.quality.service import QualityService
from erp_api.resources import Resources, open_resources
from erp_api.settings import Settings
from tests.jobs.fakes import RecordingTaskClient

T0 = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
D2 = 1.128


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[Resources]:
    """The services as a background task has them: no ingestor, one memory cache shared by all."""
    opened = await open_resources(settings, tasks=RecordingTaskClient())
    yield opened
    await opened.close()


@pytest.fixture
def service(ctx: Resources) -> QualityService:
    return ctx.quality


@pytest.fixture
def charges(ctx: Resources) -> ChargeService:
    return ctx.charges


@pytest.fixture
def sessions(ctx: Resources) -> async_sessionmaker[AsyncSession]:
    return ctx.sessions


async def new_charge(
    charges: ChargeService,
    serial: int,
    product_sku: str = "PUMP-A",
    status: ChargeStatus = ChargeStatus.PLANNED,
) -> int:
    """A charge created (planned, as every charge starts) and moved on to ``status`` if need be."""
    charge = await charges.create(
        ChargeCreate(
            charge_number=f"CH-2026-{serial:06d}",
            product_sku=product_sku,
            quantity=Decimal(10),
            unit="pcs",
            line="L1",
            produced_at=T0,
        )
    )
    if status is not ChargeStatus.PLANNED:
        await charges.transition(charge.id, status, None)
    return charge.id


async def specify(service: QualityService, *parameters: str) -> None:
    """Specs for ``parameters`` of PUMP-A (a measurement needs its parameter's spec) that no test
    value breaks; tests about limits put their own."""
    for parameter in parameters:
        await service.put_spec("PUMP-A", parameter, SpecBody(unit="mm", usl=1000.0))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def post_series(
    service: QualityService, charge_id: int, parameter: str, values: dict[int, float]
) -> int:
    """One batch of ``{minute: value}``, posted in the dict's order (not necessarily time order)."""
    items = [
        MeasurementIn(parameter=parameter, value=value, measured_at=at(minute))
        for minute, value in values.items()
    ]
    return await service.record_batch(charge_id, MeasurementBatchIn(items=items))


async def measurements(service: QualityService, charge_id: int, **query: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(
        await service.measurement_page(charge_id, MeasurementListQuery(**query))
    )
    return loaded


async def specs(service: QualityService, **query: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(await service.spec_page(SpecListQuery(**query)))
    return loaded


async def summary(service: QualityService, **query: Any) -> list[dict[str, Any]]:
    loaded: dict[str, Any] = orjson.loads(await service.summary(SummaryQuery(**query)))
    items: list[dict[str, Any]] = loaded["items"]
    return items


async def chart(service: QualityService, charge_id: int, parameter: str, **query: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(
        await service.control_chart(ControlChartQuery(charge_id=charge_id, parameter=parameter, **query))
    )
    return loaded


async def stored_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Measurement)) or 0)


# Specifications ---------------------------------------------------------------------------------


async def test_putting_a_spec_creates_it_then_replaces_it_and_the_listing_shows_the_latest(
    service: QualityService,
) -> None:
    spec, created = await service.put_spec("PUMP-A", "diameter", SpecBody(unit="mm", lsl=9.0, usl=11.0))
    assert created
    assert (spec.lsl, spec.usl, spec.target) == (9.0, 11.0, None)
    assert [(item["lsl"], item["usl"]) for item in (await specs(service))["items"]] == [(9.0, 11.0)]

    spec, created = await service.put_spec("PUMP-A", "diameter", SpecBody(unit="mm", lsl=9.5, target=10.0))
    assert not created
    listed = (await specs(service))["items"]
    assert [(item["lsl"], item["usl"], item["target"]) for item in listed] == [(9.5, None, 10.0)]


async def test_spec_pages_reach_every_spec_once_in_creation_order_and_filter_by_product(
    service: QualityService,
) -> None:
    names = [("PUMP-A", "bore"), ("PUMP-B", "bore"), ("PUMP-A", "diameter"), ("PUMP-A", "length")]
    for product_sku, parameter in names:
        await service.put_spec(product_sku, parameter, SpecBody(unit="mm", usl=1.0))
    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    while True:
        page = await specs(service, limit=3, cursor=cursor)
        seen.extend((item["product_sku"], item["parameter"]) for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    only_a = await specs(service, product_sku="PUMP-A")
    assert [item["parameter"] for item in only_a["items"]] == ["bore", "diameter", "length"]


# Measurements -----------------------------------------------------------------------------------


async def test_a_batch_is_stored_and_listed_oldest_first_across_pages(
    service: QualityService, charges: ChargeService
) -> None:
    charge_id = await new_charge(charges, 1)
    await specify(service, "diameter", "bore")
    assert (await measurements(service, charge_id))["items"] == []  # cached empty listing
    count = await post_series(service, charge_id, "diameter", {3: 10.3, 0: 10.0, 2: 10.2, 1: 10.1, 4: 10.4})
    await post_series(service, charge_id, "bore", {0: 5.0})
    assert count == 5
    values: list[float] = []
    cursor: str | None = None
    while True:
        page = await measurements(service, charge_id, parameter="diameter", limit=2, cursor=cursor)
        values.extend(item["value"] for item in page["items"])
        assert all(item["charge_id"] == charge_id for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert values == [10.0, 10.1, 10.2, 10.3, 10.4]
    assert len((await measurements(service, charge_id))["items"]) == 6


async def test_a_single_measurement_commits_and_shows_in_the_cached_listing(
    service: QualityService, charges: ChargeService
) -> None:
    charge_id = await new_charge(charges, 1)
    await specify(service, "diameter")
    assert (await measurements(service, charge_id))["items"] == []
    stored = await service.record(charge_id, MeasurementIn(parameter="diameter", value=10.5))
    assert (stored.charge_id, stored.parameter, stored.value) == (charge_id, "diameter", 10.5)
    assert stored.measured_at.tzinfo is not None  # defaulted to now
    listed = (await measurements(service, charge_id))["items"]
    assert [(item["id"], item["value"]) for item in listed] == [(stored.id, 10.5)]


async def test_a_rejected_charge_takes_no_measurements_and_a_batch_stores_none(
    service: QualityService, charges: ChargeService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    charge_id = await new_charge(charges, 1, status=ChargeStatus.IN_PRODUCTION)
    await specify(service, "diameter")
    await service.record(charge_id, MeasurementIn(parameter="diameter", value=10.0))
    # The quality service caches the charge's state; the charge service's transition invalidates it.
    await charges.transition(charge_id, ChargeStatus.REJECTED, "scrap")
    with pytest.raises(Conflict):
        await service.record(charge_id, MeasurementIn(parameter="diameter", value=10.1))
    with pytest.raises(Conflict):
        await post_series(service, charge_id, "diameter", {1: 10.1, 2: 10.2})
    assert await stored_count(sessions) == 1


async def test_measurements_of_a_missing_charge_are_not_found(
    service: QualityService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    with pytest.raises(NotFound):
        await post_series(service, 999_999, "diameter", {0: 1.0})
    with pytest.raises(NotFound):
        await service.record(999_999, MeasurementIn(parameter="diameter", value=1.0))
    with pytest.raises(NotFound):
        await measurements(service, 999_999)
    assert await stored_count(sessions) == 0


# Summaries --------------------------------------------------------------------------------------


async def test_the_summary_of_a_small_series_has_the_hand_computed_figures(
    service: QualityService, charges: ChargeService
) -> None:
    charge_id = await new_charge(charges, 1)
    await service.put_spec("PUMP-A", "diameter", SpecBody(unit="mm", lsl=0.0, usl=6.0))
    # In time order 1, 2, 4, 7: mean 3.5, squared deviations 21 (std sqrt(21 / 3) = sqrt 7), one charge
    # of 4 points (sigma within sqrt 7 / c4(4), c4(4) = 2 sqrt(2 / (3 pi))), one point (7) above 6.
    await post_series(service, charge_id, "diameter", {3: 7.0, 0: 1.0, 2: 4.0, 1: 2.0})
    await service.put_spec("PUMP-A", "bore", SpecBody(unit="mm", usl=100.0))
    await post_series(service, charge_id, "bore", {0: 5.0})
    rows = await summary(service, product_sku="PUMP-A")
    assert [row["parameter"] for row in rows] == ["bore", "diameter"]
    bore, diameter = rows
    sigma_within = math.sqrt(7) / (2 * math.sqrt(2 / (3 * math.pi)))
    assert {name: diameter[name] for name in ("n", "min", "max", "lsl", "usl", "out_of_spec")} == {
        "n": 4,
        "min": 1.0,
        "max": 7.0,
        "lsl": 0.0,
        "usl": 6.0,
        "out_of_spec": 1,
    }
    assert diameter["mean"] == pytest.approx(3.5, rel=1e-12)
    assert diameter["std"] == pytest.approx(math.sqrt(7), rel=1e-12)
    assert diameter["cp"] == pytest.approx(6 / (6 * sigma_within), rel=1e-9)  # = 0.348
    assert diameter["cpk"] == pytest.approx(2.5 / (3 * sigma_within), rel=1e-9)  # = 0.290
    assert diameter["pp"] == pytest.approx(1 / math.sqrt(7), rel=1e-9)
    assert diameter["ppk"] == pytest.approx(2.5 / (3 * math.sqrt(7)), rel=1e-9)
    # One point: no spread, so no capability.
    assert (bore["n"], bore["mean"], bore["std"], bore["usl"], bore["cp"], bore["ppk"]) == (
        1,
        5.0,
        None,
        100.0,
        None,
        None,
    )


async def test_the_summary_range_includes_its_start_and_excludes_its_end(
    service: QualityService, charges: ChargeService
) -> None:
    charge_id = await new_charge(charges, 1)
    await specify(service, "diameter")
    await post_series(service, charge_id, "diameter", {0: 1.0, 1: 2.0, 2: 4.0, 3: 7.0})
    (row,) = await summary(service, parameter="diameter", **{"from": at(1), "to": at(3)})
    assert (row["n"], row["min"], row["max"]) == (2, 2.0, 4.0)
    assert row["mean"] == pytest.approx(3.0)


async def test_a_cached_summary_follows_new_measurements_and_spec_changes(
    service: QualityService, charges: ChargeService
) -> None:
    charge_id = await new_charge(charges, 1)
    await specify(service, "diameter")
    await post_series(service, charge_id, "diameter", {0: 1.0, 1: 2.0})
    (row,) = await summary(service, product_sku="PUMP-A")
    assert (row["n"], row["out_of_spec"]) == (2, 0)
    await service.record(charge_id, MeasurementIn(parameter="diameter", value=9.0, measured_at=at(2)))
    (row,) = await summary(service, product_sku="PUMP-A")
    assert (row["n"], row["max"], row["out_of_spec"]) == (3, 9.0, 0)
    await service.put_spec("PUMP-A", "diameter", SpecBody(unit="mm", usl=5.0))
    (row,) = await summary(service, product_sku="PUMP-A")
    assert (row["usl"], row["out_of_spec"]) == (5.0, 1)


# Control chart ----------------------------------------------------------------------------------


async def test_the_control_chart_of_a_small_series_has_hand_computed_lines_and_points_in_time_order(
    service: QualityService, charges: ChargeService
) -> None:
    charge_id = await new_charge(charges, 1)
    await specify(service, "diameter")
    # In time order 10, 12, 11, 13, 9: centre 11, moving ranges 2, 1, 2, 4 (MR-bar 2.25).
    await post_series(service, charge_id, "diameter", {4: 9.0, 0: 10.0, 3: 13.0, 1: 12.0, 2: 11.0})
    body = await chart(service, charge_id, "diameter")
    sigma = 2.25 / D2
    limits = body["limits"]
    assert limits["center"] == pytest.approx(11.0, rel=1e-12)
    assert limits["mr_bar"] == pytest.approx(2.25, rel=1e-12)
    assert limits["sigma"] == pytest.approx(sigma, rel=1e-12)
    assert (limits["lcl"], limits["ucl"]) == (pytest.approx(11 - 3 * sigma), pytest.approx(11 + 3 * sigma))
    points = body["points"]
    assert [point["value"] for point in points] == [10.0, 12.0, 11.0, 13.0, 9.0]
    assert [point["index"] for point in points] == [0, 1, 2, 3, 4]
    # Zone C is within one sigma (1.995) of the centre, zone B within two.
    assert [point["zone"] for point in points] == ["C", "C", "C", "B", "B"]
    assert len({point["id"] for point in points}) == 5


async def test_the_control_chart_uses_the_latest_points_only_and_follows_new_measurements(
    service: QualityService, charges: ChargeService
) -> None:
    charge_id = await new_charge(charges, 1)
    await specify(service, "diameter")
    await post_series(service, charge_id, "diameter", {0: 10.0, 1: 12.0, 2: 11.0, 3: 13.0, 4: 9.0})
    latest = await chart(service, charge_id, "diameter", limit=3)
    # 11, 13, 9: centre 11, moving ranges 2 and 4.
    assert [point["value"] for point in latest["points"]] == [11.0, 13.0, 9.0]
    assert latest["limits"]["mr_bar"] == pytest.approx(3.0)
    await service.record(charge_id, MeasurementIn(parameter="diameter", value=14.0, measured_at=at(5)))
    moved = await chart(service, charge_id, "diameter", limit=3)
    assert [point["value"] for point in moved["points"]] == [13.0, 9.0, 14.0]


async def test_the_control_chart_of_a_missing_charge_is_not_found(service: QualityService) -> None:
    with pytest.raises(NotFound):
        await chart(service, 999_999, "diameter")


async def test_analyze_charge_reports_every_measured_parameter_against_its_spec(
    service: QualityService, charges: ChargeService
) -> None:
    charge_id = await new_charge(charges, 1)
    await service.put_spec("PUMP-A", "diameter", SpecBody(unit="mm", lsl=0.0, usl=6.0))
    await post_series(service, charge_id, "diameter", {0: 1.0, 1: 2.0, 2: 4.0, 3: 7.0})
    await specify(service, "bore")
    await post_series(service, charge_id, "bore", {0: 5.0, 1: 5.0})
    report = await service.analyze_charge(charge_id)
    assert (report["charge_id"], report["product_sku"], report["rules"]) == (charge_id, "PUMP-A", "nelson")
    assert [parameter["parameter"] for parameter in report["parameters"]] == ["bore", "diameter"]
    diameter = report["parameters"][1]
    assert diameter["n"] == 4
    assert diameter["cp"] == pytest.approx(6 / (6 * (2 / D2)), rel=1e-9)
    assert report["anomaly_count"] == sum(len(p["violations"]) for p in report["parameters"])
    with pytest.raises(NotFound):
        await service.analyze_charge(999_999)
