"""Builders shared by the quality tests: charges, specs and measurements over HTTP, and tuned apps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from erp_api.app import create_app
from erp_api.http import API_PREFIX
from erp_api.quality.models import Measurement
from erp_api.quality.summaries.rollups import SeriesRollups
from erp_api.settings import Settings, load_settings
from tests.charges.helpers import create

T0 = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
SPECS = f"{API_PREFIX}/quality/specs"
SUMMARY = f"{API_PREFIX}/quality/summary"
CHART = f"{API_PREFIX}/quality/control-chart"


def measurements_url(charge_id: int) -> str:
    return f"{API_PREFIX}/charges/{charge_id}/measurements"


def limits_url(product_sku: str = "PUMP-A", parameter: str = "diameter_mm") -> str:
    return f"{SPECS}/{product_sku}/{parameter}/limits"


def void_url(measurement_id: int) -> str:
    return f"{API_PREFIX}/measurements/{measurement_id}/void"


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


async def new_charge(
    client: httpx.AsyncClient, serial: int, product_sku: str = "PUMP-A", **fields: Any
) -> int:
    charge = await create(client, serial, product_sku=product_sku, **fields)
    charge_id: int = charge["id"]
    return charge_id


async def reject(client: httpx.AsyncClient, charge_id: int) -> None:
    for status in ("in_production", "rejected"):
        response = await client.post(f"{API_PREFIX}/charges/{charge_id}/transitions", json={"to": status})
        assert response.status_code == 200, response.text


async def put_spec(
    client: httpx.AsyncClient, product_sku: str, parameter: str, **limits: Any
) -> httpx.Response:
    body = {"unit": "mm", **limits}
    return await client.put(f"{SPECS}/{product_sku}/{parameter}", json=body)


async def given_spec(
    client: httpx.AsyncClient, *parameters: str, product_sku: str = "PUMP-A", **limits: Any
) -> None:
    """Specs for ``parameters`` (measurements are refused without one); a wide upper limit unless given."""
    for parameter in parameters:
        response = await put_spec(client, product_sku, parameter, **(limits or {"usl": 1e6}))
        assert response.status_code in {200, 201}, response.text


async def store_without_spec(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    parameter: str,
    values: dict[int, float],
    product_sku: str = "PUMP-A",
) -> None:
    """Rows stored before measurements needed a spec (the API refuses them now): value per minute after T0.

    Their series' rollups are rebuilt, as the migration that introduced rollups built them for old rows.
    """
    rows = [
        {
            "charge_id": charge_id,
            "product_sku": product_sku,
            "parameter": parameter,
            "value": value,
            "measured_at": T0 + timedelta(minutes=minute),
            "created_at": T0,
        }
        for minute, value in values.items()
    ]
    async with sessions.begin() as session:
        await session.execute(insert(Measurement), rows)
        await SeriesRollups(session).rebuild(product_sku, parameter)


async def post_series(
    client: httpx.AsyncClient, charge_id: int, parameter: str, values: list[float], start: float = 0
) -> None:
    """One batch; point i is measured ``start + i`` minutes after T0."""
    items = [
        {"parameter": parameter, "value": value, "measured_at": at(start + i)}
        for i, value in enumerate(values)
    ]
    response = await client.post(measurements_url(charge_id), json={"items": items})
    assert response.status_code == 201, response.text
    assert response.json() == {"charge_id": charge_id, "count": len(values)}


async def post_one(
    client: httpx.AsyncClient, charge_id: int, parameter: str, value: float, **extra: Any
) -> httpx.Response:
    return await client.post(
        measurements_url(charge_id), json={"parameter": parameter, "value": value, **extra}
    )


async def measurement_ids(client: httpx.AsyncClient, charge_id: int) -> list[int]:
    """The ids of a charge's measurements (up to 500) in time order."""
    response = await client.get(measurements_url(charge_id), params={"limit": 500})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def void(client: httpx.AsyncClient, measurement_id: int, reason: str = "typo") -> dict[str, Any]:
    response = await client.post(void_url(measurement_id), json={"reason": reason})
    assert response.status_code == 200, response.text
    voided: dict[str, Any] = response.json()
    return voided


def tuned(settings: Settings, **overrides: Any) -> Settings:
    """The test's settings (same database, same broker) with some values changed."""
    return load_settings(
        database_url=settings.database_url,
        broker_url=settings.broker_url,
        cache_backend=settings.cache_backend,
        auth_enabled=settings.auth_enabled,
        bootstrap_admin_key=settings.bootstrap_admin_key,
        access_log=False,
        **overrides,
    )


def admin_headers(settings: Settings) -> dict[str, str]:
    key = settings.bootstrap_admin_key
    return {"Authorization": f"Bearer {key.get_secret_value()}"} if key is not None else {}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app on ``settings`` with its lifespan running, and a client talking to it in-process."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=admin_headers(settings)
        ) as client:
            yield app, client
