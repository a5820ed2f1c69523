"""Builders shared by the analyses tests: a charge with a measured series, and polling a job record."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx

from erp_api.http import API_PREFIX
from tests.charges.helpers import create_in
from tests.quality.helpers import measurements_url, post_series, put_spec


def series(points: int) -> list[float]:
    """A stable process with one clear shift near the end, so the analysis finds anomalies."""
    values = [10.0 + 0.05 * math.sin(i * 1.7) + 0.03 * math.cos(i * 0.37) for i in range(points)]
    for i in range(max(0, points - 12), points):
        values[i] += 0.4
    return values


async def measured_charge(client: httpx.AsyncClient, serial: int = 1, points: int = 200) -> int:
    """A charge in production with ``points`` measurements of ``diameter`` (and a spec for it)."""
    charge = await create_in(client, serial, "in_production")
    charge_id: int = charge["id"]
    assert (await put_spec(client, "PUMP-A", "diameter", lsl=9.0, usl=11.0)).status_code in (200, 201)
    values = series(points)
    for start in range(0, points, 5_000):
        await post_series(client, charge_id, "diameter", values[start : start + 5_000], start=start)
    listed = await client.get(measurements_url(charge_id), params={"limit": 1})
    assert listed.status_code == 200, listed.text
    return charge_id


def analyses_url(charge_id: int) -> str:
    return f"{API_PREFIX}/charges/{charge_id}/analyses"


async def submit(client: httpx.AsyncClient, charge_id: int, **body: Any) -> dict[str, Any]:
    response = await client.post(analyses_url(charge_id), json={"rules": "nelson", **body})
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def wait_for(
    client: httpx.AsyncClient,
    analysis_id: int,
    statuses: set[str],
    within: float = 30.0,
    interval: float = 0.02,
) -> dict[str, Any]:
    """Poll the analysis until its status is one of ``statuses``; fails with its last state."""
    body: dict[str, Any] = {}
    try:
        async with asyncio.timeout(within):
            while True:
                response = await client.get(f"{API_PREFIX}/analyses/{analysis_id}")
                assert response.status_code == 200, response.text
                body = response.json()
                if body["status"] in statuses:
                    return body
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(
            f"analysis {analysis_id} still {body.get('status')} after {within} s: {body}"
        ) from None
