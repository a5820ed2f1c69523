"""Builders shared by the quality tests: charges, specs and measurements over HTTP, and tuned apps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette

from erp_api.app import create_app
from erp_api.settings import Settings, load_settings
from tests.charges.helpers import create

T0 = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
SPECS = "/api/v1/quality/specs"
SUMMARY = "/api/v1/quality/summary"
CHART = "/api/v1/quality/control-chart"


def measurements_url(charge_id: int) -> str:
    return f"/api/v1/charges/{charge_id}/measurements"


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
        response = await client.post(f"/api/v1/charges/{charge_id}/transitions", json={"to": status})
        assert response.status_code == 200, response.text


async def put_spec(
    client: httpx.AsyncClient, product_sku: str, parameter: str, **limits: Any
) -> httpx.Response:
    body = {"unit": "mm", **limits}
    return await client.put(f"{SPECS}/{product_sku}/{parameter}", json=body)


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
