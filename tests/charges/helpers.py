"""Small builders for charge payloads used across the charges tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from erp_api.http import API_PREFIX

BASE = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def charge_payload(serial: int, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "charge_number": f"CH-2026-{serial:06d}",
        "product_sku": "PUMP-A",
        "quantity": "125.5",
        "unit": "pcs",
        "line": "L1",
        "produced_at": (BASE + timedelta(hours=serial)).isoformat(),
    }
    payload.update(overrides)
    return payload


async def create(client: httpx.AsyncClient, serial: int, **overrides: Any) -> dict[str, Any]:
    response = await client.post(f"{API_PREFIX}/charges", json=charge_payload(serial, **overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# The transitions that take a new (planned) charge to each status.
PATHS: dict[str, tuple[str, ...]] = {
    "planned": (),
    "in_production": ("in_production",),
    "quarantined": ("in_production", "quarantined"),
    "released": ("in_production", "released"),
    "rejected": ("in_production", "rejected"),
}


async def move_to(client: httpx.AsyncClient, charge_id: int, status: str) -> dict[str, Any]:
    """Transition a planned charge to ``status`` the only way there is (a quality manager's client)."""
    url = f"{API_PREFIX}/charges/{charge_id}"
    body: dict[str, Any] = (await client.get(url)).json()
    for target in PATHS[status]:
        response = await client.post(f"{url}/transitions", json={"to": target, "reason": f"to {target}"})
        assert response.status_code == 200, response.text
        body = response.json()
    return body


async def create_in(client: httpx.AsyncClient, serial: int, status: str, **overrides: Any) -> dict[str, Any]:
    """A new charge moved to ``status`` by transitions (charges are created planned only)."""
    charge = await create(client, serial, **overrides)
    return await move_to(client, charge["id"], status)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    assert "Traceback" not in response.text
    return body
